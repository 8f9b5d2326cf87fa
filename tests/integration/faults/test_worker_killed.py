"""A worker killed (SIGKILL) at each step of a rollback: another worker
finishes it — applied once, one outcome, one report, the lock released."""

from __future__ import annotations

import pytest

from bot import failpoints
from bot.records import RollbackState
from bot.store import RollbackStore
from testbed.slack_api import FakeSlackApi
from tests.integration.faults.conftest import (
    finished,
    lock_released,
    outcome_replies,
    request_and_approve,
)
from tests.integration.faults.harness import wait_until
from tests.integration.workloads import Workloads

REPORT_FILES = 4  # incident report, rollback report, backup, communications


@pytest.mark.parametrize("step", failpoints.POINTS)
def test_an_undo_whose_worker_is_killed_at_a_step_is_finished_once_by_another(
    step: str, rollbot, workloads: Workloads, slack: FakeSlackApi, store: RollbackStore
) -> None:
    workloads.create("web", ["app:v1", "app:v2"])
    generation = workloads.get("web")["metadata"]["generation"]
    bot = rollbot()
    doomed = bot.start_worker(failpoint=step)
    record_id = request_and_approve(bot, slack, f"web -n {workloads.namespace}")
    assert bot.wait_exit(doomed) == -9, f"the worker did not reach {step}:\n{bot.logs()}"
    bot.start_worker()

    record = finished(store, record_id)
    assert record.state is RollbackState.SUCCEEDED, (record.error, bot.logs())
    deployment = workloads.get("web")
    assert deployment["metadata"]["generation"] == generation + 1, "applied exactly once"
    assert workloads.images_of("web") == ["app:v1"]
    wait_until("the outcome in the thread", lambda: outcome_replies(slack, record))
    wait_until("the report", lambda: len(slack.files()) >= REPORT_FILES)
    assert outcome_replies(slack, record) == [
        f"Rollback {record.id} succeeded: {record.timeline[-1].message}"
    ]
    assert len(slack.files()) == REPORT_FILES
    assert lock_released(store.redis, f"{workloads.namespace}/web")
