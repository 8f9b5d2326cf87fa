"""Automatic rollback's rules: crash loops from pod bodies, the failing-checks
window on a fake clock, and the watcher over an in-memory cluster."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from bot.autorollback import (
    AutoRollbackWatcher,
    FailingChecksWindow,
    Trigger,
    crash_loop_evidence,
    crash_loops,
)
from bot.checks import CheckResult, HttpCheck
from bot.config import RollbotConfig
from tests.unit.builders import deployment, replica_set, template

Body = dict[str, Any]


def pod(
    name: str,
    restarts: int,
    *,
    hash_label: str = "h2",
    waiting: str | None = "CrashLoopBackOff",
    last: str | None = "Error",
    container: str = "app",
    init: bool = False,
    deleting: bool = False,
) -> Body:
    status: Body = {"name": container, "restartCount": restarts}
    status["state"] = {"waiting": {"reason": waiting}} if waiting else {"running": {}}
    if last:
        status["lastState"] = {"terminated": {"reason": last, "exitCode": 1}}
    meta: Body = {"name": name, "labels": {"app": "web", "pod-template-hash": hash_label}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    key = "initContainerStatuses" if init else "containerStatuses"
    return {"metadata": meta, "status": {key: [status]}}


# -- crash loops -----------------------------------------------------------------------


def test_a_container_of_the_revision_restarting_enough_is_a_crash_loop():
    lines = crash_loops([pod("web-h2-a", 3)], "h2", restarts=3)
    assert lines == ["pod web-h2-a container app: CrashLoopBackOff, 3 restarts"]


def test_fewer_restarts_than_the_threshold_are_not_a_crash_loop():
    assert crash_loops([pod("web-h2-a", 2)], "h2", restarts=3) == []


def test_pods_of_another_revision_or_being_deleted_do_not_count():
    pods = [pod("web-h1-a", 40, hash_label="h1"), pod("web-h2-b", 9, deleting=True)]
    assert crash_loops(pods, "h2", restarts=3) == []


def test_a_running_container_that_restarted_names_its_last_exit_reason():
    [line] = crash_loops([pod("web-h2-a", 5, waiting=None, last="OOMKilled")], "h2", restarts=3)
    assert line == "pod web-h2-a container app: OOMKilled, 5 restarts"


def test_init_containers_crash_loop_too():
    [line] = crash_loops([pod("web-h2-a", 4, container="migrate", init=True)], "h2", restarts=3)
    assert line == "pod web-h2-a container migrate: CrashLoopBackOff, 4 restarts"


def test_the_evidence_shows_three_pods_and_counts_the_rest():
    lines = crash_loops([pod(f"web-h2-{i}", 3) for i in range(5)], "h2", restarts=3)
    evidence = crash_loop_evidence(lines)
    assert evidence.startswith("crash-looping: pod web-h2-0 container app: CrashLoopBackOff")
    assert "web-h2-2" in evidence and "web-h2-3" not in evidence
    assert evidence.endswith("(and 2 more)")


# -- the failing-checks window ---------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_window_counts_from_the_first_failure_of_the_revision():
    clock = FakeClock()
    window = FailingChecksWindow(clock)
    assert window.observe("prod/web", "web-2", failing=True) == 0
    clock.now += 45
    assert window.observe("prod/web", "web-2", failing=True) == 45


def test_a_pass_starts_the_window_again():
    clock = FakeClock()
    window = FailingChecksWindow(clock)
    window.observe("prod/web", "web-2", failing=True)
    clock.now += 50
    assert window.observe("prod/web", "web-2", failing=False) is None
    clock.now += 10
    assert window.observe("prod/web", "web-2", failing=True) == 0


def test_a_new_revision_starts_the_window_again():
    clock = FakeClock()
    window = FailingChecksWindow(clock)
    window.observe("prod/web", "web-2", failing=True)
    clock.now += 50
    assert window.observe("prod/web", "web-3", failing=True) == 0


def test_deployments_no_longer_watched_are_forgotten():
    clock = FakeClock()
    window = FailingChecksWindow(clock)
    window.observe("prod/web", "web-2", failing=True)
    window.observe("prod/api", "api-2", failing=True)
    clock.now += 50
    window.keep_only({"prod/api"})
    assert window.observe("prod/web", "web-2", failing=True) == 0
    assert window.observe("prod/api", "api-2", failing=True) == 50


# -- the watcher over an in-memory cluster ---------------------------------------------


class FakeCluster:
    def __init__(self, deployments: list[Body], replica_sets: list[Body], pods: list[Body]):
        self.deployments, self.replica_sets, self.pods = deployments, replica_sets, pods
        self.pod_selectors: list[str] = []

    def list_deployments(self, namespace: str, label_selector: str = "") -> list[Body]:
        return [d for d in self.deployments if d["metadata"]["namespace"] == namespace]

    def list_replica_sets(self, namespace: str, label_selector: str) -> list[Body]:
        return self.replica_sets

    def list_pods(self, namespace: str, label_selector: str) -> list[Body]:
        self.pod_selectors.append(label_selector)
        return self.pods


class FakeChecks:
    def __init__(self) -> None:
        self.failing = True
        self.runs = 0

    def __call__(self, checks: Sequence[HttpCheck]) -> list[CheckResult]:
        self.runs += 1
        if self.failing:
            return [CheckResult(c.name, False, "HTTP 500, expected 200", 500) for c in checks]
        return [CheckResult(c.name, True, "HTTP 200 in 3 ms", 200) for c in checks]


def cluster(
    *,
    cause: str = "revision 2",
    pods: list[Body] | None = None,
    annotations: Body | None = None,
    deadline_rs: str | None = None,
    revisions: int = 2,
) -> FakeCluster:
    dep = deployment(template("app:v2"), annotations=annotations)
    if deadline_rs:
        dep["status"]["conditions"] = [
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": f'ReplicaSet "{deadline_rs}" has timed out progressing.',
                "lastUpdateTime": "2026-01-01T00:10:00Z",
            }
        ]
    sets = [
        replica_set(
            "web-h2",
            "2",
            template("app:v2", hash_label="h2"),
            annotations={"kubernetes.io/change-cause": cause},
            created="2026-01-01T00:05:00Z",
        )
    ]
    if revisions > 1:
        sets.append(replica_set("web-h1", "1", template("app:v1", hash_label="h1")))
    return FakeCluster([dep], sets, pods or [])


def config(**triggers: Any) -> RollbotConfig:
    entry: Body = {
        "namespace": "prod",
        "auto_rollback": True,
        "channel": "C0WEB",
        "health_checks": [{"name": "health", "url": "http://web.prod/health"}],
    }
    if triggers:
        entry["auto_rollback_on"] = triggers
    return RollbotConfig.model_validate({"services": {"web": entry}})


def test_a_crash_looping_revision_is_found_with_its_pods_as_evidence():
    source = cluster(pods=[pod("web-h2-a", 3)])
    [failure] = AutoRollbackWatcher(source, config()).find_failed_releases()
    assert (failure.deployment, failure.replica_set, failure.revision) == ("web", "web-h2", 2)
    assert failure.triggers == (Trigger.CRASH_LOOP,)
    assert failure.channel == "C0WEB"
    assert failure.evidence == (
        "revision 2 (app=app:v2) crash-looping: "
        "pod web-h2-a container app: CrashLoopBackOff, 3 restarts"
    )
    assert source.pod_selectors == ["app=web,pod-template-hash=h2"]


def test_the_crash_loop_threshold_comes_from_the_catalog_and_can_be_turned_off():
    source = cluster(pods=[pod("web-h2-a", 3)])
    assert AutoRollbackWatcher(source, config(crash_loop_restarts=4)).find_failed_releases() == []
    off = config(crash_loop_restarts=None)
    assert AutoRollbackWatcher(source, off).find_failed_releases() == []


def test_a_missed_progress_deadline_of_the_current_revision_is_found():
    [failure] = AutoRollbackWatcher(cluster(deadline_rs="web-h2"), config()).find_failed_releases()
    assert failure.triggers == (Trigger.PROGRESS_DEADLINE,)
    assert failure.evidence.startswith(
        'revision 2 (app=app:v2) deployment "web" exceeded its progress deadline: 0/2 available'
    )


def test_a_stale_deadline_naming_another_revision_or_a_rule_turned_off_finds_nothing():
    assert AutoRollbackWatcher(cluster(deadline_rs="web-h1"), config()).find_failed_releases() == []
    off = config(progress_deadline=False)
    assert AutoRollbackWatcher(cluster(deadline_rs="web-h2"), off).find_failed_releases() == []


def test_every_rule_that_fires_is_in_the_evidence():
    source = cluster(deadline_rs="web-h2", pods=[pod("web-h2-a", 3)])
    [failure] = AutoRollbackWatcher(source, config()).find_failed_releases()
    assert failure.triggers == (Trigger.PROGRESS_DEADLINE, Trigger.CRASH_LOOP)
    assert "exceeded its progress deadline: 0/2 available; crash-looping: pod" in failure.evidence


def test_failing_checks_are_found_once_they_failed_for_the_whole_window():
    clock, checks = FakeClock(), FakeChecks()
    watcher = AutoRollbackWatcher(
        cluster(), config(failing_checks_seconds=60), clock=clock, check_runner=checks
    )
    assert watcher.find_failed_releases() == []
    clock.now += 59
    assert watcher.find_failed_releases() == [], "not before the window"
    clock.now += 1
    [failure] = watcher.find_failed_releases()
    assert failure.triggers == (Trigger.FAILING_CHECKS,)
    assert failure.evidence == (
        "revision 2 (app=app:v2) checks failing for 60s without a pass (window 60s): "
        "✗ health: HTTP 500, expected 200"
    )
    assert checks.runs == 3


def test_a_passing_check_in_the_window_starts_it_again():
    clock, checks = FakeClock(), FakeChecks()
    watcher = AutoRollbackWatcher(
        cluster(), config(failing_checks_seconds=60), clock=clock, check_runner=checks
    )
    watcher.find_failed_releases()
    clock.now += 40
    checks.failing = False
    assert watcher.find_failed_releases() == []
    checks.failing = True
    clock.now += 1
    watcher.find_failed_releases()
    clock.now += 40
    assert watcher.find_failed_releases() == []
    clock.now += 20
    assert len(watcher.find_failed_releases()) == 1


def test_checks_are_not_run_without_a_window():
    checks = FakeChecks()
    watcher = AutoRollbackWatcher(cluster(), config(), check_runner=checks)
    assert watcher.find_failed_releases() == []
    assert checks.runs == 0


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(
            cluster(cause="rollbot: rolled back by U1 from revision 3 to 2", pods=[pod("p", 9)]),
            id="rollbot-put-it-there",
        ),
        pytest.param(cluster(revisions=1, pods=[pod("p", 9)]), id="nothing-to-go-back-to"),
    ],
)
def test_no_rollback_of_rollbots_own_revision_nor_of_the_only_one(source):
    clock, checks = FakeClock(), FakeChecks()
    watcher = AutoRollbackWatcher(
        source, config(failing_checks_seconds=1), clock=clock, check_runner=checks
    )
    for _ in range(3):
        assert watcher.find_failed_releases() == []
        clock.now += 10
    assert checks.runs == 0


def test_only_opted_in_deployments_are_watched():
    bare = RollbotConfig.model_validate({"namespaces": ["prod"], "auto_rollback_channel": "C0"})
    crashing = [pod("web-h2-a", 5)]
    assert AutoRollbackWatcher(cluster(pods=crashing), bare).find_failed_releases() == []
    annotated = cluster(
        pods=crashing,
        annotations={
            "deployment.kubernetes.io/revision": "2",
            "rollbot.dev/auto-rollback": "true",
        },
    )
    [failure] = AutoRollbackWatcher(annotated, bare).find_failed_releases()
    assert failure.channel == "C0"
