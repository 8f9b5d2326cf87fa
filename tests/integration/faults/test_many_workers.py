"""Several workers and rollouts longer than every lease and heartbeat TTL: a
rollback is executed by one worker, once."""

from __future__ import annotations

from bot.records import RollbackState
from bot.store import RollbackStore
from testbed.slack_api import FakeSlackApi
from tests.integration.faults.conftest import (
    CHANNEL,
    finished,
    lock_released,
    observe,
    outcome_replies,
    request_and_approve,
)
from tests.integration.faults.harness import wait_until
from tests.integration.workloads import Workloads


def test_three_workers_and_a_slow_rollout_execute_the_rollback_once(
    rollbot, workloads: Workloads, slack: FakeSlackApi, store: RollbackStore
) -> None:
    workloads.create("web", ["app:v1", "app:v2"])
    # Each new pod counts as available only after 5 s: the rollout outlasts every TTL (2 s).
    workloads.patch("web", {"spec": {"minReadySeconds": 5}})
    generation = workloads.wait_complete("web")["metadata"]["generation"]
    bot = rollbot()
    for _ in range(3):
        bot.start_worker()
    record_id = request_and_approve(bot, slack, f"web -n {workloads.namespace}")

    record = finished(store, record_id)
    changed = workloads.get("web")["metadata"]["generation"] - generation
    observe("three workers, rollout past every TTL", store, slack, record_id, applied=changed)
    assert record.state is RollbackState.SUCCEEDED, (record.error, bot.logs())
    assert changed == 1
    applied = [e.message for e in record.timeline if e.message.startswith("applied: ")]
    assert len(applied) == 1, record.timeline
    wait_until("the outcome in the thread", lambda: outcome_replies(slack, record))
    thread = [m.text for m in slack.thread(CHANNEL, record.thread_ts or "")]
    assert not any("already applied" in text for text in thread), thread
    assert len(outcome_replies(slack, record)) == 1
    assert lock_released(store.redis, f"{workloads.namespace}/web")
