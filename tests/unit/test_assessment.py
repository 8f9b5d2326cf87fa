"""The assessment's time budget: a source that hangs is unknown, never a wait."""

from __future__ import annotations

import threading
import time

from bot.assessment import assess_workload
from bot.checks import HttpCheck
from testbed.http_service import FakeService

DEPLOYMENT = {
    "metadata": {"name": "web", "namespace": "prod", "generation": 1},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}},
    "status": {
        "observedGeneration": 1,
        "replicas": 2,
        "updatedReplicas": 2,
        "availableReplicas": 2,
        "readyReplicas": 2,
    },
}
READY_POD = {
    "metadata": {"name": "web-1"},
    "status": {
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [{"name": "app", "restartCount": 0, "state": {"running": {}}}],
    },
}


class HangingLogs:
    """Kubernetes answers pods and events at once, but the log call hangs."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def get_deployment(self, namespace, name):
        return DEPLOYMENT

    def list_pods(self, namespace, label_selector):
        return [READY_POD, {**READY_POD, "metadata": {"name": "web-2"}}]

    def list_warning_events(self, namespace):
        return [
            {
                "involvedObject": {"name": "web-1"},
                "reason": "BackOff",
                "message": "Back-off restarting",
                "count": 3,
            }
        ]

    def pod_log(self, namespace, pod, since_seconds, tail):
        self.release.wait(10)
        return "ERROR never seen"


def test_a_hanging_source_is_unknown_and_the_budget_holds():
    source = HangingLogs()
    started = time.monotonic()
    result = assess_workload(source, "prod", "web", budget=0.5)
    elapsed = time.monotonic() - started
    source.release.set()
    assert elapsed < 1.0
    assert result.error_lines is None and result.unknown == ("logs",)
    assert result.pods is not None and result.pods.ready == 2
    assert result.warnings == ("BackOff: Back-off restarting (×3)",)
    assert "Error lines in recent logs: unknown (logs not readable)" in result.summary_lines()


def test_health_checks_join_the_assessment_and_a_down_service_is_critical():
    source = HangingLogs()
    source.release.set()
    with FakeService(mode="failing") as service:
        result = assess_workload(
            source,
            "prod",
            "web",
            budget=2,
            health_checks=[HttpCheck(name="health", url=f"{service.url}/health")],
        )
    assert result.severity == "critical"
    assert "Health: ✗ health: HTTP 500, expected 200" in result.summary_lines()
