"""Automatic rollback: watch the Deployments that opted in, and open a rollback
on their behalf when a fresh revision fails.

A revision fails when (each rule as the service's `auto_rollback_on` says) it
missed its progress deadline, its pods crash-loop, or the service's health
checks and smoke tests failed for a window without a single pass.

Opting in is a catalog flag (`auto_rollback: true`) or the annotation
`rollbot.dev/auto-rollback: "true"` on the Deployment. Never for a revision
rollbot itself rolled back to; "never twice for the same bad revision" is the
worker's, keyed by `FailedRelease.replica_set`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from bot.argo_assessment import failure_signals
from bot.argo_rollouts import history, latest_analysis, owned_by, read_status
from bot.checks import CheckResult, HttpCheck, run_checks
from bot.config import RollbotConfig, ServiceEntry
from bot.deployments import POD_TEMPLATE_HASH, Revision, rollout_history
from bot.errors import PermanentError
from bot.kube import selector_string
from bot.rollout import RolloutPhase, progressing_condition, rollout_state
from bot.signals import AutoRollbackTriggers

Body = dict[str, Any]
OPT_IN_ANNOTATION = "rollbot.dev/auto-rollback"
ROLLBOT_CAUSE_PREFIX = "rollbot:"
MAX_PODS_SHOWN = 3

CheckRunner = Callable[[Sequence[HttpCheck]], list[CheckResult]]


class WatchSource(Protocol):
    def list_deployments(self, namespace: str, label_selector: str = "") -> list[Body]: ...

    def list_replica_sets(self, namespace: str, label_selector: str) -> list[Body]: ...

    def list_pods(self, namespace: str, label_selector: str) -> list[Body]: ...

    def get_rollout(self, namespace: str, name: str) -> Body: ...

    def list_analysis_runs(self, namespace: str, label_selector: str = "") -> list[Body]: ...


class Trigger(StrEnum):
    """Which rule found the revision failed."""

    PROGRESS_DEADLINE = "progress_deadline"
    CRASH_LOOP = "crash_loop"
    FAILING_CHECKS = "failing_checks"
    ROLLOUT_FAILED = "rollout_failed"  # an Argo Rollout: aborted, Degraded, analysis failed


@dataclass(frozen=True)
class FailedRelease:
    namespace: str
    deployment: str
    replica_set: str  # the bad revision's ReplicaSet: the key for "never twice"
    revision: int
    evidence: str
    channel: str | None
    triggers: tuple[Trigger, ...] = ()
    #: How the record rolls it back: a Deployment's undo, or its catalog strategy
    #: (an Argo Rollout's service: `deployment` is then the service's name).
    strategy: str = "undo"


def opted_in(config: RollbotConfig, deployment: Body) -> tuple[bool, str | None]:
    """(watched?, channel) for a Deployment."""
    meta = deployment["metadata"]
    entry = config.service_for(meta["namespace"], meta["name"])
    channel = (entry.channel if entry else None) or config.auto_rollback_channel
    annotated = (meta.get("annotations") or {}).get(OPT_IN_ANNOTATION) == "true"
    return bool((entry and entry.auto_rollback) or annotated), channel


# -- the rules, as pure functions ------------------------------------------------------

_TIMED_OUT_REPLICA_SET = re.compile(r'ReplicaSet "([^"]+)" has timed out progressing')


def missed_deadline(deployment: Body, current: Revision) -> str | None:
    """Evidence that the current revision missed its progress deadline, if it did.

    A stale condition naming another ReplicaSet (still there after someone went
    back to an older revision) is not the current revision's failure.
    """
    state = rollout_state(deployment)
    if state.phase is not RolloutPhase.DEADLINE_EXCEEDED:
        return None
    named = _TIMED_OUT_REPLICA_SET.search(
        str((progressing_condition(deployment) or {}).get("message") or "")
    )
    if named and named.group(1) != current.replica_set:
        return None
    return f"{state.message}: {state.available}/{state.desired} available"


def template_hash(revision: Revision) -> str | None:
    """The `pod-template-hash` label the revision's pods carry."""
    labels = (revision.template.get("metadata") or {}).get("labels") or {}
    value = labels.get(POD_TEMPLATE_HASH)
    return str(value) if value else None


def crash_loops(pods: list[Body], template_hash: str, restarts: int) -> list[str]:
    """One line per container of the revision's pods that restarted `restarts` times
    or more: "pod P container C: REASON, N restarts". Pods being deleted don't count."""
    found = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        if (meta.get("labels") or {}).get(POD_TEMPLATE_HASH) != template_hash:
            continue
        if meta.get("deletionTimestamp"):
            continue
        status = pod.get("status") or {}
        for cs in (status.get("initContainerStatuses") or []) + (
            status.get("containerStatuses") or []
        ):
            count = int(cs.get("restartCount") or 0)
            if count < restarts:
                continue
            waiting = (cs.get("state") or {}).get("waiting") or {}
            terminated = (cs.get("lastState") or {}).get("terminated") or {}
            reason = waiting.get("reason") or terminated.get("reason") or "restarting"
            found.append(
                f"pod {meta.get('name')} container {cs.get('name')}: {reason}, {count} restarts"
            )
    return found


def crash_loop_evidence(lines: list[str]) -> str:
    shown = "; ".join(lines[:MAX_PODS_SHOWN])
    more = len(lines) - MAX_PODS_SHOWN
    return f"crash-looping: {shown}" + (f" (and {more} more)" if more > 0 else "")


class FailingChecksWindow:
    """How long each Deployment's checks have failed without a pass, for its
    current revision. A pass, or a new revision, starts the count again."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._since: dict[str, tuple[str, float]] = {}  # key → (replica set, failing since)

    def observe(self, key: str, replica_set: str, failing: bool) -> float | None:
        """Seconds the checks have been failing without a pass (0 on the first
        failure); None when they passed."""
        now = self.clock()
        if not failing:
            self.forget(key)
            return None
        seen = self._since.get(key)
        if seen is None or seen[0] != replica_set:
            seen = self._since[key] = (replica_set, now)
        return now - seen[1]

    def forget(self, key: str) -> None:
        self._since.pop(key, None)

    def keep_only(self, keys: set[str]) -> None:
        """Forget the Deployments no longer watched (deleted, opted out, rolled back)."""
        for key in set(self._since) - keys:
            del self._since[key]


# -- the watcher -----------------------------------------------------------------------


def watched_namespaces(config: RollbotConfig) -> list[str]:
    """Where to look: needs an allowed-namespace list or a catalog entry that opts in."""
    namespaces = set(config.allowed_namespaces)
    namespaces |= {
        e.namespace or config.default_namespace for e in config.services.values() if e.auto_rollback
    }
    return sorted(namespaces)


class AutoRollbackWatcher:
    """Looks at the opted-in Deployments each time it is asked, and remembers between
    looks how long each one's checks have been failing. One per worker, asked from
    one thread; the memory is the process's, so a restart starts the windows again."""

    def __init__(
        self,
        source: WatchSource,
        config: RollbotConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        check_runner: CheckRunner = run_checks,
    ) -> None:
        self.source, self.config = source, config
        self.check_runner = check_runner
        self.window = FailingChecksWindow(clock)

    def find_failed_releases(self) -> list[FailedRelease]:
        """Every opted-in Deployment, in the namespaces rollbot may touch, whose
        current revision failed."""
        found = []
        looked_at: set[str] = set()
        for namespace in watched_namespaces(self.config):
            for deployment in self.source.list_deployments(namespace):
                watched, _ = opted_in(self.config, deployment)
                if not watched:
                    continue
                looked_at.add(_key(deployment))
                if failure := self.failed_release(deployment):
                    found.append(failure)
        self.window.keep_only(looked_at)
        return found + self.failed_rollouts()

    def failed_rollouts(self) -> list[FailedRelease]:
        """Every opted-in Argo Rollout of the catalog whose update failed, keyed by the
        bad revision's ReplicaSet; a Rollout that is gone or unreadable is skipped."""
        found = []
        for service, entry in self.config.services.items():
            if entry.strategy != "argo-rollouts" or not entry.auto_rollback:
                continue
            namespace = entry.namespace or self.config.default_namespace
            name = entry.rollout or service
            try:
                rollout = self.source.get_rollout(namespace, name)
            except PermanentError:
                continue
            selector = selector_string(rollout.get("spec", {}).get("selector") or {})
            owned = owned_by(rollout, self.source.list_replica_sets(namespace, selector))
            revisions = history(rollout, owned)
            status = read_status(rollout, revisions)
            analysis = latest_analysis(rollout, self.source.list_analysis_runs(namespace))
            signals = failure_signals(status, analysis)
            bad = next((r for r in revisions if r.pod_hash == status.current_hash), None)
            if not signals or bad is None:
                continue
            found.append(
                FailedRelease(
                    namespace,
                    service,
                    bad.replica_set,
                    bad.number,
                    f"rollout {name} revision {bad.number} ({', '.join(bad.images)}): "
                    + "; ".join(signals),
                    entry.channel or self.config.auto_rollback_channel,
                    (Trigger.ROLLOUT_FAILED,),
                    strategy="argo-rollouts",
                )
            )
        return found

    def failed_release(self, deployment: Body) -> FailedRelease | None:
        """The Deployment's current revision, if it is a fresh one that has failed."""
        meta = deployment["metadata"]
        key = _key(deployment)
        selector = selector_string(deployment["spec"].get("selector") or {})
        history = rollout_history(
            deployment, self.source.list_replica_sets(meta["namespace"], selector)
        )
        current = next((r for r in history if r.current), None)
        if current is None or len(history) < 2:
            self.window.forget(key)
            return None  # nothing to go back to
        if current.change_cause.startswith(ROLLBOT_CAUSE_PREFIX):
            self.window.forget(key)
            return None  # rollbot put this revision there: not rolling back its own rollback
        entry = self.config.service_for(meta["namespace"], meta["name"])
        triggers = entry.auto_rollback_on if entry else AutoRollbackTriggers()
        found: list[tuple[Trigger, str]] = []
        if triggers.progress_deadline and (evidence := missed_deadline(deployment, current)):
            found.append((Trigger.PROGRESS_DEADLINE, evidence))
        if triggers.crash_loop_restarts is not None and (
            evidence := self._crash_loop(
                deployment, current, selector, triggers.crash_loop_restarts
            )
        ):
            found.append((Trigger.CRASH_LOOP, evidence))
        if evidence := self._failing_checks(key, current, entry):
            found.append((Trigger.FAILING_CHECKS, evidence))
        if not found:
            return None
        _, channel = opted_in(self.config, deployment)
        evidence = f"revision {current.number} ({', '.join(current.images)}) " + "; ".join(
            text for _, text in found
        )
        return FailedRelease(
            meta["namespace"],
            meta["name"],
            current.replica_set,
            current.number,
            evidence,
            channel,
            tuple(trigger for trigger, _ in found),
        )

    def _crash_loop(
        self, deployment: Body, current: Revision, selector: str, restarts: int
    ) -> str | None:
        hash_label = template_hash(current)
        if hash_label is None:
            return None
        pod_selector = ",".join(p for p in (selector, f"{POD_TEMPLATE_HASH}={hash_label}") if p)
        pods = self.source.list_pods(deployment["metadata"]["namespace"], pod_selector)
        lines = crash_loops(pods, hash_label, restarts)
        return crash_loop_evidence(lines) if lines else None

    def _failing_checks(
        self, key: str, current: Revision, entry: ServiceEntry | None
    ) -> str | None:
        window = entry.auto_rollback_on.failing_checks_seconds if entry else None
        checks = [*entry.health_checks, *entry.smoke_tests] if entry else []
        if window is None or not checks:
            self.window.forget(key)
            return None
        results = self.check_runner(checks)
        failed = [r for r in results if not r.ok]
        seconds = self.window.observe(key, current.replica_set, failing=bool(failed))
        if seconds is None or seconds < window:
            return None
        lines = "; ".join(r.line() for r in failed)
        return f"checks failing for {seconds:.0f}s without a pass (window {window:g}s): {lines}"


def _key(deployment: Body) -> str:
    meta = deployment["metadata"]
    return f"{meta['namespace']}/{meta['name']}"
