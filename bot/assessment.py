"""Is a rollback needed? The runbooks' first five minutes, gathered at once.

Pods (ready, restarts, crash loops), recent Warning events, the error rate (the
share of log lines matching the service's pattern, or Prometheus' answer) and
the health checks are read concurrently within a time budget; a source that
does not answer in time is shown as unknown and never holds up the
confirmation. The severity and recommendation follow the family-assistant
runbook's decision matrix, with the numbers from the service's `thresholds`.

The result is data (`Assessment`, each fact a field or a small typed item);
`summary_lines()` words it as plain text. Everything quoted from the cluster
(event messages, log lines, reasons) is redacted here; escaping it for a
medium is the renderer's job.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple, Protocol

from bot.bodies import Body
from bot.checks import CheckResult, HttpCheck, run_checks
from bot.cluster_facts import PodFacts, WarningEvent, pod_facts, warning_events
from bot.deployments import rollout_history
from bot.error_rate import (
    ErrorRateReading,
    LogLine,
    LogScan,
    percent,
    prometheus_error_rate,
    read_logs,
)
from bot.kube import selector_string
from bot.redaction import redact
from bot.rollout import RolloutPhase, rollout_state
from bot.signals import DEFAULT_ERROR_PATTERN, ErrorRate, Thresholds

Severity = Literal["critical", "high", "medium", "low"]
#: Worst first; several Deployments assessed together take the worst one's severity.
SEVERITY_ORDER: tuple[Severity, ...] = ("critical", "high", "medium", "low")
#: What counts as an error line when the service configures no error rate.
ERROR_PATTERN = re.compile(DEFAULT_ERROR_PATTERN)
MAX_LINES_SHOWN = 5
DEFAULT_THRESHOLDS = Thresholds()


class AssessmentSource(Protocol):
    def get_deployment(self, namespace: str, name: str) -> Body: ...

    def list_pods(self, namespace: str, label_selector: str) -> list[Body]: ...

    def list_replica_sets(self, namespace: str, label_selector: str) -> list[Body]: ...

    def list_warning_events(self, namespace: str) -> list[Body]: ...

    def pod_log(
        self, namespace: str, pod: str, since_seconds: int, tail: int, container: str | None = None
    ) -> str: ...


@dataclass(frozen=True)
class Assessment:
    rollout: str
    pods: PodFacts | None
    warnings: tuple[WarningEvent, ...] | None
    error_lines: tuple[LogLine, ...] | None
    severity: Severity
    recommendation: str
    unknown: tuple[str, ...] = field(default=())
    health: tuple[CheckResult, ...] | None = ()
    #: Every error rate measured (Prometheus first when configured), known or not.
    error_rates: tuple[ErrorRateReading, ...] = ()
    #: Set when the recommendation is to monitor: when to assess again.
    monitor_minutes: float | None = None
    #: When the revision running now started rolling out (its ReplicaSet was made).
    revision_since: datetime | None = None

    @property
    def error_rate(self) -> ErrorRateReading | None:
        """The error rate the decision used: the first source that gave a number."""
        return next((r for r in self.error_rates if r.rate is not None), None)

    def headline(self) -> str:
        return headline(self.severity, self.recommendation)

    def fact_lines(self) -> list[str]:
        """The facts as plain text, one per line (quoted details indented)."""
        lines = [f"Rollout: {self.rollout}"]
        if self.pods is None:
            lines.append("Pods: unknown")
        else:
            lines.append(
                f"Pods: {self.pods.ready}/{self.pods.total} ready, {self.pods.restarts} restarts"
            )
            crash = self.pods.crash_looping[:MAX_LINES_SHOWN]
            lines += [f"  crash-looping: {c.line()}" for c in crash]
        if self.warnings is None:
            lines.append("Warning events: unknown")
        else:
            lines.append(f"Warning events: {len(self.warnings)}")
            lines += [f"  {w.line()}" for w in self.warnings[:MAX_LINES_SHOWN]]
        lines += [reading.line() for reading in self.error_rates]
        if self.error_lines is None:
            lines.append("Error lines in recent logs: unknown (logs not readable)")
        else:
            lines.append(f"Error lines in recent logs: {len(self.error_lines)}")
            lines += [f"  {e.line()}" for e in self.error_lines[:MAX_LINES_SHOWN]]
        if self.health is None:
            lines.append("Health checks: unknown (no answer in time)")
        else:
            lines += [f"Health: {redact(r.line())}" for r in self.health]
        if self.unknown:
            lines.append(f"Did not answer in time: {', '.join(self.unknown)}")
        return lines

    def summary_lines(self) -> list[str]:
        """The headline (severity and recommendation), then the facts: plain text."""
        return [self.headline(), *self.fact_lines()]


def headline(severity: str, recommendation: str) -> str:
    return f"Severity: {severity} — {recommendation}"


def worst_of(results: Sequence[Assessment]) -> Assessment:
    return min(results, key=lambda a: SEVERITY_ORDER.index(a.severity))


def compared(before: str | None, now: str) -> Literal["worse", "better", "no better"]:
    """A re-assessment's severity against the first one's (unknown counts as low)."""
    rank: dict[str, int] = {s: i for i, s in enumerate(reversed(SEVERITY_ORDER))}
    was, is_now = rank.get(before or "low", 0), rank.get(now, 0)
    return "worse" if is_now > was else "better" if is_now < was else "no better"


@dataclass(frozen=True)
class AssessmentSummary:
    """What a rollback record keeps of the assessment of one or several Deployments:
    the worst severity and its recommendation as fields, the facts as plain lines."""

    severity: Severity
    recommendation: str
    facts: tuple[str, ...]
    monitor_minutes: float | None = None
    #: The latest rollout start among the Deployments assessed.
    revision_since: datetime | None = None

    def lines(self) -> list[str]:
        return [headline(self.severity, self.recommendation), *self.facts]


def summarize(results: Mapping[str, Assessment]) -> AssessmentSummary:
    """Deployment name → its assessment, summed up: one Deployment's facts in full;
    of several, each one's rollout and pods, named. The worst severity wins."""
    if not results:
        return AssessmentSummary("low", "nothing was assessed", ())
    worst = worst_of(list(results.values()))
    if len(results) == 1:
        facts = tuple(worst.fact_lines())
    else:
        facts = tuple(
            f"{name}: {line}"
            for name, result in results.items()
            for line in result.fact_lines()[:2]
        )
    starts = [a.revision_since for a in results.values() if a.revision_since is not None]
    since = max(starts, default=None)
    return AssessmentSummary(
        worst.severity, worst.recommendation, facts, worst.monitor_minutes, since
    )


class Decision(NamedTuple):
    severity: Severity
    recommendation: str
    #: Set for a "monitor" recommendation: when to assess again.
    monitor_minutes: float | None = None


def _minutes(value: float) -> str:
    return f"{value:g} minute" + ("" if value == 1 else "s")


def decide(
    pods: PodFacts | None,
    rollout_failed: bool,
    errors: Sequence[LogLine] | None,
    health: tuple[CheckResult, ...] | None = (),
    error_rate: ErrorRateReading | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> Decision:
    """The runbook's decision matrix, with the service's numbers:

    * every health check failing, or no pod ready → critical, roll back now;
    * an error rate above `high_error_rate`, a health check slower than
      `slow_response_seconds`, a failing check, more than half the pods broken,
      or a missed progress deadline → high, roll back now;
    * a lower error rate, some broken pods or error lines in the logs → medium,
      monitor for `monitor_minutes` and roll back if it gets worse;
    * nothing → low.
    """
    failing = [r for r in health or () if not r.ok]
    if health and len(failing) == len(health):
        return Decision("critical", "the service is down (every health check fails): roll back now")
    if pods is not None and pods.total and pods.ready == 0:
        return Decision("critical", "no pod is ready: roll back now")
    rate = error_rate.rate if error_rate else None
    origin = (
        "from Prometheus" if error_rate and error_rate.origin == "Prometheus" else "in the logs"
    )
    if rate is not None and rate > thresholds.high_error_rate:
        return Decision(
            "high",
            f"error rate {percent(rate)} {origin}, above "
            f"{percent(thresholds.high_error_rate)}: roll back now",
        )
    slow = [r for r in health or () if r.ok and r.seconds > thresholds.slow_response_seconds]
    if slow:
        return Decision(
            "high",
            f"{slow[0].name} answers in {slow[0].seconds:.1f} s, slower than "
            f"{thresholds.slow_response_seconds:g} s: roll back now",
        )
    if failing:
        detail = redact(str(failing[0].detail))
        return Decision("high", f"{failing[0].name} fails ({detail}): roll back now")
    broken = len(pods.crash_looping) if pods else 0
    not_ready = (pods.total - pods.ready) if pods else 0
    if pods is not None and pods.total and max(broken, not_ready) * 2 > pods.total:
        return Decision("high", "more than half the pods are failing: roll back now")
    if rollout_failed:
        return Decision("high", "the new revision missed its progress deadline: roll back now")
    signs = []
    if rate:
        signs.append(f"error rate {percent(rate)} {origin}")
    elif errors:
        signs.append(f"{len(errors)} error lines in the logs")
    if pods is not None and not_ready:
        signs.append(f"{not_ready} of {pods.total} pods not ready")
    if broken:
        signs.append(f"{broken} containers crash-looping")
    if signs:
        minutes = thresholds.monitor_minutes
        return Decision(
            "medium",
            f"some failures: monitor for {_minutes(minutes)}, roll back if it gets worse "
            f"({', '.join(signs)})",
            minutes,
        )
    return Decision(
        "low",
        "no sign of trouble on the Kubernetes side: check the service's own "
        "health, and consider fixing forward",
    )


def assess_workload(
    source: AssessmentSource,
    namespace: str,
    name: str,
    budget: float = 3.0,
    since_seconds: int = 600,
    health_checks: Sequence[HttpCheck] = (),
    *,
    error_rate: ErrorRate | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> Assessment:
    """The facts, the severity and the recommendation, within `budget` seconds.

    The logs are read over `error_rate.window_minutes` (else `since_seconds`)
    and matched with its `log_pattern` (else ERROR_PATTERN); with
    `error_rate.prometheus` its answer is the error rate, the logs' share the
    fallback when Prometheus gives none.
    """
    deployment = source.get_deployment(namespace, name)
    selector = selector_string(deployment["spec"].get("selector") or {})
    state = rollout_state(deployment)
    if error_rate is not None:
        pattern = re.compile(error_rate.log_pattern)
        since_seconds = max(1, round(error_rate.window_minutes * 60))
    else:
        pattern = ERROR_PATTERN
    prometheus = error_rate.prometheus if error_rate else None

    deadline = time.monotonic() + budget
    # The log readers stop a moment early, so what they did read is counted in time.
    logs_deadline = deadline - min(0.25, budget / 10)
    pool = ThreadPoolExecutor(max_workers=8)
    # The three lists first: the tasks below wait for them, and must not hold every thread.
    listed = pool.submit(source.list_pods, namespace, selector)
    replica_sets = pool.submit(source.list_replica_sets, namespace, selector)
    events = pool.submit(source.list_warning_events, namespace)
    futures: dict[str, Future[Any]] = {
        "pods": pool.submit(lambda: pod_facts(listed.result())),
        "events": pool.submit(
            lambda: warning_events(
                events.result(), deployment, replica_sets.result(), listed.result()
            )
        ),
        "logs": pool.submit(
            lambda: read_logs(
                source, namespace, listed.result(), pattern, since_seconds, logs_deadline
            )
        ),
        "health": pool.submit(lambda: tuple(run_checks(health_checks))),
    }
    if prometheus is not None:
        futures["prometheus"] = pool.submit(prometheus_error_rate, prometheus)
    wait(futures.values(), timeout=max(0.0, deadline - time.monotonic()))
    pool.shutdown(wait=False, cancel_futures=True)
    results: dict[str, Any] = {}
    unknown = []
    for key, future in futures.items():
        if future.done() and future.exception() is None:
            results[key] = future.result()
        else:
            results[key] = None
            if not future.done():
                unknown.append(key)

    window_minutes = since_seconds / 60
    scan: LogScan | None = results["logs"]
    if scan is not None and not scan.answered:
        unknown.append("logs")
    if scan is not None and scan.answered and (scan.read or not scan.sampled):
        errors: tuple[LogLine, ...] | None = scan.error_lines
    else:
        errors = None
    rates: list[ErrorRateReading] = []
    if prometheus is not None:
        why = "no answer in time" if "prometheus" in unknown else "the query failed"
        rates.append(results["prometheus"] or ErrorRateReading("Prometheus", None, why))
    if scan is not None:
        rates.append(scan.reading(window_minutes))
    else:
        why = "no answer in time" if "logs" in unknown else "logs not readable"
        rates.append(ErrorRateReading("logs", None, why, window_minutes))
    used = next((r for r in rates if r.rate is not None), None)
    pods, health = results["pods"], results["health"]
    failed = state.phase is RolloutPhase.DEADLINE_EXCEEDED
    decision = decide(pods, failed, errors, health, used, thresholds)
    return Assessment(
        state.message,
        pods,
        results["events"],
        errors,
        decision.severity,
        decision.recommendation,
        tuple(unknown),
        health,
        tuple(rates),
        decision.monitor_minutes,
        _current_since(deployment, replica_sets),
    )


def _current_since(deployment: Body, listed: Future[list[Body]]) -> datetime | None:
    """When the Deployment's current revision started rolling out: the creation of
    its ReplicaSet (the rollout history's current entry); None when unknown."""
    if not listed.done() or listed.exception() is not None:
        return None
    if not (deployment.get("spec") or {}).get("template"):
        return None
    current = next((r for r in rollout_history(deployment, listed.result()) if r.current), None)
    if current is None or not current.created:
        return None
    try:
        moment = datetime.fromisoformat(current.created)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
