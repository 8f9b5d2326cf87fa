"""Rollout progress as `kubectl rollout status` judges it, from the watch API.

`rollout_state` is the pure judgement of one Deployment object; `watch_rollout`
turns the watch stream into a stream of typed events, ending on success, on a
missed progress deadline, on deletion or on the caller's time-out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from bot.errors import DeploymentNotFound, RolloutFailed, RolloutTimedOut, WatchExpired

Body = dict[str, Any]


class RolloutPhase(StrEnum):
    """The six answers of `kubectl rollout status`."""

    WAITING_FOR_SPEC = "waiting_for_spec"  # generation not yet observed
    DEADLINE_EXCEEDED = "deadline_exceeded"
    UPDATING = "updating"  # new replicas still being created
    TERMINATING_OLD = "terminating_old"  # old replicas pending termination
    WAITING_AVAILABLE = "waiting_available"  # updated replicas not yet available
    COMPLETE = "complete"

    @property
    def finished(self) -> bool:
        return self in (RolloutPhase.COMPLETE, RolloutPhase.DEADLINE_EXCEEDED)


@dataclass(frozen=True)
class RolloutState:
    phase: RolloutPhase
    message: str
    desired: int
    updated: int
    replicas: int
    available: int
    ready: int
    generation: int
    observed_generation: int


def progressing_condition(deployment: Body) -> Body | None:
    for condition in deployment.get("status", {}).get("conditions") or []:
        if condition.get("type") == "Progressing":
            return dict(condition)
    return None


def deadline_marker(deployment: Body) -> str | None:
    """Identifies a ProgressDeadlineExceeded condition, so a stale one can be told apart."""
    condition = progressing_condition(deployment)
    if condition and condition.get("reason") == "ProgressDeadlineExceeded":
        return str(condition.get("lastUpdateTime") or condition.get("lastTransitionTime") or "")
    return None


def rollout_state(deployment: Body, stale_deadline: str | None = None) -> RolloutState:
    """Judge one Deployment as `kubectl rollout status` does.

    `stale_deadline` is the marker of a ProgressDeadlineExceeded condition that
    was already there before rollbot's patch: right after an undo the old
    condition can still be present, and must not fail the new rollout.
    """
    meta, spec, status = (
        deployment["metadata"],
        deployment.get("spec", {}),
        deployment.get("status", {}),
    )
    name = meta["name"]
    generation = int(meta.get("generation") or 0)
    observed = int(status.get("observedGeneration") or 0)
    desired = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    updated = int(status.get("updatedReplicas") or 0)
    replicas = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    ready = int(status.get("readyReplicas") or 0)

    def state(phase: RolloutPhase, message: str) -> RolloutState:
        return RolloutState(
            phase, message, desired, updated, replicas, available, ready, generation, observed
        )

    if generation > observed:
        return state(
            RolloutPhase.WAITING_FOR_SPEC, "Waiting for deployment spec update to be observed..."
        )
    marker = deadline_marker(deployment)
    if marker is not None and marker != stale_deadline:
        return state(
            RolloutPhase.DEADLINE_EXCEEDED, f'deployment "{name}" exceeded its progress deadline'
        )
    if updated < desired:
        return state(
            RolloutPhase.UPDATING,
            f'Waiting for deployment "{name}" rollout to finish: '
            f"{updated} out of {desired} new replicas have been updated...",
        )
    if replicas > updated:
        return state(
            RolloutPhase.TERMINATING_OLD,
            f'Waiting for deployment "{name}" rollout to finish: '
            f"{replicas - updated} old replicas are pending termination...",
        )
    if available < updated:
        return state(
            RolloutPhase.WAITING_AVAILABLE,
            f'Waiting for deployment "{name}" rollout to finish: '
            f"{available} of {updated} updated replicas are available...",
        )
    return state(RolloutPhase.COMPLETE, f'deployment "{name}" successfully rolled out')


class DeploymentSource(Protocol):
    def get_deployment(self, namespace: str, name: str) -> Body: ...

    def watch_deployment(
        self, namespace: str, name: str, resource_version: str, timeout_seconds: int
    ) -> Iterator[tuple[str, Body]]: ...


def made_progress(before: RolloutState, after: RolloutState) -> bool:
    """The controller's own test of progress (DeploymentProgressing)."""
    return (
        after.updated > before.updated
        or (after.replicas - after.updated) < (before.replicas - before.updated)
        or after.ready > before.ready
        or after.available > before.available
    )


class RolloutJudge:
    """Judges each new Deployment object of one rollout and remembers what it saw.

    Besides kubectl's rules it keeps its own progress deadline: after a rollback
    to an *existing* ReplicaSet the controller may never report
    ProgressDeadlineExceeded (its Progressing condition still says the previous
    rollout succeeded, and it does not estimate progress from there), so a
    target that crash-loops would otherwise be waited on until the time-out.
    """

    def __init__(
        self,
        name: str,
        stale_deadline: str | None,
        progress_deadline: float | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.stale_deadline = stale_deadline
        self.progress_deadline = progress_deadline
        self.clock = clock
        self.last: RolloutState | None = None
        self.progress_at = clock()

    def judge(self, deployment: Body) -> RolloutState | None:
        """The new state if it changed; raises RolloutFailed when the rollout is lost."""
        current = rollout_state(deployment, self.stale_deadline)
        if current.phase is RolloutPhase.DEADLINE_EXCEEDED:
            raise RolloutFailed(current.message)
        previous, self.last = self.last, current
        if previous is None or made_progress(previous, current):
            self.progress_at = self.clock()
        self.check_stalled()
        return None if current == previous else current

    def seconds_until_stalled(self) -> float | None:
        if self.progress_deadline is None:
            return None
        return self.progress_at + self.progress_deadline - self.clock()

    def check_stalled(self) -> None:
        left = self.seconds_until_stalled()
        if left is None or left > 0 or self.done:
            return
        waiting = f": {self.last.message}" if self.last else ""
        raise RolloutFailed(
            f'deployment "{self.name}" made no progress for {self.progress_deadline:g}s, '
            f"its progress deadline{waiting}"
        )

    @property
    def done(self) -> bool:
        return self.last is not None and self.last.phase is RolloutPhase.COMPLETE


def watch_rollout(
    kube: DeploymentSource,
    namespace: str,
    name: str,
    timeout: float,
    stale_deadline: str | None = None,
    start: Body | None = None,
) -> Iterator[RolloutState]:
    """Yield each distinct rollout state until the rollout completes.

    Raises RolloutFailed on a missed progress deadline (the controller's, or
    rollbot's own when the controller will not report one), RolloutTimedOut
    when `timeout` seconds pass first, DeploymentNotFound if it is deleted.
    """
    deadline = time.monotonic() + timeout
    deployment = start if start is not None else kube.get_deployment(namespace, name)
    seconds = deployment.get("spec", {}).get("progressDeadlineSeconds")
    judge = RolloutJudge(name, stale_deadline, float(seconds) if seconds else None)

    def observe(obj: Body) -> Iterator[RolloutState]:
        changed = judge.judge(obj)
        if changed is not None:
            yield changed

    yield from observe(deployment)
    while not judge.done:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            last = f": {judge.last.message}" if judge.last else ""
            raise RolloutTimedOut(
                f"timed out after {timeout:g}s waiting for deployment {name!r}{last}"
            )
        stall = judge.seconds_until_stalled()
        wait = remaining if stall is None else max(0.0, min(remaining, stall))
        rv = str(deployment["metadata"].get("resourceVersion", ""))
        try:
            for event_type, obj in kube.watch_deployment(
                namespace, name, rv, timeout_seconds=int(wait) + 1
            ):
                if event_type == "DELETED":
                    raise DeploymentNotFound(namespace, name)
                if event_type not in ("ADDED", "MODIFIED"):
                    continue
                deployment = obj
                yield from observe(obj)
                if judge.done or time.monotonic() >= deadline:
                    break
        except WatchExpired:
            pass
        if judge.done:
            return
        # The watch closed (its time-out, or an expired resourceVersion):
        # read afresh and go on watching from there.
        deployment = kube.get_deployment(namespace, name)
        yield from observe(deployment)
