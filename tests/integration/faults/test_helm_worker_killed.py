"""A Helm rollback whose worker is killed (SIGKILL) at a step, or while its
`helm rollback` runs: another worker finishes it — helm run once (one new
release revision), one outcome, one report, the lock released.

CI runs a fixed few steps; `make faults` (ROLLBOT_FAULTS_LONG=1) runs them all,
and the case where helm dies with its worker (helm's time-out must pass before
the replacement may run it again)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from bot import failpoints
from bot.kube import Kube
from bot.records import RollbackRecord, RollbackState
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
from tests.integration.faults.harness import Rollbot, wait_until
from tests.integration.test_helm_strategy import CHART, Helm
from tests.integration.workloads import Workloads

LONG = os.environ.get("ROLLBOT_FAULTS_LONG") == "1"
CI_STEPS = ("locked", "applied", "reported")
RELEASE = "todo-app"
#: helm's --timeout (the worker's rollout timeout): how long a replacement waits
#: for a pending rollback whose helm may still run.
HELM_TIMEOUT = 30


@pytest.fixture
def release(control_plane, namespace: str, workloads: Workloads) -> Helm:
    """todo-app at 1.0.0 then 1.1.0 (revisions 1 and 2); its new pods count as
    available only after 4 s, so `helm rollback 1 --wait` runs for several seconds."""
    helm = Helm(str(control_plane.kubeconfig), namespace)
    for tag in ("1.0.0", "1.1.0"):
        # A progress deadline past any minReadySeconds the tests set.
        helm.run("upgrade", "--install", RELEASE, str(CHART), "--set", f"tag={tag}",
                 "--set", "progressDeadlineSeconds=120", "--wait", "--timeout", "60s")  # fmt: skip
    # Not in the chart's manifests: helm's three-way merge leaves it on the Deployment.
    workloads.patch("todo-backend", {"spec": {"minReadySeconds": 4}})
    workloads.wait_complete("todo-backend")
    return helm


def release_secrets(kube: Kube, namespace: str) -> list[str]:
    """The release's revisions as helm stores them: one Secret per helm run."""
    secrets = kube.list_secrets(namespace, f"owner=helm,name={RELEASE}")
    return sorted(s["metadata"]["name"] for s in secrets)


def start(rollbot, helm: Helm) -> Rollbot:
    catalog = {RELEASE: {"namespace": helm.namespace, "strategy": "helm"}}
    bot: Rollbot = rollbot(services=catalog, rollout_timeout_seconds=HELM_TIMEOUT)
    bot.env["ROLLBOT_HELM"] = helm.binary
    return bot


def newest(helm: Helm) -> tuple[object, object, object]:
    row = helm.history()[-1]
    return row["revision"], row["status"], row["description"]


def assert_finished_once(
    bot: Rollbot, helm: Helm, workloads: Workloads, slack: FakeSlackApi, store: RollbackStore,
    record: RollbackRecord,
) -> None:  # fmt: skip
    assert record.state is RollbackState.SUCCEEDED, (record.error, bot.logs())
    assert workloads.images_of("todo-backend") == ["registry.example/todo-backend:1.0.0"]
    wait_until("the outcome in the thread", lambda: outcome_replies(slack, record))
    wait_until("the report", lambda: len(slack.files()) >= REPORT_FILES)
    assert outcome_replies(slack, record) == [
        f"Rollback {record.id} succeeded: {record.timeline[-1].message}"
    ]
    assert len(slack.files()) == REPORT_FILES
    assert lock_released(store.redis, f"{helm.namespace}/{RELEASE}")
    assert lock_released(store.redis, f"{helm.namespace}/todo-backend")


@pytest.mark.parametrize("step", failpoints.POINTS if LONG else CI_STEPS)
def test_a_helm_rollback_whose_worker_is_killed_at_a_step_is_finished_once_by_another(
    step: str, rollbot, release: Helm, kube: Kube, workloads: Workloads, slack: FakeSlackApi,
    store: RollbackStore,
) -> None:  # fmt: skip
    before = release_secrets(kube, release.namespace)
    bot = start(rollbot, release)
    doomed = bot.start_worker(failpoint=step)
    record_id = request_and_approve(bot, slack, RELEASE)
    assert bot.wait_exit(doomed) == -9, f"the worker did not reach {step}:\n{bot.logs()}"
    bot.start_worker()

    record = finished(store, record_id)
    runs = len(release_secrets(kube, release.namespace)) - len(before)
    observe(f"worker killed: {step} (Helm)", store, slack, record_id, applied=runs)
    assert runs == 1, "helm rollback ran exactly once"
    assert newest(release) == (3, "deployed", "Rollback to 1")
    assert_finished_once(bot, release, workloads, slack, store, record)


def helm_children(pid: int) -> list[int]:
    """The helm processes a worker started (its children, thread by thread)."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return [c for c in children if Path(f"/proc/{c}/comm").read_text().strip() == "helm"]


def kill_while_helm_runs(bot: Rollbot, kube: Kube, namespace: str, *, helm_too: bool) -> None:
    """SIGKILL the worker whose `helm rollback` is under way (the release pending-rollback),
    and its helm too if asked, as when the worker's container goes."""
    wait_until(
        "helm rollback to be under way",
        lambda: kube.list_secrets(namespace, f"owner=helm,name={RELEASE},status=pending-rollback"),
        timeout=120,
    )
    running = {i: helm_children(proc.pid) for i, (proc, _) in enumerate(bot.workers)}
    (doomed, helm_pids), *others = [(i, pids) for i, pids in running.items() if pids]
    assert not others, f"helm runs under two workers: {running}"
    for pid in helm_pids if helm_too else []:
        os.kill(pid, signal.SIGKILL)
    bot.kill_worker(doomed)


#: Whether helm dies with its worker (as when the worker's container goes): then the
#: replacement must wait out helm's time-out before it may run helm again.
HELM_DIES = (False, True) if LONG else (False,)


@pytest.mark.parametrize(
    "helm_dies", HELM_DIES, ids=lambda dies: "helm killed too" * dies or "helm runs on"
)
def test_a_worker_killed_while_helm_rolls_back_is_finished_once_by_another(
    helm_dies: bool, rollbot, release: Helm, kube: Kube, workloads: Workloads,
    slack: FakeSlackApi, store: RollbackStore,
) -> None:  # fmt: skip
    # helm now runs for some 12 s: the other worker, already waiting, takes the job
    # over (its lease lapses in 2 s) while the release is still pending-rollback.
    workloads.patch("todo-backend", {"spec": {"minReadySeconds": 12}})
    bot = start(rollbot, release)
    bot.start_worker()
    bot.start_worker()
    record_id = request_and_approve(bot, slack, RELEASE)
    kill_while_helm_runs(bot, kube, release.namespace, helm_too=helm_dies)

    try:
        record = finished(store, record_id, timeout=HELM_TIMEOUT + 180)
    except AssertionError as err:
        timeline = [e.message for e in store.get(record_id).timeline]
        lines = bot.log_lines(record_id, "Traceback", "Error", "lease", "helm")
        raise AssertionError((timeline, release.history(), lines)) from err
    rows = release.history()
    completed = [r["revision"] for r in rows if r["description"] == "Rollback to 1"
                 and r["status"] == "deployed"]  # fmt: skip
    fault = "worker and its helm killed" if helm_dies else "worker killed"
    observe(f"{fault} mid-helm rollback (Helm)", store, slack, record_id, applied=len(completed))
    assert record.state is RollbackState.SUCCEEDED, (record.error, bot.logs())
    # helm ran on and finished revision 3; or, killed, never finished it and was run
    # once more (revision 4) after its time-out.
    assert completed == ([4] if helm_dies else [3]), rows
    assert len(rows) == (4 if helm_dies else 3), "helm run again only if its run died"
    assert_finished_once(bot, release, workloads, slack, store, record)
