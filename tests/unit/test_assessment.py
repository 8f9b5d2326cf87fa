"""The assessment: its time budget (a source that hangs is unknown, never a wait), the
error rate from the logs and from Prometheus, and the decision matrix."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from bot.assessment import ERROR_PATTERN, assess_workload, compared, decide, summarize
from bot.checks import CheckResult, HttpCheck
from bot.cluster_facts import CrashLoop, PodFacts, WarningEvent, warning_events
from bot.error_rate import (
    LOG_READERS,
    LOG_TAIL_LINES,
    MAX_LOG_PODS,
    ErrorRateReading,
    LogLine,
    UnusableAnswer,
    count_lines,
    percent,
    prometheus_error_rate,
    prometheus_value,
)
from bot.errors import PermanentError
from bot.signals import ErrorRate, PrometheusQuery, Thresholds
from testbed.http_service import FakeService
from testbed.prometheus import FakePrometheus
from tests.unit import builders

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

    def list_replica_sets(self, namespace, label_selector):
        return []

    def list_warning_events(self, namespace):
        return [
            {
                "involvedObject": {"kind": "Pod", "name": "web-1"},
                "reason": "BackOff",
                "message": "Back-off restarting",
                "count": 3,
            }
        ]

    def pod_log(self, namespace, pod, since_seconds, tail, container=None):
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
    assert result.warnings == (WarningEvent("Pod", "web-1", "BackOff", "Back-off restarting", 3),)
    assert "  BackOff: Back-off restarting (×3)" in result.summary_lines()
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


# --- the decision matrix, row by row, with a service's own numbers ---------------------

STRICT = Thresholds(high_error_rate=0.2, slow_response_seconds=2, monitor_minutes=7)
HEALTHY_PODS = PodFacts(ready=4, total=4, restarts=0, crash_looping=())


def logs_rate(rate: float) -> ErrorRateReading:
    return ErrorRateReading("logs", rate, window_minutes=10)


def check(ok: bool = True, seconds: float = 0.05) -> CheckResult:
    return CheckResult("health", ok, "HTTP 200" if ok else "HTTP 500", 200 if ok else 500, seconds)


def test_every_health_check_failing_is_critical_whatever_else_is_known():
    decision = decide(HEALTHY_PODS, False, (), (check(False), check(False)), logs_rate(0.0), STRICT)
    assert decision.severity == "critical"
    assert decision.recommendation.startswith("the service is down")
    assert decision.monitor_minutes is None


def test_no_pod_ready_is_critical():
    decision = decide(PodFacts(0, 3, 9, ()), False, (), (), logs_rate(0.0), STRICT)
    assert decision == ("critical", "no pod is ready: roll back now", None)


def test_an_error_rate_above_the_services_threshold_is_high_roll_back_now():
    decision = decide(HEALTHY_PODS, False, (), (), logs_rate(0.25), STRICT)
    assert decision.severity == "high"
    assert decision.recommendation == "error rate 25 % in the logs, above 20 %: roll back now"
    assert decide(HEALTHY_PODS, False, (), (), logs_rate(0.25)).severity == "medium", (
        "25 % is under the runbook's default of 50 %"
    )


def test_an_error_rate_at_the_threshold_is_not_above_it():
    assert decide(HEALTHY_PODS, False, (), (), logs_rate(0.2), STRICT).severity == "medium"


def test_a_rate_from_prometheus_is_named_as_such():
    reading = ErrorRateReading("Prometheus", 0.7)
    decision = decide(HEALTHY_PODS, False, (), (), reading)
    assert decision.recommendation == "error rate 70 % from Prometheus, above 50 %: roll back now"


def test_a_passing_check_slower_than_the_threshold_is_high():
    decision = decide(HEALTHY_PODS, False, (), (check(seconds=2.5),), logs_rate(0.0), STRICT)
    assert decision.severity == "high"
    assert decision.recommendation == "health answers in 2.5 s, slower than 2 s: roll back now"
    assert decide(HEALTHY_PODS, False, (), (check(seconds=1.5),), None, STRICT).severity == "low"


def test_a_failing_check_half_the_pods_broken_or_a_missed_deadline_is_high():
    assert decide(HEALTHY_PODS, False, (), (check(), check(False)), None, STRICT)[0] == "high"
    crashing = (CrashLoop("web-a", "app", "CrashLoopBackOff"),) * 2
    assert decide(PodFacts(1, 3, 2, crashing), False, (), (), None, STRICT)[0] == "high"
    missed = decide(HEALTHY_PODS, True, (), (), None, STRICT)
    assert missed.severity == "high" and "progress deadline" in missed.recommendation


def test_a_lower_error_rate_is_medium_and_monitored_for_the_services_minutes():
    errors = (LogLine("web-1", "ERROR"),)
    decision = decide(HEALTHY_PODS, False, errors, (), logs_rate(0.05), STRICT)
    assert decision.severity == "medium"
    assert decision.monitor_minutes == 7
    assert decision.recommendation == (
        "some failures: monitor for 7 minutes, roll back if it gets worse "
        "(error rate 5 % in the logs)"
    )


def test_some_broken_pods_or_error_lines_are_medium_with_the_default_monitor_time():
    broken = decide(PodFacts(3, 4, 1, (CrashLoop("web-4", "app", "CrashLoopBackOff"),)), False, ())
    assert broken.severity == "medium" and broken.monitor_minutes == 10
    assert "1 of 4 pods not ready, 1 containers crash-looping" in broken.recommendation
    lines = decide(HEALTHY_PODS, False, (LogLine("web-1", "ERROR db timeout"),), (), None)
    assert lines.severity == "medium" and "1 error lines in the logs" in lines.recommendation


def test_nothing_wrong_is_low_and_nothing_to_monitor():
    decision = decide(HEALTHY_PODS, False, (), (check(),), logs_rate(0.0), STRICT)
    assert decision.severity == "low" and decision.monitor_minutes is None


# --- the error rate from the logs -----------------------------------------------------


def lines_of(total: int, errors: int) -> str:
    """`total` access-log lines, `errors` of them 5xx ERROR lines, spread out."""
    out = []
    for n in range(total):
        if n * errors // total != (n + 1) * errors // total:
            out.append(f'ERROR 10.0.0.1 "GET /api/{n} HTTP/1.1" 503 20ms: upstream timed out')
        else:
            out.append(f'INFO  10.0.0.1 "GET /api/{n} HTTP/1.1" 200 3ms')
    return "\n".join(out) + "\n"


def ready_pod(name: str) -> dict:
    return {**READY_POD, "metadata": {"name": name}}


class LoggingPods:
    """Pods whose logs are given; a log that is None hangs, an exception is raised."""

    def __init__(self, logs: dict, delay: float = 0.0) -> None:
        self.logs = logs
        self.delay = delay
        self.asked: list[tuple[str, int, int]] = []
        self.reading = self.most_at_once = 0
        self.lock = threading.Lock()
        self.release = threading.Event()

    def get_deployment(self, namespace, name):
        return DEPLOYMENT

    def list_pods(self, namespace, label_selector):
        return [ready_pod(name) for name in self.logs]

    def list_replica_sets(self, namespace, label_selector):
        return []

    def list_warning_events(self, namespace):
        return []

    def pod_log(self, namespace, pod, since_seconds, tail, container=None):
        with self.lock:
            self.asked.append((pod, since_seconds, tail))
            self.reading += 1
            self.most_at_once = max(self.most_at_once, self.reading)
        try:
            time.sleep(self.delay)
            log = self.logs[pod]
            if log is None:
                self.release.wait(10)
                return ""
            if isinstance(log, Exception):
                raise log
            return log
        finally:
            with self.lock:
                self.reading -= 1


def test_the_error_rate_from_logs_is_the_share_of_matching_lines():
    source = LoggingPods({"web-1": lines_of(250, 30), "web-2": lines_of(250, 30)})
    result = assess_workload(source, "prod", "web")
    assert result.error_rate is not None
    assert (result.error_rate.lines, result.error_rate.matching) == (500, 60)
    assert result.error_rate.rate == pytest.approx(0.12)
    assert "Error rate (logs, last 10 min): 12 % (60 of 500 lines)" in result.summary_lines()
    assert len(result.error_lines or ()) == 60
    assert result.severity == "medium" and result.monitor_minutes == 10


def test_blank_lines_are_not_counted():
    count = count_lines("ERROR boom\n\n   \nINFO fine\n", ERROR_PATTERN)
    assert (count.lines, count.matching) == (2, ("ERROR boom",))


def test_the_services_pattern_and_window_are_used():
    source = LoggingPods({"web-1": "GET / 503\nGET / 200\nERROR not an error here\nGET / 200\n"})
    config = ErrorRate(log_pattern=r"\s5\d\d$", window_minutes=2)
    result = assess_workload(source, "prod", "web", error_rate=config)
    assert source.asked == [("web-1", 120, LOG_TAIL_LINES)]
    assert "Error rate (logs, last 2 min): 25 % (1 of 4 lines)" in result.summary_lines()
    assert result.error_lines == (LogLine("web-1", "GET / 503"),)


def test_a_log_longer_than_the_tail_says_only_the_newest_lines_were_read():
    source = LoggingPods({"web-1": lines_of(LOG_TAIL_LINES, 50)})
    [reading] = assess_workload(source, "prod", "web").error_rates
    assert reading.note == (
        f"50 of {LOG_TAIL_LINES} lines; at most the newest {LOG_TAIL_LINES} lines of each pod"
    )


def test_many_pods_are_sampled_evenly_and_the_summary_says_so():
    logs = {f"web-{n:02}": lines_of(10, 1) for n in range(40)}
    source = LoggingPods(logs)
    result = assess_workload(source, "prod", "web")
    read = sorted(pod for pod, _, _ in source.asked)
    assert len(read) == MAX_LOG_PODS
    assert read == [f"web-{n * 40 // MAX_LOG_PODS:02}" for n in range(MAX_LOG_PODS)], "spread out"
    assert result.pods is not None and result.pods.total == 40
    lines = 10 * MAX_LOG_PODS
    assert (
        f"Error rate (logs, last 10 min): 10 % ({lines // 10} of {lines} lines; a sample of "
        f"{MAX_LOG_PODS} of 40 pods)" in result.summary_lines()
    )


def test_pod_logs_are_read_concurrently_a_few_at_a_time():
    source = LoggingPods({f"web-{n}": lines_of(10, 0) for n in range(8)}, delay=0.2)
    started = time.monotonic()
    result = assess_workload(source, "prod", "web", budget=5)
    elapsed = time.monotonic() - started
    assert result.error_rate is not None and result.error_rate.lines == 80
    assert 1 < source.most_at_once <= LOG_READERS
    assert elapsed < 8 * 0.2 * 0.75, "not one after another"


def test_a_pod_whose_log_cannot_be_read_is_said_not_hidden():
    source = LoggingPods(
        {
            "web-1": lines_of(20, 2),
            "web-2": PermanentError('container "app" is waiting to start: ContainerCreating'),
        }
    )
    [reading] = assess_workload(source, "prod", "web").error_rates
    assert reading.rate == pytest.approx(0.1)
    assert reading.note == "2 of 20 lines; 1 pods' logs not readable"


def test_no_readable_log_is_an_unknown_rate_with_the_reason():
    source = LoggingPods({"web-1": PermanentError("no log yet")})
    result = assess_workload(source, "prod", "web")
    assert result.error_lines is None and result.error_rate is None
    assert "Error rate (logs, last 10 min): unknown (no pod's log readable; web-1: no log yet)" in (
        result.summary_lines()
    )


def test_a_log_that_hangs_past_the_budget_leaves_the_others_counted():
    source = LoggingPods({"web-1": lines_of(20, 4), "web-2": None})
    started = time.monotonic()
    result = assess_workload(source, "prod", "web", budget=0.6)
    elapsed = time.monotonic() - started
    source.release.set()
    assert elapsed < 1.1
    assert "logs" not in result.unknown
    assert result.error_rate is not None and result.error_rate.rate == pytest.approx(0.2)
    assert result.error_rate.note == "4 of 20 lines; 1 pods' logs did not answer in time"


# --- the error rate from Prometheus ---------------------------------------------------


def answer(kind: str, result: object) -> dict:
    return {"status": "success", "data": {"resultType": kind, "result": result}}


def test_a_scalar_or_a_one_element_vector_is_the_error_rate():
    assert prometheus_value(answer("scalar", [1700000000.5, "0.7"])) == 0.7
    vector = [{"metric": {"job": "web"}, "value": [1700000000.5, "0.05"]}]
    assert prometheus_value(answer("vector", vector)) == 0.05


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (answer("vector", []), "no series"),
        (answer("scalar", [1.0, "NaN"]), "NaN"),
        (answer("vector", [{"value": [1.0, "0.1"]}, {"value": [1.0, "0.2"]}]), "2 series"),
        (answer("matrix", []), "a matrix"),
        (answer("scalar", [1.0, "7"]), "not a ratio"),
        (answer("scalar", [1.0, "lots"]), "no number"),
        (answer("vector", [{"metric": {}}]), "no number"),
        ({"status": "error", "error": "parse error at char 5"}, "parse error at char 5"),
        (["not", "an", "object"], "not a Prometheus query result"),
    ],
)
def test_an_answer_that_is_not_one_ratio_is_unusable_and_says_why(payload, reason):
    with pytest.raises(UnusableAnswer, match=reason):
        prometheus_value(payload)


def query(prometheus: FakePrometheus, timeout: float = 2) -> PrometheusQuery:
    return PrometheusQuery(url=prometheus.url, query="errors / requests", timeout_seconds=timeout)


def test_prometheus_is_asked_the_configured_query_over_http():
    with FakePrometheus(value=0.7, result_type="scalar") as prometheus:
        reading = prometheus_error_rate(query(prometheus))
    assert reading.rate == 0.7 and prometheus.queries == ["errors / requests"]
    assert reading.line() == "Error rate (Prometheus): 70 %"


@pytest.mark.parametrize(
    ("setting", "reason"),
    [
        ({"mode": "error"}, "HTTP 503: overloaded"),
        ({"mode": "garbage"}, "the answer is not JSON"),
        ({"mode": "hang"}, "no answer within 0.3s"),
        ({"value": "NaN"}, "NaN"),
        ({"series": 0}, "no series"),
    ],
)
def test_a_prometheus_that_fails_is_an_unknown_rate_with_the_reason(setting, reason):
    with FakePrometheus(**setting) as prometheus:
        reading = prometheus_error_rate(query(prometheus, timeout=0.3))
    assert reading.rate is None and reason in reading.note
    assert reading.line().startswith("Error rate (Prometheus): unknown (")


def test_an_unreachable_prometheus_is_an_unknown_rate():
    with FakePrometheus() as prometheus:
        gone = query(prometheus)
    reading = prometheus_error_rate(gone)
    assert reading.rate is None and reading.note.startswith("unreachable")


def test_prometheus_gives_the_rate_and_the_logs_stay_shown():
    source = LoggingPods({"web-1": lines_of(100, 5)})
    with FakePrometheus(value=0.7) as prometheus:
        config = ErrorRate(prometheus=query(prometheus))
        result = assess_workload(source, "prod", "web", error_rate=config)
    assert result.severity == "high"
    assert result.error_rate is not None and result.error_rate.origin == "Prometheus"
    shown = result.summary_lines()
    assert shown.index("Error rate (Prometheus): 70 %") < shown.index(
        "Error rate (logs, last 10 min): 5 % (5 of 100 lines)"
    )


def test_without_an_answer_from_prometheus_the_logs_rate_decides():
    source = LoggingPods({"web-1": lines_of(100, 60)})
    with FakePrometheus(mode="error") as prometheus:
        config = ErrorRate(prometheus=query(prometheus))
        result = assess_workload(source, "prod", "web", error_rate=config)
    assert result.severity == "high" and "in the logs" in result.recommendation
    assert "Error rate (Prometheus): unknown (HTTP 503: overloaded)" in result.summary_lines()


def test_a_hanging_prometheus_is_unknown_and_the_budget_holds():
    source = LoggingPods({"web-1": lines_of(100, 5)})
    with FakePrometheus(mode="hang") as prometheus:
        config = ErrorRate(prometheus=query(prometheus, timeout=30))
        started = time.monotonic()
        result = assess_workload(source, "prod", "web", budget=0.5, error_rate=config)
        elapsed = time.monotonic() - started
    assert elapsed < 1.0
    assert result.unknown == ("prometheus",)
    assert "Error rate (Prometheus): unknown (no answer in time)" in result.summary_lines()
    assert result.severity == "medium" and result.monitor_minutes == 10


def test_rates_are_shown_to_two_significant_digits_and_never_rounded_up_to_all():
    shown = [percent(r) for r in (0.12, 0.048, 0.0004, 0.7, 0.997, 1.0, 0.0)]
    assert shown == ["12 %", "4.8 %", "0.04 %", "70 %", "99.7 %", "100 %", "0 %"]


# --- what the assessment quotes, and how it words it ----------------------------------

WEB = {**DEPLOYMENT, "metadata": {**DEPLOYMENT["metadata"], "uid": "uid-web"}}


def replica_set(name: str, owner_uid: str) -> dict:
    return {"metadata": {"name": name, "ownerReferences": [{"uid": owner_uid}]}}


def event(kind: str, name: str, reason: str, message: str = "") -> dict:
    return {"involvedObject": {"kind": kind, "name": name}, "reason": reason, "message": message}


def test_warning_events_of_web_are_its_own_not_those_of_web_api():
    replica_sets = [replica_set("web-7c9f", "uid-web"), replica_set("web-api-5d8b", "uid-api")]
    events = [
        event("Deployment", "web", "ProgressDeadlineExceeded"),
        event("ReplicaSet", "web-7c9f", "FailedCreate", "exceeded quota"),
        event("Pod", "web-7c9f-xk2lp", "BackOff", "back-off restarting"),
        event("Pod", "web-7c9f-gone1", "Failed", "a pod since deleted"),
        event("Deployment", "web-api", "ProgressDeadlineExceeded"),
        event("ReplicaSet", "web-api-5d8b", "FailedCreate", "exceeded quota"),
        event("Pod", "web-api-5d8b-q7zt2", "BackOff", "back-off restarting"),
        event("Service", "web", "SyncLoadBalancerFailed"),
    ]
    pods = [{"metadata": {"name": "web-7c9f-xk2lp"}}]
    found = warning_events(events, WEB, replica_sets, pods)
    assert [(e.kind, e.name) for e in found] == [
        ("Deployment", "web"),
        ("ReplicaSet", "web-7c9f"),
        ("Pod", "web-7c9f-xk2lp"),
        ("Pod", "web-7c9f-gone1"),
    ]


def test_quoted_log_lines_and_event_messages_are_redacted():
    class Leaky(LoggingPods):
        def list_warning_events(self, namespace):
            return [event("Pod", "web-1", "Failed", "pull with password=hunter2 failed")]

    source = Leaky({"web-1": "ERROR auth failed for xoxb-1234-5678-abcdefgh\nINFO ok\n"})
    result = assess_workload(source, "prod", "web")
    shown = "\n".join(result.summary_lines())
    assert "hunter2" not in shown and "xoxb-1234" not in shown
    assert "  web-1: ERROR auth failed for [redacted]" in result.summary_lines()
    assert "  Failed: pull with password=[redacted] failed" in result.summary_lines()


def test_the_summary_is_plain_text_with_the_severity_and_recommendation_first():
    source = LoggingPods({"web-1": lines_of(100, 5)})
    result = assess_workload(source, "prod", "web")
    lines = result.summary_lines()
    assert lines[0] == f"Severity: medium — {result.recommendation}"
    assert lines[1:] == result.fact_lines()
    assert not any(mark in line for line in lines for mark in ("*", "`", "<@", ":warning:"))


def test_several_deployments_are_summed_up_by_the_worst_with_each_one_named():
    healthy = assess_workload(LoggingPods({"web-1": lines_of(10, 0)}), "prod", "web")
    failing = assess_workload(LoggingPods({"web-1": lines_of(10, 8)}), "prod", "web")
    summary = summarize({"backend": healthy, "worker": failing})
    assert (summary.severity, summary.recommendation) == ("high", failing.recommendation)
    assert summary.facts == (
        f"backend: {healthy.fact_lines()[0]}",
        f"backend: {healthy.fact_lines()[1]}",
        f"worker: {failing.fact_lines()[0]}",
        f"worker: {failing.fact_lines()[1]}",
    )
    assert summary.lines()[0] == f"Severity: high — {failing.recommendation}"
    one = summarize({"web": failing})
    assert one.facts == tuple(failing.fact_lines()) and one.monitor_minutes is None


@pytest.mark.parametrize(
    ("before", "now", "verdict"),
    [
        ("medium", "high", "worse"),
        ("medium", "critical", "worse"),
        ("high", "medium", "better"),
        ("medium", "medium", "no better"),
        (None, "low", "no better"),
        (None, "medium", "worse"),
    ],
)
def test_a_reassessment_is_worse_better_or_no_better_by_severity(before, now, verdict):
    assert compared(before, now) == verdict


class RolledOut(LoggingPods):
    """A Deployment at v3 whose ReplicaSets were made at given times."""

    def __init__(self, replica_sets: list[dict]) -> None:
        super().__init__({"web-1": "INFO ok\n"})
        self.replica_sets = replica_sets

    def get_deployment(self, namespace, name):
        return builders.deployment(builders.template("app:v3"))

    def list_replica_sets(self, namespace, label_selector):
        return self.replica_sets


def test_the_assessment_knows_when_the_running_revision_started_rolling_out():
    source = RolledOut(
        [
            builders.replica_set(
                "web-2", "2", builders.template("app:v2"), created="2026-11-01T10:00:00Z"
            ),
            builders.replica_set(
                "web-3", "3", builders.template("app:v3"), created="2026-11-02T09:30:00Z"
            ),
        ]
    )
    result = assess_workload(source, "prod", "web")
    assert result.revision_since == datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    later = RolledOut(source.replica_sets[:1])  # the running template has no ReplicaSet yet
    assert assess_workload(later, "prod", "web").revision_since is None
    assert summarize(
        {"web": result, "web-2": assess_workload(later, "prod", "web")}
    ).revision_since == (datetime(2026, 11, 2, 9, 30, tzinfo=UTC))
