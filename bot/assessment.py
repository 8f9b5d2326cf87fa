"""Is a rollback needed? The runbooks' first five minutes, gathered at once.

Pods (ready, restarts, crash loops), recent Warning events and error lines in
recent logs are read concurrently within a time budget; a source that does not
answer in time is shown as unknown and never holds up the confirmation. The
severity and recommendation follow the family-assistant runbook's decision
matrix, on the facts Kubernetes can give (HTTP checks come with the catalog).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from bot.checks import CheckResult, HttpCheck, run_checks
from bot.kube import selector_string
from bot.rollout import RolloutPhase, rollout_state

Body = dict[str, Any]
Severity = Literal["critical", "high", "medium", "low"]
ERROR_PATTERN = re.compile(r"\b(error|exception|traceback|fatal|panic)\b", re.IGNORECASE)
MAX_LOG_PODS = 5
MAX_LINES_SHOWN = 5


class AssessmentSource(Protocol):
    def get_deployment(self, namespace: str, name: str) -> Body: ...

    def list_pods(self, namespace: str, label_selector: str) -> list[Body]: ...

    def list_warning_events(self, namespace: str) -> list[Body]: ...

    def pod_log(self, namespace: str, pod: str, since_seconds: int, tail: int) -> str: ...


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


def decide(
    pods: PodFacts | None,
    rollout_failed: bool,
    errors: tuple[str, ...] | None,
    health: tuple[CheckResult, ...] | None = (),
) -> tuple[Severity, str]:
    """The decision matrix: service down or no pod ready → critical; a health check
    failing or >50 % of pods broken → high; a few failures or errors in the logs →
    medium (monitor); nothing → low."""
    failing = [r for r in health or () if not r.ok]
    if health and len(failing) == len(health):
        return "critical", "the service is down (every health check fails): roll back now"
    if pods is not None and pods.total and pods.ready == 0:
        return "critical", "no pod is ready: roll back now"
    if failing:
        return "high", f"{failing[0].name} fails ({failing[0].detail}): roll back now"
    broken = len(pods.crash_looping) if pods else 0
    not_ready = (pods.total - pods.ready) if pods else 0
    if pods is not None and pods.total and max(broken, not_ready) * 2 > pods.total:
        return "high", "more than half the pods are failing: roll back now"
    if rollout_failed:
        return "high", "the new revision missed its progress deadline: roll back now"
    if broken or not_ready or errors:
        return "medium", "some failures: monitor for 5–10 minutes, roll back if it gets worse"
    return "low", (
        "no sign of trouble on the Kubernetes side: check the service's own "
        "health, and consider fixing forward"
    )


def assess_workload(
    source: AssessmentSource,
    namespace: str,
    name: str,
    budget: float = 3.0,
    since_seconds: int = 600,
    health_checks: Sequence[HttpCheck] = (),
) -> Assessment:
    deployment = source.get_deployment(namespace, name)
    selector = selector_string(deployment["spec"].get("selector") or {})
    state = rollout_state(deployment)

    def read_logs() -> tuple[str, ...]:
        pods = source.list_pods(namespace, selector)[:MAX_LOG_PODS]
        found: list[str] = []
        for pod in pods:
            text = source.pod_log(namespace, pod["metadata"]["name"], since_seconds, 200)
            found += [
                f"{pod['metadata']['name']}: {line.strip()}"
                for line in text.splitlines()
                if ERROR_PATTERN.search(line)
            ]
        return tuple(found)

    pool = ThreadPoolExecutor(max_workers=4)
    futures: dict[str, Future[Any]] = {
        "pods": pool.submit(lambda: pod_facts(source.list_pods(namespace, selector))),
        "events": pool.submit(lambda: warning_lines(source.list_warning_events(namespace), name)),
        "logs": pool.submit(read_logs),
        "health": pool.submit(lambda: tuple(run_checks(health_checks))),
    }
    wait(futures.values(), timeout=budget)
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
    pods, errors, health = results["pods"], results["logs"], results["health"]
    failed = state.phase is RolloutPhase.DEADLINE_EXCEEDED
    severity, recommendation = decide(pods, failed, errors, health)
    return Assessment(
        state.message,
        pods,
        results["events"],
        errors,
        severity,
        recommendation,
        tuple(unknown),
        health,
    )
