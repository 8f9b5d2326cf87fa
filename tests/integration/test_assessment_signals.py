"""The error rate and the decision matrix on the real control plane: the pods' logs
(served by the fake kubelet through the apiserver) and a local Prometheus."""

from __future__ import annotations

import time

import pytest

from bot.assessment import Assessment, assess_workload
from bot.error_rate import ErrorRateReading
from bot.kube import Kube
from bot.signals import ErrorRate, PrometheusQuery, Thresholds
from testbed.container_logs import LOG_ERRORS_ENV, LOG_RATE_ENV
from testbed.prometheus import FakePrometheus
from tests.integration.workloads import Workloads, container

pytestmark = pytest.mark.cluster

LINES_WANTED = 200  # enough that the start-up lines hardly weigh on the share
PATIENCE = 30


def logging_app(errors: float, rate: float = 50) -> dict[str, object]:
    env = [
        {"name": LOG_RATE_ENV, "value": str(rate)},
        {"name": LOG_ERRORS_ENV, "value": str(errors)},
    ]
    return {"containers": [container("app", "app:v1", env=env)]}


PREAMBLE_LINES = 4  # each container's start-up lines before its first request


def assert_error_share(reading: ErrorRateReading | None, fraction: float, pods: int = 2) -> None:
    """The share the pods were told to log, as the testbed spreads it: per container,
    `fraction` of its requests give or take one, among lines that include each
    container's start-up preamble (which holds no error)."""
    assert reading is not None and reading.lines
    requests = reading.lines - pods * PREAMBLE_LINES
    low, high = fraction * requests - pods, fraction * reading.lines + pods
    assert low <= reading.matching <= high, (reading.line(), low, high)


def assessed_over_enough_lines(
    kube: Kube, namespace: str, error_rate: ErrorRate, thresholds: Thresholds | None = None
) -> Assessment:
    """The assessment, once the pods' logs hold LINES_WANTED lines in all."""
    deadline = time.monotonic() + PATIENCE
    while True:
        result = assess_workload(
            kube,
            namespace,
            "web",
            budget=10,
            error_rate=error_rate,
            thresholds=thresholds or Thresholds(),
        )
        logs = next(r for r in result.error_rates if r.origin == "logs")
        if logs.lines >= LINES_WANTED:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"only {logs.lines} log lines after {PATIENCE}s: {logs.line()}")
        time.sleep(0.5)


def test_pods_logging_60_percent_errors_are_high_roll_back_now(
    kube: Kube, workloads: Workloads
) -> None:
    workloads.create("web", [logging_app(errors=0.6)], replicas=2)

    result = assessed_over_enough_lines(kube, workloads.namespace, error_rate=ErrorRate())

    assert result.error_rate is not None and result.error_rate.origin == "logs"
    assert_error_share(result.error_rate, 0.6)
    assert result.severity == "high", result.summary_lines()
    assert result.recommendation.startswith("error rate 5")
    assert result.recommendation.endswith("in the logs, above 50 %: roll back now")
    assert result.monitor_minutes is None


def test_pods_logging_5_percent_errors_are_medium_monitored_for_the_services_minutes(
    kube: Kube, workloads: Workloads
) -> None:
    workloads.create("web", [logging_app(errors=0.05)], replicas=2)

    result = assessed_over_enough_lines(
        kube,
        workloads.namespace,
        error_rate=ErrorRate(window_minutes=5),
        thresholds=Thresholds(monitor_minutes=3),
    )

    assert result.error_rate is not None
    assert_error_share(result.error_rate, 0.05)
    assert result.severity == "medium", result.summary_lines()
    assert result.monitor_minutes == 3
    assert "monitor for 3 minutes, roll back if it gets worse" in result.recommendation
    shown = result.summary_lines()
    assert shown[0].startswith("Severity: medium — some failures: monitor for 3 minutes")
    assert shown[0].endswith(" in the logs)")
    assert any(line.startswith("Error rate (logs, last 5 min): ") for line in shown), shown


def test_prometheus_answering_0_7_is_high_though_the_logs_are_clean(
    kube: Kube, workloads: Workloads
) -> None:
    workloads.create("web", [logging_app(errors=0)], replicas=2)

    with FakePrometheus(value=0.7) as prometheus:
        query = PrometheusQuery(url=prometheus.url, query='sum(rate(http_errors{app="web"}[5m]))')
        result = assessed_over_enough_lines(
            kube, workloads.namespace, error_rate=ErrorRate(prometheus=query)
        )

    assert prometheus.queries and set(prometheus.queries) == {query.query}
    assert result.severity == "high", result.summary_lines()
    assert result.recommendation == "error rate 70 % from Prometheus, above 50 %: roll back now"
    shown = result.summary_lines()
    assert "Error rate (Prometheus): 70 %" in shown
    assert any(line.startswith("Error rate (logs, last 10 min): 0 % (0 of ") for line in shown)


def test_a_hanging_prometheus_is_unknown_and_the_assessment_keeps_its_budget(
    kube: Kube, workloads: Workloads
) -> None:
    workloads.create("web", [logging_app(errors=0)], replicas=2)
    budget = 2.0

    with FakePrometheus(mode="hang") as prometheus:
        query = PrometheusQuery(url=prometheus.url, query="errors", timeout_seconds=30)
        started = time.monotonic()
        result = assess_workload(
            kube, workloads.namespace, "web", budget=budget, error_rate=ErrorRate(prometheus=query)
        )
        elapsed = time.monotonic() - started

    assert elapsed < budget + 1, f"took {elapsed:.2f}s on a {budget:g}s budget"
    assert "prometheus" in result.unknown
    assert "Error rate (Prometheus): unknown (no answer in time)" in result.summary_lines()
    assert result.pods is not None and result.pods.ready == 2
    assert result.severity != "high", "an unknown rate is no reason to roll back"


def test_the_application_containers_log_counts_when_a_sidecar_runs_beside_it(
    kube: Kube, workloads: Workloads
) -> None:
    quiet = [{"name": LOG_RATE_ENV, "value": "50"}, {"name": LOG_ERRORS_ENV, "value": "0"}]
    app = logging_app(errors=0.6)
    app["containers"] = [*app["containers"], container("proxy", "envoy:1.30", env=quiet)]
    workloads.create("web", [app], replicas=1)

    result = assessed_over_enough_lines(kube, workloads.namespace, error_rate=ErrorRate())

    assert result.error_rate is not None and result.error_rate.origin == "logs"
    assert (result.error_rate.rate or 0) >= 0.55, result.error_rate.line()
    assert result.severity == "high"
