"""A worker stopped (SIGSTOP) for longer than its lease mid-rollout, then let go on:
the rollback still ends, once."""

from __future__ import annotations

import os
import signal
import time

from bot.records import RollbackState
from bot.store import RollbackStore
from testbed.slack_api import FakeSlackApi
from tests.integration.faults.conftest import (
    finished,
    lock_released,
    observe,
    outcome_replies,
    rollback_under_way,
)
from tests.integration.faults.harness import wait_until
from tests.integration.workloads import Workloads


def test_a_worker_paused_past_its_lease_mid_rollout_still_ends_the_rollback_once(
    rollbot, workloads: Workloads, slack: FakeSlackApi, store: RollbackStore
) -> None:
    bot = rollbot()
    bot.start_worker()
    record_id, generation = rollback_under_way(bot, workloads, slack, store)
    pid = bot.workers[0][0].pid
    os.kill(pid, signal.SIGSTOP)  # as a starved or throttled process: its lease (2 s) lapses
    time.sleep(6)
    os.kill(pid, signal.SIGCONT)

    record = finished(store, record_id, timeout=120)
    changed = workloads.get("web")["metadata"]["generation"] - generation
    observe("worker paused 6s mid-rollout", store, slack, record_id, applied=changed)
    assert record.state is RollbackState.SUCCEEDED, (record.error, bot.logs())
    assert changed == 1
    wait_until("the outcome in the thread", lambda: outcome_replies(slack, record))
    assert len(outcome_replies(slack, record)) == 1
    assert lock_released(store.redis, f"{workloads.namespace}/web")
