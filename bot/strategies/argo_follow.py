"""Following an Argo Rollout after rollbot changed it, from its status (phase,
step, canary weight, ready replicas) into the Progress protocol — until it is
Healthy on the target, or until an abort has put the stable ReplicaSet back in
front; a Degraded Rollout or one paused until a person promotes it is a clear
failure, never a wait until the time-out.

The controller writes status as it goes; a poll a second is what
`kubectl argo rollouts status` does too, and needs no watch permission.
"""

from __future__ import annotations

import time
from typing import Protocol

from bot.argo_rollouts import (
    RolloutRevision,
    RolloutStatus,
    history,
    owned_by,
    read_status,
    steps_of,
)
from bot.bodies import Body
from bot.errors import RolloutFailed, RolloutTimedOut
from bot.kube import selector_string
from bot.rollout import RolloutPhase, RolloutState
from bot.strategies.base import Progress, StrategyKube

POLL_SECONDS = 1.0


class RolloutKube(StrategyKube, Protocol):
    """The calls on Argo's custom objects (`bot.kube.Kube` has them)."""

    def get_rollout(self, namespace: str, name: str) -> Body: ...

    def json_patch_rollout(self, namespace: str, name: str, ops: list[Body]) -> Body: ...

    def merge_patch_rollout_status(self, namespace: str, name: str, patch: Body) -> Body: ...

    def list_analysis_runs(self, namespace: str, label_selector: str = "") -> list[Body]: ...


def replica_sets_of(kube: RolloutKube, namespace: str, rollout: Body) -> list[Body]:
    selector = selector_string(rollout.get("spec", {}).get("selector") or {})
    return owned_by(rollout, kube.list_replica_sets(namespace, selector))


def state_of(rollout: Body, status: RolloutStatus, done: bool) -> RolloutState:
    """The Rollout's status as the progress a thread shows for any workload."""
    if done:
        phase = RolloutPhase.COMPLETE
    elif not status.observed:
        phase = RolloutPhase.WAITING_FOR_SPEC
    elif status.ready < status.desired:
        phase = RolloutPhase.WAITING_AVAILABLE
    else:
        phase = RolloutPhase.UPDATING
    generation = int(rollout["metadata"].get("generation") or 0)
    return RolloutState(
        phase=phase,
        message=f"rollout {status.name}: {status.describe()}",
        desired=status.desired,
        updated=status.updated,
        replicas=status.ready,
        available=status.available,
        ready=status.ready,
        generation=generation,
        observed_generation=generation if status.observed else generation - 1,
    )


def waits_for_a_person(rollout: Body, status: RolloutStatus) -> str | None:
    """Why a paused Rollout will not go on by itself (None: it will, or is not paused)."""
    spec = rollout.get("spec") or {}
    if spec.get("paused"):
        return "it is paused by hand (spec.paused)"
    steps = steps_of(rollout)
    for reason in status.paused:
        if reason == "CanaryPauseStep" and status.step is not None and status.step < len(steps):
            if (steps[status.step].get("pause") or {}).get("duration") is not None:
                continue
            return f"it is paused at step {status.step}/{len(steps)}, a pause with no duration"
        blue_green = (spec.get("strategy") or {}).get("blueGreen") or {}
        if reason == "BlueGreenPause" and blue_green.get("autoPromotionSeconds"):
            continue
        return f"it is paused ({reason})"
    return None


class _Watcher:
    def __init__(self, kube: RolloutKube, namespace: str, name: str, timeout: float) -> None:
        self.kube, self.namespace, self.name = kube, namespace, name
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        self.last = ""

    def read(self) -> tuple[Body, RolloutStatus, list[RolloutRevision]]:
        rollout = self.kube.get_rollout(self.namespace, self.name)
        revisions = history(rollout, replica_sets_of(self.kube, self.namespace, rollout))
        return rollout, read_status(rollout, revisions), revisions

    def report(self, progress: Progress, rollout: Body, status: RolloutStatus, done: bool) -> None:
        state = state_of(rollout, status, done)
        if state.message != self.last or done:
            self.last = state.message
            progress.rollout(self.name, state)

    def tick(self) -> None:
        if time.monotonic() >= self.deadline:
            raise RolloutTimedOut(
                f"timed out after {self.timeout:g}s waiting for rollout {self.name!r}: {self.last}"
            )
        time.sleep(POLL_SECONDS)


def follow(
    kube: RolloutKube, namespace: str, name: str, pod_hash: str, timeout: float, progress: Progress
) -> None:
    """Until the Rollout is Healthy with `pod_hash` as its stable ReplicaSet."""
    watcher = _Watcher(kube, namespace, name, timeout)
    while True:
        rollout, status, _ = watcher.read()
        done = status.observed and status.phase == "Healthy" and status.stable_hash == pod_hash
        watcher.report(progress, rollout, status, done)
        if done:
            return
        if status.observed and status.phase == "Degraded":
            raise RolloutFailed(f"rollout {name} is Degraded: {status.message or status.phase}")
        if status.observed and status.phase == "Paused":
            why = waits_for_a_person(rollout, status)
            if why is not None:
                raise RolloutFailed(
                    f"rollout {name} stopped: {why}. Promote it "
                    f"(kubectl argo rollouts promote {name} -n {namespace}) or abort it"
                )
        watcher.tick()


def stable_serving(status: RolloutStatus, revisions: list[RolloutRevision]) -> bool:
    """After an abort: all traffic on the stable ReplicaSet, and it has every pod ready."""
    stable = next((r for r in revisions if r.stable), None)
    if stable is None or not status.aborted or not status.observed:
        return False
    if status.strategy == "blue-green":
        in_front = status.active_hash == status.stable_hash
    else:
        in_front = not status.weight
    return in_front and stable.ready >= status.desired


def wait_aborted(
    kube: RolloutKube, namespace: str, name: str, timeout: float, progress: Progress
) -> None:
    """Until the aborted Rollout serves from its stable ReplicaSet alone."""
    watcher = _Watcher(kube, namespace, name, timeout)
    while True:
        rollout, status, revisions = watcher.read()
        done = stable_serving(status, revisions)
        watcher.report(progress, rollout, status, done)
        if done:
            return
        watcher.tick()
