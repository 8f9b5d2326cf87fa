"""The Deployment rollback: plan (history, target, diff), apply (one guarded JSON
patch, re-planned on conflict), and watch the rollout until it is healthy.

The undo strategy (`bot.strategies.undo`) builds on this for the CLI, the Slack
worker and the benchmark; it reports through return values and iterators, never
by printing.

What a person approved is kept as a *pin*, one string per Deployment, so a
record can store it: the target ReplicaSet's name, or `tag:TAG` (every
container) / `tag:TAG|CONTAINER` for an image-tag rollback. `pin_for` writes it,
`plan_pinned` reads it (the one parser) and plans that target again on a fresh
read — never "previous", which may mean something else by then.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from bot.bodies import Body
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
    PermanentError,
)
from bot.kube import selector_string
from bot.names import check_object_name
from bot.rollout import RolloutState, deadline_marker, watch_rollout

TAG_PIN = "tag:"


class KubeApi(Protocol):
    """The calls the engine needs (`bot.kube.Kube` in production, fakes in unit tests)."""

    def get_deployment(self, namespace: str, name: str) -> Body: ...

    def list_replica_sets(self, namespace: str, label_selector: str) -> list[Body]: ...

    def json_patch_deployment(self, namespace: str, name: str, ops: list[Body]) -> Body: ...

    def watch_deployment(
        self, namespace: str, name: str, resource_version: str, timeout_seconds: int
    ) -> Iterator[tuple[str, Body]]: ...


class TargetGone(PermanentError):
    code = "target_gone"

    def __init__(self, name: str, replica_set: str) -> None:
        super().__init__(
            f"the revision approved for {name!r} (ReplicaSet {replica_set}) is no longer "
            "in its history; plan the rollback again"
        )


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


@dataclass(frozen=True)
class AppliedRollback:
    plan: RollbackPlan
    deployment: Body  # as the API returned it after the patch
    change_cause: str | None
    attempts: int
    #: Marker of a deadline-exceeded condition present before the patch (stale).
    stale_deadline: str | None


def change_cause(
    strategy: str,
    actor: str,
    reason: str = "",
    *,
    from_revision: int | None = None,
    target_revision: int | None = None,
    to_tag: str | None = None,
) -> str:
    """What rollbot writes where the cluster keeps who changed what and why (the
    `kubernetes.io/change-cause` annotation); the CLI and the worker both use it.

    A one-Deployment undo (a target revision given) reads as the runbooks' history
    readers know it: "rolled back by alice from revision 3 to 2: 500s on /chat";
    anything else names its strategy.
    """
    if target_revision is not None:
        to = f"image tag {to_tag}" if to_tag else str(target_revision)
        start = "?" if from_revision is None else str(from_revision)
        text = f"rollbot: rolled back by {actor} from revision {start} to {to}"
    else:
        text = f"rollbot: {strategy} rollback by {actor}"
    return f"{text}: {reason}" if reason else text


def change_cause_for(plan: RollbackPlan, actor: str, reason: str = "") -> str:
    """`change_cause` for a planned undo."""
    return change_cause(
        "undo",
        actor,
        reason,
        from_revision=plan.current.number if plan.current else None,
        target_revision=plan.target.number,
        to_tag=plan.to_tag,
    )


def pin_for(replica_set: str, to_tag: str | None = None, container: str | None = None) -> str:
    """A target as a pin (see the module's docstring): the tag if there is one."""
    if to_tag is not None:
        return f"{TAG_PIN}{to_tag}" + (f"|{container}" if container else "")
    return replica_set


def pin_of(plan: RollbackPlan) -> str:
    return pin_for(plan.target.replica_set, plan.to_tag, plan.container)


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
            raise TargetGone(name, replica_set)
        target = pinned
    else:
        target = choose_target(name, history, to_revision)
    changes = template_diff(deployment["spec"]["template"], target.template)
    return RollbackPlan(namespace, name, deployment, history, target, changes, to_tag, container)


def plan_pinned(
    kube: KubeApi, config: RollbotConfig, namespace: str, name: str, pin: str
) -> RollbackPlan:
    """The approved rollback planned again on a fresh read: the same tag, or the same
    ReplicaSet, as the person approved, whatever is "previous" now. A tag approved
    once is not refused again as never deployed."""
    if pin.startswith(TAG_PIN):
        tag, _, container = pin.removeprefix(TAG_PIN).partition("|")
        return plan_rollback(
            kube,
            config,
            namespace,
            name,
            to_tag=tag,
            container=container or None,
            allow_unknown_tag=True,
        )
    return plan_rollback(kube, config, namespace, name, replica_set=pin)


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
                plan = plan_pinned(kube, config, plan.namespace, plan.name, pin_of(plan))


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
