"""Slack and Redis outages in the middle of a rollback: it finishes in the
cluster, nothing is lost, every message arrives once after they recover."""

from __future__ import annotations

import os
import time

from bot.records import RollbackState
from bot.store import RollbackStore
from testbed.slack_api import FakeSlackApi
from tests.integration.faults.conftest import (
    REPORT_FILES,
    finished,
    lock_released,
    observe,
    outcome_replies,
    request_and_approve,
    rollback_under_way,
)
from tests.integration.faults.harness import PersistentRedis, wait_until
from tests.integration.workloads import Workloads

#: Seconds of outage beyond what the rollback itself takes; `make faults` sets more.
OUTAGE = float(os.environ.get("ROLLBOT_FAULTS_OUTAGE_SECONDS", "3"))


def test_slack_down_right_after_the_approval_delays_the_outcome_and_loses_nothing(
    rollbot, workloads: Workloads, slack: FakeSlackApi, store: RollbackStore
) -> None:
    workloads.create("web", ["app:v1", "app:v2"])
    generation = workloads.get("web")["metadata"]["generation"]
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
        time.sleep(OUTAGE)  # longer than any retry budget of the client
    finally:
        slack.outage(None)
    applied = workloads.get("web")["metadata"]["generation"] - generation
    observe(f"Slack down {OUTAGE:g}s+ after the approval", store, slack, record_id, applied=applied)
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
    bot = rollbot()
    bot.start_worker()
    record_id, generation = rollback_under_way(bot, workloads, slack, store)
    time.sleep(1.5)  # the append-only file is fsynced every second
    persistent_redis.kill()
    time.sleep(OUTAGE + 5)  # longer than the lease, the heartbeat and the client's retries
    persistent_redis.start()

    record = finished(store, record_id)
    applied = workloads.get("web")["metadata"]["generation"] - generation
    observe(f"Redis killed {OUTAGE + 5:g}s mid-rollout", store, slack, record_id, applied=applied)
    assert record.state is RollbackState.SUCCEEDED, (record.error, bot.logs())
    assert workloads.images_of("web") == ["app:v1"]
    assert applied == 1
    wait_until("the outcome in the thread", lambda: outcome_replies(slack, record))
    assert len(outcome_replies(slack, record)) == 1
    assert lock_released(store.redis, f"{workloads.namespace}/web")
