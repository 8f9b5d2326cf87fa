"""Pod logs through the real apiserver: the fake kubelet serves `/containerLogs`,
so `Kube.pod_log` reads what the pods' template says they log."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from bot.assessment import assess_workload
from bot.kube import Kube
from testbed.container_logs import LOG_ERRORS_ANNOTATION, LOG_ERRORS_ENV, LOG_RATE_ENV
from tests.integration.workloads import Workloads, container

pytestmark = pytest.mark.cluster
T = TypeVar("T")


def eventually(what: str, probe: Callable[[], T | None], timeout: float = 15) -> T:
    deadline = time.monotonic() + timeout
    while (found := probe()) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {timeout}s")
        time.sleep(0.2)
    return found


def only_pod(workloads: Workloads, app: str) -> str:
    def running() -> str | None:
        pods = workloads.core.list_namespaced_pod(workloads.namespace, label_selector=f"app={app}")
        live = [p for p in pods.items if not p.metadata.deletion_timestamp]
        ready = [p for p in live if p.status.container_statuses]
        return str(ready[0].metadata.name) if len(live) == 1 and ready else None

    return eventually(f"one pod of {app} running", running)


def logging_app(rate: float, errors: float | None = None) -> dict[str, object]:
    env = [{"name": LOG_RATE_ENV, "value": str(rate)}]
    if errors is not None:
        env.append({"name": LOG_ERRORS_ENV, "value": str(errors)})
    return {"containers": [container("app", "app:v1", env=env)]}


def requests_and_errors(text: str) -> tuple[int, int]:
    requests = [line for line in text.splitlines() if " HTTP/1.1" in line]
    return len(requests), sum(line.startswith("ERROR") for line in requests)


def log_with_requests(kube: Kube, namespace: str, pod: str, count: int, tail: int = 500) -> str:
    """The pod's log once it shows `count` requests."""

    def enough() -> str | None:
        text = kube.pod_log(namespace, pod, 600, tail)
        return text if requests_and_errors(text)[0] >= count else None

    return eventually(f"{count} requests logged", enough)


def test_a_pods_log_is_read_through_the_apiserver(kube: Kube, workloads: Workloads) -> None:
    workloads.create("web", [logging_app(rate=10)], replicas=1)
    pod = only_pod(workloads, "web")

    text = log_with_requests(kube, workloads.namespace, pod, 1)
    lines = text.splitlines()
    assert lines[0] == "INFO  starting app app:v1 (pid 1)"
    assert "INFO  ready to serve requests" in lines
    assert all(line.startswith(("INFO", "WARN")) for line in lines), "no errors by default"
    assert kube.pod_log(workloads.namespace, pod, 600, 200).startswith(text), "the log only grows"


def test_tail_lines_gives_the_last_lines_only(kube: Kube, workloads: Workloads) -> None:
    # One request a minute: after the first, the log stands still while it is read.
    workloads.create("web", [logging_app(rate=1 / 60)], replicas=1)
    pod = only_pod(workloads, "web")
    whole = log_with_requests(kube, workloads.namespace, pod, 1).splitlines()
    assert len(whole) == 5  # the preamble and one request

    assert kube.pod_log(workloads.namespace, pod, 600, 2).splitlines() == whole[-2:]
    assert kube.pod_log(workloads.namespace, pod, 600, 0) == ""


def test_since_seconds_and_timestamps_follow_the_kubelets_rules(
    kube: Kube, workloads: Workloads
) -> None:
    workloads.create("web", [logging_app(rate=10)], replicas=1)
    pod = only_pod(workloads, "web")
    time.sleep(3)
    asked = datetime.now(UTC)
    text = kube.core.read_namespaced_pod_log(
        pod, workloads.namespace, since_seconds=1, timestamps=True, _preload_content=False
    ).data.decode()
    stamps = [datetime.fromisoformat(line.split(" ", 1)[0][:26]) for line in text.splitlines()]
    assert 5 <= len(stamps) <= 15, "about a second of requests at 10 a second"
    assert min(stamps).replace(tzinfo=UTC) >= asked - timedelta(seconds=1.5)
    assert stamps == sorted(stamps)


def test_an_error_fraction_in_the_template_shows_as_error_lines(
    kube: Kube, workloads: Workloads
) -> None:
    workloads.create("web", [logging_app(rate=20, errors=0.3)], replicas=1)
    pod = only_pod(workloads, "web")

    requests, errors = requests_and_errors(log_with_requests(kube, workloads.namespace, pod, 40))
    assert abs(errors - 0.3 * requests) <= 1, (requests, errors)

    facts = assess_workload(kube, workloads.namespace, "web")
    assert facts.error_lines, "the assessment reads the same logs"
    assert all(": ERROR " in line.line() for line in facts.error_lines)


def test_an_annotation_in_the_template_sets_the_error_fraction(
    kube: Kube, workloads: Workloads
) -> None:
    workloads.create("web", [logging_app(rate=20)], replicas=1)
    workloads.patch(
        "web",
        {"spec": {"template": {"metadata": {"annotations": {LOG_ERRORS_ANNOTATION: "1"}}}}},
    )
    workloads.wait_complete("web")
    pod = only_pod(workloads, "web")

    requests, errors = requests_and_errors(log_with_requests(kube, workloads.namespace, pod, 5))
    assert errors == requests, "every request fails"


def test_a_crash_looping_pod_logs_its_traceback(kube: Kube, workloads: Workloads) -> None:
    workloads.create("web", ["app:v1-broken"], replicas=1, wait=False)
    pod = only_pod(workloads, "web")

    lines = kube.pod_log(workloads.namespace, pod, 600, 200).splitlines()
    assert lines[0] == "INFO  starting app app:v1-broken (pid 1)"
    assert lines[2].startswith("ERROR startup failed: ")
    assert "Traceback (most recent call last):" in lines
    assert lines[-1].split(":")[0].endswith("Error")
