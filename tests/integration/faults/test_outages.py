"""Slack and Redis outages in the middle of a rollback: it finishes in the
cluster, nothing is lost, every message arrives once after they recover."""

from __future__ import annotations

import time

from bot.records import RollbackState
from bot.store import RollbackStore
from testbed.slack_api import FakeSlackApi
from tests.integration.faults.conftest import (
    finished,
    lock_released,
    outcome_replies,
    request_and_approve,
)
from tests.integration.faults.harness import PersistentRedis, wait_until
from tests.integration.workloads import Workloads

REPORT_FILES = 4


def test_slack_down_right_after_the_approval_delays_the_outcome_and_loses_nothing(
    rollbot, workloads: Workloads, slack: FakeSlackApi, store: RollbackStore
) -> None:
    workloads.create("web", ["app:v1", "app:v2"])
    bot = rollbot(outbox_stale_seconds=3)
    worker = bot.start_worker()
    record_id = request_and_approve(bot, slack, f"web -n {workloads.namespace}")
    slack.outage(500)
    try:
        record = finished(store, record_id)  # the cluster work goes on without Slack
        assert record.state is RollbackState.SUCCEEDED, (record.error, bot.logs())
        assert workloads.images_of("web") == ["app:v1"]
        wait_until("readiness to say Slack is away", lambda: bot.readyz(worker).status_code == 503)
        assert "slack" in bot.readyz(worker).text
        time.sleep(3)  # longer than any retry budget of the client
    finally:
        slack.outage(None)
    wait_until("the outcome in the thread", lambda: outcome_replies(slack, record))
    wait_until("the report", lambda: len(slack.files()) >= REPORT_FILES)
    wait_until("readiness again", lambda: bot.readyz(worker).status_code == 200)
    assert len(outcome_replies(slack, record)) == 1
    assert len(slack.files()) == REPORT_FILES
    assert bot.workers[worker][0].poll() is None, "the worker is still running"


def test_redis_killed_and_restarted_mid_rollout_the_rollback_completes(
    rollbot,
    workloads: Workloads,
    slack: FakeSlackApi,
    store: RollbackStore,
    persistent_redis: PersistentRedis,
) -> None:
    workloads.create("web", ["app:v1", "app:v2"])
    workloads.patch("web", {"spec": {"minReadySeconds": 4}})
    workloads.wait_complete("web")
    bot = rollbot()
    bot.start_worker()
    record_id = request_and_approve(bot, slack, f"web -n {workloads.namespace}")
    wait_until(
        "the rollout to start", lambda: store.get(record_id).state is RollbackState.ROLLING_BACK
    )
    time.sleep(1.5)  # the append-only file is fsynced every second
    persistent_redis.kill()
    time.sleep(8)  # longer than the lease, the heartbeat and the client's retries
    persistent_redis.start()

    record = finished(store, record_id)
    assert record.state is RollbackState.SUCCEEDED, (record.error, bot.logs())
    assert workloads.images_of("web") == ["app:v1"]
    wait_until("the outcome in the thread", lambda: outcome_replies(slack, record))
    assert len(outcome_replies(slack, record)) == 1
    assert lock_released(store.redis, f"{workloads.namespace}/web")
