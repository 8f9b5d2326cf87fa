"""The Deployment rollback: plan (history, target, diff), apply (one guarded JSON
patch, re-planned on conflict), and watch the rollout until it is healthy.

Used alike by the CLI, the Slack worker and the benchmark; it reports through
return values and iterators, never by printing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from bot.config import RollbotConfig
from bot.deployments import (
    Revision,
    choose_target,
    image_target,
    rollout_history,
    templates_equal,
    undo_patch,
)
from bot.diff import Change, template_diff
from bot.errors import (
    AlreadyAtTarget,
    ApiUnavailable,
    Conflict,
    DeploymentPaused,
    RevisionNotFound,
)
from bot.kube import selector_string
from bot.names import check_object_name
from bot.rollout import RolloutState, deadline_marker, watch_rollout

Body = dict[str, Any]


class KubeApi(Protocol):
    """The calls the engine needs (`bot.kube.Kube` in production, fakes in unit tests)."""

    def get_deployment(self, namespace: str, name: str) -> Body: ...

    def list_replica_sets(self, namespace: str, label_selector: str) -> list[Body]: ...

    def json_patch_deployment(self, namespace: str, name: str, ops: list[Body]) -> Body: ...

    def watch_deployment(
        self, namespace: str, name: str, resource_version: str, timeout_seconds: int
    ) -> Iterator[tuple[str, Body]]: ...


@dataclass(frozen=True)
class RollbackPlan:
    """What an undo would do, computed from one consistent read."""

    namespace: str
    name: str
    deployment: Body
    history: list[Revision]
    target: Revision
    changes: list[Change]
    #: For an image-tag rollback: the tag, and the one container (None: all).
    to_tag: str | None = None
    container: str | None = None

    @property
    def current(self) -> Revision | None:
        return next((r for r in self.history if r.current), None)

    @property
    def paused(self) -> bool:
        return bool(self.deployment.get("spec", {}).get("paused"))

    @property
    def already_at_target(self) -> bool:
        return templates_equal(self.target.template, self.deployment["spec"]["template"])

    @property
    def next_revision_number(self) -> int:
        """The number the controller will give the target after the rollback."""
        return max((r.number for r in self.history), default=0) + 1


@dataclass(frozen=True)
class AppliedRollback:
    plan: RollbackPlan
    deployment: Body  # as the API returned it after the patch
    change_cause: str | None
    attempts: int
    #: Marker of a deadline-exceeded condition present before the patch (stale).
    stale_deadline: str | None


def change_cause_for(plan: RollbackPlan, actor: str, reason: str = "") -> str:
    current = plan.current.number if plan.current else "?"
    to = f"image tag {plan.to_tag}" if plan.to_tag else str(plan.target.number)
    text = f"rollbot: rolled back by {actor} from revision {current} to {to}"
    return f"{text}: {reason}" if reason else text


def read_history(kube: KubeApi, namespace: str, name: str) -> tuple[Body, list[Revision]]:
    deployment = kube.get_deployment(namespace, name)
    selector = selector_string(deployment["spec"].get("selector") or {})
    replica_sets = kube.list_replica_sets(namespace, selector)
    return deployment, rollout_history(deployment, replica_sets)


def wait_until_observed(kube: KubeApi, namespace: str, name: str, timeout: float = 10) -> Body:
    """The Deployment once its controller has seen its latest spec.

    Before that, "previous" could skip back two versions: the newest ReplicaSet
    for the latest spec may not exist yet.
    """
    deployment = kube.get_deployment(namespace, name)
    deadline = time.monotonic() + timeout

    def observed(obj: Body) -> bool:
        generation = int(obj["metadata"].get("generation") or 0)
        return int(obj.get("status", {}).get("observedGeneration") or 0) >= generation

    while not observed(deployment) and time.monotonic() < deadline:
        rv = str(deployment["metadata"].get("resourceVersion", ""))
        remaining = max(1, int(deadline - time.monotonic()) + 1)
        for _, obj in kube.watch_deployment(namespace, name, rv, remaining):
            deployment = obj
            if observed(obj):
                break
        else:
            deployment = kube.get_deployment(namespace, name)
    return deployment


def plan_rollback(
    kube: KubeApi,
    config: RollbotConfig,
    namespace: str,
    name: str,
    to_revision: int = 0,
    *,
    replica_set: str | None = None,
    to_tag: str | None = None,
    container: str | None = None,
    allow_unknown_tag: bool = False,
) -> RollbackPlan:
    """Read the Deployment and its history and decide the target revision.

    `replica_set` pins the target to one ReplicaSet (used when re-planning after
    a conflict, so the revision a person approved is the one applied).
    """
    config.check_namespace_allowed(namespace)
    check_object_name(name)
    wait_until_observed(kube, namespace, name)
    deployment, history = read_history(kube, namespace, name)
    if to_tag is not None:
        target = image_target(deployment, history, to_tag, container, allow_unknown_tag)
    elif replica_set is not None:
        pinned = next((r for r in history if r.replica_set == replica_set), None)
        if pinned is None:
            raise RevisionNotFound(to_revision, [r.number for r in history])
        target = pinned
    else:
        target = choose_target(name, history, to_revision)
    changes = template_diff(deployment["spec"]["template"], target.template)
    return RollbackPlan(namespace, name, deployment, history, target, changes, to_tag, container)


def replan(kube: KubeApi, config: RollbotConfig, plan: RollbackPlan) -> RollbackPlan:
    """The same rollback planned again on a fresh read: the same tag, or the same
    ReplicaSet, as the person approved, whatever is "previous" now."""
    if plan.to_tag is not None:
        return plan_rollback(
            kube,
            config,
            plan.namespace,
            plan.name,
            to_tag=plan.to_tag,
            container=plan.container,
            allow_unknown_tag=True,
        )
    return plan_rollback(
        kube,
        config,
        plan.namespace,
        plan.name,
        plan.target.number,
        replica_set=plan.target.replica_set,
    )


def apply_rollback(
    kube: KubeApi,
    config: RollbotConfig,
    plan: RollbackPlan,
    *,
    change_cause: str | None = None,
    retries: int = 5,
    sleep: Callable[[float], None] = time.sleep,
) -> AppliedRollback:
    """Patch the Deployment to the plan's target, re-planning if it changed meanwhile.

    Raises DeploymentPaused, AlreadyAtTarget (nothing to do, as kubectl's
    "skipped rollback"), or the last temporary error once retries run out.
    """
    attempt = 0
    while True:
        attempt += 1
        if plan.paused:
            raise DeploymentPaused(plan.namespace, plan.name)
        if plan.already_at_target:
            raise AlreadyAtTarget(plan.name, plan.target.number)
        ops = undo_patch(plan.deployment, plan.target, change_cause)
        stale = deadline_marker(plan.deployment)
        try:
            patched = kube.json_patch_deployment(plan.namespace, plan.name, ops)
            return AppliedRollback(plan, patched, change_cause, attempt, stale)
        except (Conflict, ApiUnavailable) as err:
            if attempt > retries:
                raise
            sleep(min(2.0, 0.1 * 2 ** (attempt - 1)))
            if isinstance(err, Conflict):
                # Someone else wrote first: read again, keep the approved target.
                plan = replan(kube, config, plan)


def follow_rollout(
    kube: KubeApi, applied: AppliedRollback, timeout: float
) -> Iterator[RolloutState]:
    """Rollout states after the patch until complete; raises RolloutFailed/TimedOut."""
    plan = applied.plan
    yield from watch_rollout(
        kube,
        plan.namespace,
        plan.name,
        timeout,
        stale_deadline=applied.stale_deadline,
        start=applied.deployment,
    )


def rollback(
    kube: KubeApi,
    config: RollbotConfig,
    namespace: str,
    name: str,
    *,
    to_revision: int = 0,
    actor: str = "rollbot",
    reason: str = "",
    timeout: float | None = None,
    on_state: Callable[[RolloutState], None] | None = None,
) -> AppliedRollback:
    """Plan, apply and follow a rollback in one call (the CLI's `--yes` path)."""
    plan = plan_rollback(kube, config, namespace, name, to_revision)
    applied = apply_rollback(kube, config, plan, change_cause=change_cause_for(plan, actor, reason))
    for state in follow_rollout(kube, applied, timeout or config.rollout_timeout_seconds):
        if on_state is not None:
            on_state(state)
    return applied
