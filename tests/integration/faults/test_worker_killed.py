"""A worker killed (SIGKILL) at each step of a rollback: another worker
finishes it — applied once, one outcome, one report, the lock released."""

from __future__ import annotations

import pytest

from bot import failpoints
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
)
from tests.integration.faults.harness import wait_until
from tests.integration.workloads import Workloads


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
    applied = workloads.get("web")["metadata"]["generation"] - generation
    observe(f"worker killed: {step}", store, slack, record_id, applied=applied)
    assert record.state is RollbackState.SUCCEEDED, (record.error, bot.logs())
    assert applied == 1, "applied exactly once"
    assert workloads.images_of("web") == ["app:v1"]
    wait_until("the outcome in the thread", lambda: outcome_replies(slack, record))
    wait_until("the report", lambda: len(slack.files()) >= REPORT_FILES)
    assert outcome_replies(slack, record) == [
        f"Rollback {record.id} succeeded: {record.timeline[-1].message}"
    ]
    assert len(slack.files()) == REPORT_FILES
    assert lock_released(store.redis, f"{workloads.namespace}/web")


@pytest.mark.parametrize("step", ["backed_up", "applied"])
def test_a_service_of_several_deployments_whose_worker_is_killed_is_finished_once(
    step: str, rollbot, workloads: Workloads, slack: FakeSlackApi, store: RollbackStore
) -> None:
    names = ("shop-web", "shop-worker")
    generations = {}
    for name in names:
        workloads.create(name, [f"{name}:v1", f"{name}:v2"])
        generations[name] = workloads.get(name)["metadata"]["generation"]
    catalog = {"shop": {"namespace": workloads.namespace, "deployments": list(names)}}
    bot = rollbot(services=catalog)
    doomed = bot.start_worker(failpoint=step)
    record_id = request_and_approve(bot, slack, "shop")
    assert bot.wait_exit(doomed) == -9, f"the worker did not reach {step}:\n{bot.logs()}"
    bot.start_worker()

    record = finished(store, record_id)
    changed = {n: workloads.get(n)["metadata"]["generation"] - generations[n] for n in names}
    observe(
        f"worker killed: {step} (2 Deployments)", store, slack, record_id,
        applied=max(changed.values()),
    )  # fmt: skip
    assert record.state is RollbackState.SUCCEEDED, (record.error, bot.logs())
    assert changed == {"shop-web": 1, "shop-worker": 1}, "each applied exactly once"
    assert [workloads.images_of(n) for n in names] == [["shop-web:v1"], ["shop-worker:v1"]]
    wait_until("the outcome in the thread", lambda: outcome_replies(slack, record))
    assert len(outcome_replies(slack, record)) == 1
    for name in (*names, "shop"):
        assert lock_released(store.redis, f"{workloads.namespace}/{name}")
