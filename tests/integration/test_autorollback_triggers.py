"""What the automatic-rollback watcher finds on the real control plane: crash
loops before any progress deadline, checks failing for a window, and nothing for
healthy revisions, rollbot's own rollbacks or Deployments that did not opt in."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from bot.autorollback import AutoRollbackWatcher, FailedRelease, Trigger
from bot.config import RollbotConfig
from bot.kube import Kube
from testbed.http_service import FakeService
from tests.integration.workloads import Workloads

pytestmark = pytest.mark.cluster

Body = dict[str, Any]
OPT_IN = {"rollbot.dev/auto-rollback": "true"}
CHANNEL = "C0AUTO"
CRASH_LOOP_RESTARTS = 3  # AutoRollbackTriggers' default


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def settings(namespace: str, services: Body | None = None) -> RollbotConfig:
    return RollbotConfig.model_validate(
        {
            "namespaces": [namespace],
            "auto_rollback_channel": CHANNEL,
            "services": services or {},
        }
    )


def checked_service(namespace: str, service: FakeService, window: float) -> Body:
    return {
        "web": {
            "namespace": namespace,
            "auto_rollback": True,
            "health_checks": [{"name": "health", "url": f"{service.url}/health"}],
            "auto_rollback_on": {"failing_checks_seconds": window},
        }
    }


def look_until(
    watcher: AutoRollbackWatcher, found: Callable[[list[FailedRelease]], bool], timeout: float
) -> list[FailedRelease]:
    deadline = time.monotonic() + timeout
    while True:
        failures = watcher.find_failed_releases()
        if found(failures):
            return failures
        if time.monotonic() > deadline:
            raise AssertionError(f"the watcher found {failures} after {timeout}s")
        time.sleep(0.5)


def wait_for_restarts(workloads: Workloads, name: str, restarts: int, timeout: float = 60) -> None:
    """Until a pod of `name` restarted `restarts` times: read with plain API calls."""
    deadline = time.monotonic() + timeout
    while True:
        raw = workloads.core.list_namespaced_pod(
            workloads.namespace, label_selector=f"app={name}", _preload_content=False
        )
        counts = [
            int(cs.get("restartCount") or 0)
            for pod in json.loads(raw.data)["items"]
            for cs in pod.get("status", {}).get("containerStatuses") or []
        ]
        if counts and max(counts) >= restarts:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"no pod of {name} restarted {restarts} times: {counts}")
        time.sleep(0.5)


def replica_set_of(workloads: Workloads, name: str, revision: int) -> str:
    return str(workloads.revisions(name)[revision]["metadata"]["name"])


def test_a_crash_looping_revision_is_found_long_before_its_progress_deadline(
    kube: Kube, workloads: Workloads
):
    workloads.create("web", ["app:v1", "app:v2-broken"], progress_deadline=600, annotations=OPT_IN)
    watcher = AutoRollbackWatcher(kube, settings(workloads.namespace))
    [failure] = look_until(watcher, bool, timeout=60)
    bad = replica_set_of(workloads, "web", 2)
    assert (failure.deployment, failure.replica_set, failure.revision) == ("web", bad, 2)
    assert failure.triggers == (Trigger.CRASH_LOOP,)
    assert failure.channel == CHANNEL
    assert failure.evidence.startswith("revision 2 (app=app:v2-broken) crash-looping: pod ")
    assert re.search(
        rf"pod {bad}-\w+ container app: CrashLoopBackOff, \d+ restarts", failure.evidence
    )
    conditions = workloads.get("web")["status"].get("conditions") or []
    assert not any(c.get("reason") == "ProgressDeadlineExceeded" for c in conditions)


def test_a_healthy_new_revision_is_not_found(kube: Kube, workloads: Workloads):
    clock = FakeClock()
    with FakeService() as service:
        config = settings(workloads.namespace, checked_service(workloads.namespace, service, 5))
        workloads.create("web", ["app:v1", "app:v2"])
        watcher = AutoRollbackWatcher(kube, config, clock=clock)
        for _ in range(4):
            assert watcher.find_failed_releases() == []
            clock.now += 10
        assert service.requests == 4, "the checks ran at every look"


def test_checks_failing_for_the_window_are_found_and_a_new_revision_starts_it_again(
    kube: Kube, workloads: Workloads
):
    clock = FakeClock()
    with FakeService(mode="failing") as service:
        config = settings(workloads.namespace, checked_service(workloads.namespace, service, 30))
        workloads.create("web", ["app:v1", "app:v2"])
        watcher = AutoRollbackWatcher(kube, config, clock=clock)
        assert watcher.find_failed_releases() == []
        clock.now += 29
        assert watcher.find_failed_releases() == [], "not before the window"
        clock.now += 1
        [failure] = watcher.find_failed_releases()
        assert failure.triggers == (Trigger.FAILING_CHECKS,)
        assert failure.replica_set == replica_set_of(workloads, "web", 2)
        assert failure.evidence == (
            "revision 2 (app=app:v2) checks failing for 30s without a pass (window 30s): "
            "✗ health: HTTP 500, expected 200"
        )

        workloads.roll("web", "app:v3", cause="revision 3: app:v3")
        workloads.wait_complete("web")
        clock.now += 1
        assert watcher.find_failed_releases() == [], "a new revision has a window of its own"
        clock.now += 30
        [failure] = watcher.find_failed_releases()
        assert (failure.revision, failure.replica_set) == (3, replica_set_of(workloads, "web", 3))


def test_a_revision_rollbot_rolled_back_to_is_not_found_even_when_failing(
    kube: Kube, workloads: Workloads
):
    clock = FakeClock()
    with FakeService(mode="failing") as service:
        config = settings(workloads.namespace, checked_service(workloads.namespace, service, 30))
        workloads.create("web", ["app:v1-broken", "app:v2"])
        # What rollbot writes when it goes back (bot.engine.change_cause_for).
        workloads.roll(
            "web", "app:v1-broken", cause="rollbot: rolled back by U0ALICE from revision 2 to 1"
        )
        wait_for_restarts(workloads, "web", CRASH_LOOP_RESTARTS)
        current = workloads.revisions("web")[3]
        assert current["metadata"]["annotations"]["kubernetes.io/change-cause"].startswith(
            "rollbot:"
        )
        watcher = AutoRollbackWatcher(kube, config, clock=clock)
        for _ in range(3):
            assert watcher.find_failed_releases() == []
            clock.now += 30
        assert service.requests == 0, "no checks for a revision that is never rolled back"


def test_a_deployment_that_did_not_opt_in_is_not_found(kube: Kube, workloads: Workloads):
    workloads.create("web", ["app:v1", "app:v2-broken"], progress_deadline=600)
    wait_for_restarts(workloads, "web", CRASH_LOOP_RESTARTS)
    watcher = AutoRollbackWatcher(kube, settings(workloads.namespace))
    assert watcher.find_failed_releases() == []
