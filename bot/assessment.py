"""Is a rollback needed? The runbooks' first five minutes, gathered at once.

Pods (ready, restarts, crash loops), recent Warning events, the error rate (the
share of log lines matching the service's pattern, or Prometheus' answer) and
the health checks are read concurrently within a time budget; a source that
does not answer in time is shown as unknown and never holds up the
confirmation. The severity and recommendation follow the family-assistant
runbook's decision matrix, with the numbers from the service's `thresholds`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Protocol

from bot.checks import CheckResult, HttpCheck, run_checks
from bot.error_rate import ErrorRateReading, count_lines, percent, prometheus_error_rate
from bot.errors import RollbotError
from bot.kube import selector_string
from bot.rollout import RolloutPhase, rollout_state
from bot.signals import DEFAULT_ERROR_PATTERN, ErrorRate, Thresholds

Body = dict[str, Any]
Severity = Literal["critical", "high", "medium", "low"]
#: What counts as an error line when the service configures no error rate.
ERROR_PATTERN = re.compile(DEFAULT_ERROR_PATTERN)
#: A workload with more pods has this many of them sampled (and says so).
MAX_LOG_PODS = 8
#: Pod logs read at once: enough to hide the apiserver's latency, few enough to spare it.
LOG_READERS = 4
#: The newest lines read of each pod's log within the window; a share needs no more.
LOG_TAIL_LINES = 300
MAX_LINES_SHOWN = 5
DEFAULT_THRESHOLDS = Thresholds()


class AssessmentSource(Protocol):
    def get_deployment(self, namespace: str, name: str) -> Body: ...

    def list_pods(self, namespace: str, label_selector: str) -> list[Body]: ...

    def list_warning_events(self, namespace: str) -> list[Body]: ...

    def pod_log(
        self, namespace: str, pod: str, since_seconds: int, tail: int, container: str | None = None
    ) -> str: ...


@dataclass(frozen=True)
class PodFacts:
    ready: int
    total: int
    restarts: int
    crash_looping: tuple[str, ...]  # "pod/container: reason"


@dataclass(frozen=True)
class Assessment:
    rollout: str
    pods: PodFacts | None
    warnings: tuple[str, ...] | None
    error_lines: tuple[str, ...] | None
    severity: Severity
    recommendation: str
    unknown: tuple[str, ...] = field(default=())
    health: tuple[CheckResult, ...] | None = ()
    #: Every error rate measured (Prometheus first when configured), known or not.
    error_rates: tuple[ErrorRateReading, ...] = ()
    #: Set when the recommendation is to monitor: when to assess again.
    monitor_minutes: float | None = None

    @property
    def error_rate(self) -> ErrorRateReading | None:
        """The error rate the decision used: the first source that gave a number."""
        return next((r for r in self.error_rates if r.rate is not None), None)

    def summary_lines(self) -> list[str]:
        lines = [f"Severity: *{self.severity}* — {self.recommendation}", f"Rollout: {self.rollout}"]
        if self.pods is None:
            lines.append("Pods: unknown")
        else:
            lines.append(
                f"Pods: {self.pods.ready}/{self.pods.total} ready, {self.pods.restarts} restarts"
            )
            lines += [f"  crash-looping: {c}" for c in self.pods.crash_looping[:MAX_LINES_SHOWN]]
        if self.warnings is None:
            lines.append("Warning events: unknown")
        else:
            lines.append(f"Warning events: {len(self.warnings)}")
            lines += [f"  {w}" for w in self.warnings[:MAX_LINES_SHOWN]]
        lines += [reading.line() for reading in self.error_rates]
        if self.error_lines is None:
            lines.append("Error lines in recent logs: unknown (logs not readable)")
        else:
            lines.append(f"Error lines in recent logs: {len(self.error_lines)}")
            lines += [f"  {e}" for e in self.error_lines[:MAX_LINES_SHOWN]]
        if self.health is None:
            lines.append("Health checks: unknown (no answer in time)")
        else:
            lines += [f"Health: {r.line()}" for r in self.health]
        if self.unknown:
            lines.append(f"Did not answer in time: {', '.join(self.unknown)}")
        return lines


def pod_facts(pods: list[Body]) -> PodFacts:
    ready = restarts = 0
    crash: list[str] = []
    for pod in pods:
        status = pod.get("status", {})
        if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        ):
            ready += 1
        for cs in status.get("containerStatuses") or []:
            restarts += int(cs.get("restartCount") or 0)
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in (
                "CrashLoopBackOff",
                "ImagePullBackOff",
                "ErrImagePull",
                "CreateContainerConfigError",
            ):
                crash.append(f"{pod['metadata']['name']}/{cs['name']}: {waiting['reason']}")
    return PodFacts(ready, len(pods), restarts, tuple(crash))


def warning_lines(events: list[Body], workload: str) -> tuple[str, ...]:
    mine = [
        e
        for e in events
        if str((e.get("involvedObject") or {}).get("name", "")).startswith(workload)
    ]
    mine.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""), reverse=True)
    return tuple(
        f"{e.get('reason', '?')}: {e.get('message', '')}"
        + (f" (×{e['count']})" if int(e.get("count") or 1) > 1 else "")
        for e in mine
    )


def sample_pods(names: Sequence[str], size: int) -> list[str]:
    """At most `size` pods, spread evenly over the name order. Pod names start with
    their ReplicaSet's hash, so mid-rollout each revision gets its share."""
    ordered = sorted(names)
    if len(ordered) <= size:
        return ordered
    return [ordered[i * len(ordered) // size] for i in range(size)]


@dataclass(frozen=True)
class LogScan:
    """What the sampled pods' logs held, and what could not be read."""

    pods: int  # the workload's pods
    sampled: int  # those whose logs were asked for
    read: int
    late: int  # asked, but no answer before the budget ran out
    unreadable: tuple[str, ...]  # "pod: reason"
    lines: int
    error_lines: tuple[str, ...]  # "pod: line"
    capped: bool  # some pod logged more than LOG_TAIL_LINES within the window

    @property
    def answered(self) -> bool:
        """Whether the logs can be called read at all (not one late answer only)."""
        return self.read > 0 or not self.late

    def reading(self, window_minutes: float) -> ErrorRateReading:
        def unknown(reason: str) -> ErrorRateReading:
            return ErrorRateReading("logs", None, reason, window_minutes)

        if not self.pods:
            return unknown("no pods")
        if not self.answered:
            return unknown("no answer in time")
        if not self.read:
            return unknown(f"no pod's log readable; {self.unreadable[0]}")
        if not self.lines:
            return unknown("no log lines in the window")
        matching = len(self.error_lines)
        notes = [f"{matching} of {self.lines} lines"]
        if self.sampled < self.pods:
            notes.append(f"a sample of {self.sampled} of {self.pods} pods")
        if self.capped:
            notes.append(f"at most the newest {LOG_TAIL_LINES} lines of each pod")
        if self.late:
            notes.append(f"{self.late} pods' logs did not answer in time")
        if self.unreadable:
            notes.append(f"{len(self.unreadable)} pods' logs not readable")
        return ErrorRateReading(
            "logs",
            matching / self.lines,
            "; ".join(notes),
            window_minutes,
            self.lines,
            matching,
        )


def read_logs(
    source: AssessmentSource,
    namespace: str,
    pods: list[Body],
    pattern: re.Pattern[str],
    since_seconds: int,
    deadline: float,
) -> LogScan:
    """The sampled pods' logs, a few at a time, until `deadline` (time.monotonic())."""
    names = sample_pods([p["metadata"]["name"] for p in pods], MAX_LOG_PODS)
    if not names:
        return LogScan(0, 0, 0, 0, (), 0, (), False)
    # The first container is the application's; a sidecar's log would only dilute it.
    main_container = {
        p["metadata"]["name"]: ((p.get("spec") or {}).get("containers") or [{}])[0].get("name")
        for p in pods
    }

    def one(pod: str) -> tuple[int, tuple[str, ...], bool] | str:
        try:
            text = source.pod_log(
                namespace, pod, since_seconds, LOG_TAIL_LINES, main_container.get(pod)
            )
        except RollbotError as err:  # e.g. a container that has not started: no log yet
            return f"{pod}: {err}"
        count = count_lines(text, pattern)
        capped = len(text.splitlines()) >= LOG_TAIL_LINES
        return count.lines, tuple(f"{pod}: {line.strip()}" for line in count.matching), capped

    pool = ThreadPoolExecutor(max_workers=min(LOG_READERS, len(names)))
    futures = [pool.submit(one, name) for name in names]
    done, late = wait(futures, timeout=max(0.0, deadline - time.monotonic()))
    pool.shutdown(wait=False, cancel_futures=True)
    lines, read, capped = 0, 0, False
    found: list[str] = []
    unreadable: list[str] = []
    for future in futures:  # in name order, whatever order they finished in
        if future not in done:
            continue
        result = future.result()
        if isinstance(result, str):
            unreadable.append(result)
            continue
        read += 1
        lines += result[0]
        found += result[1]
        capped = capped or result[2]
    return LogScan(
        len(pods), len(names), read, len(late), tuple(unreadable), lines, tuple(found), capped
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
    errors: tuple[str, ...] | None,
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
        return Decision("high", f"{failing[0].name} fails ({failing[0].detail}): roll back now")
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
    pool = ThreadPoolExecutor(max_workers=6)
    listed = pool.submit(source.list_pods, namespace, selector)
    futures: dict[str, Future[Any]] = {
        "pods": pool.submit(lambda: pod_facts(listed.result())),
        "events": pool.submit(lambda: warning_lines(source.list_warning_events(namespace), name)),
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
        errors: tuple[str, ...] | None = scan.error_lines
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
    )
