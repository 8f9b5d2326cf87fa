"""Rollout progress as `kubectl rollout status` judges it, from the watch API.

`rollout_state` is the pure judgement of one Deployment object; `watch_rollout`
turns the watch stream into a stream of typed events, ending on success, on a
missed progress deadline, on deletion or on the caller's time-out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
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


def watch_rollout(
    kube: DeploymentSource,
    namespace: str,
    name: str,
    timeout: float,
    stale_deadline: str | None = None,
    start: Body | None = None,
) -> Iterator[RolloutState]:
    """Yield each distinct rollout state until the rollout completes.

    Raises RolloutFailed on a missed progress deadline, RolloutTimedOut when
    `timeout` seconds pass first, DeploymentNotFound if it is deleted meanwhile.
    """
    deadline = time.monotonic() + timeout
    deployment = start if start is not None else kube.get_deployment(namespace, name)
    last: RolloutState | None = None

    def judge(obj: Body) -> RolloutState | None:
        """The new state if it changed; raises when the rollout is over badly."""
        nonlocal last
        current = rollout_state(obj, stale_deadline)
        if current.phase is RolloutPhase.DEADLINE_EXCEEDED:
            raise RolloutFailed(current.message)
        if current == last:
            return None
        last = current
        return current

    first = judge(deployment)
    if first is not None:
        yield first
    while last is None or last.phase is not RolloutPhase.COMPLETE:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RolloutTimedOut(
                f"timed out after {timeout:g}s waiting for deployment {name!r}"
                + (f": {last.message}" if last else "")
            )
        rv = str(deployment["metadata"].get("resourceVersion", ""))
        try:
            for event_type, obj in kube.watch_deployment(
                namespace, name, rv, timeout_seconds=int(remaining) + 1
            ):
                if event_type == "DELETED":
                    raise DeploymentNotFound(namespace, name)
                if event_type not in ("ADDED", "MODIFIED"):
                    continue
                deployment = obj
                changed = judge(obj)
                if changed is not None:
                    yield changed
                    if changed.phase is RolloutPhase.COMPLETE:
                        return
                if time.monotonic() >= deadline:
                    break
        except WatchExpired:
            pass
        # The watch closed (server time-out or an expired resourceVersion):
        # read afresh and go on watching from there.
        deployment = kube.get_deployment(namespace, name)
        changed = judge(deployment)
        if changed is not None:
            yield changed
