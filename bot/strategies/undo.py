"""The Deployment undo: `kubectl rollout undo [--to-revision N]`, exactly (the
engine, `bot.engine`), with its relatives from the runbooks — an image tag
(`rollback.sh v1.2.3`) and "roll back further" after a rollback that did not
help.

`plan_deployment` and `roll_back_deployment` are the per-Deployment halves;
the several-Deployment strategy (`components.py`) runs the same two for each of
its Deployments. The pins are the engine's: `{deployment: pin}`.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot import failpoints
from bot.deployments import Revision
from bot.engine import (
    AppliedRollback,
    RollbackPlan,
    apply_rollback,
    follow_rollout,
    pin_of,
    plan_pinned,
    plan_rollback,
    read_history,
)
from bot.errors import AlreadyAtTarget, DeploymentPaused, PermanentError
from bot.strategies.base import Context, Plan, Progress, Request, StrategyError, entry_of


def short_images(images: tuple[str, ...]) -> str:
    """`app=ghcr.io/acme/web:1.5` reads as `web:1.5`: the registry path is noise."""
    return ", ".join(i.split("=", 1)[-1].rsplit("/", 1)[-1] for i in images) or "?"


def revision_label(plan: RollbackPlan) -> str:
    """Where the plan goes, in words: "revision 2", or "image tag v1" for a template
    that no revision has."""
    if plan.to_tag is not None and not plan.target.number:
        return f"image tag {plan.to_tag}"
    return f"revision {plan.target.number}"


def revision_before(ctx: Context, namespace: str, name: str, before: int) -> int:
    """ "Roll back further": the newest revision older than the one that did not help."""
    _, history = read_history(ctx.kube, namespace, name)
    older = [r.number for r in history if r.number < before and not r.current]
    if not older:
        raise PermanentError(
            f"{namespace}/{name} has no revision older than {before} to roll back to"
        )
    return max(older)


def plan_deployment(ctx: Context, request: Request, name: str) -> RollbackPlan:
    """One Deployment's rollback as the request asks it: a revision (0: the previous
    one), an image tag (refused if never deployed, unless `force`), or the revision
    before `options["before"]`."""
    options = request.options
    revision = request.revision
    if "before" in options:
        revision = revision_before(ctx, request.namespace, name, int(options["before"]))
    return plan_rollback(
        ctx.kube,
        ctx.config,
        request.namespace,
        name,
        revision,
        to_tag=request.to_tag,
        container=options.get("container"),
        allow_unknown_tag=options.get("force") == "true",
    )


def roll_back_deployment(
    ctx: Context, namespace: str, name: str, pin: str, cause: str, progress: Progress, label: str
) -> RollbackPlan:
    """Apply one Deployment's pinned rollback (unless it already was: a worker died
    after the patch, or someone did it by hand) and follow its rollout to the end.

    `label` starts each milestone ("" for one Deployment, "web: " among several).
    """
    plan = plan_pinned(ctx.kube, ctx.config, namespace, name, pin)
    if plan.already_at_target:
        progress.milestone(f"{label}Rollback was already applied; following the rollout")
        # Nothing was patched now, so no missed deadline is known to be stale.
        applied = AppliedRollback(plan, plan.deployment, None, 0, None)
    else:
        applied = apply_rollback(ctx.kube, ctx.config, plan, change_cause=cause)
        failpoints.reached("applied")
        plan = applied.plan  # re-planned if someone wrote first
        current = plan.current.number if plan.current else "?"
        to = revision_label(plan).removeprefix("revision ")
        progress.milestone(f"{label}Rollback applied: revision {current} → {to}")
    for state in follow_rollout(ctx.kube, applied, ctx.timeout):
        progress.rollout(name, state)
    return plan


def deployment_of(ctx: Context, request: Request) -> str:
    """The Deployment a plain undo rolls back: the catalog's, else the name given."""
    entry = entry_of(ctx, request)
    return (entry.deployment if entry else None) or request.service


def _images(revision: Revision | None) -> tuple[str, ...]:
    return revision.images if revision else ()


class UndoStrategy:
    """`kubectl rollout undo` for one Deployment (the default strategy)."""

    name = "undo"

    def plan(self, ctx: Context, request: Request) -> Plan:
        name = deployment_of(ctx, request)
        planned = plan_deployment(ctx, request, name)
        if planned.paused:
            raise DeploymentPaused(request.namespace, name)
        current = planned.current
        target = planned.target
        nothing = None
        if planned.already_at_target:
            nothing = str(AlreadyAtTarget(name, target.number))
        return Plan(
            strategy=self.name,
            namespace=request.namespace,
            subject=f"deployment/{name}",
            current=f"revision {current.number if current else '?'}",
            target=revision_label(planned),
            changes=tuple(c.describe() for c in planned.changes),
            pins={name: pin_of(planned)},
            workloads=(name,),
            facts=(f"change-cause of {revision_label(planned)}: {target.change_cause}",)
            if target.change_cause
            else (),
            from_images=_images(current),
            to_images=target.images,
            nothing_to_do=nothing,
            from_revision=current.number if current else None,
            target_revision=target.number,
            target_replica_set=target.replica_set,
        )

    def apply(
        self, ctx: Context, namespace: str, pins: Mapping[str, str], cause: str, progress: Progress
    ) -> str:
        if len(pins) != 1:
            raise StrategyError(f"an undo rolls back one Deployment, not {len(pins)}")
        [(name, pin)] = pins.items()
        plan = roll_back_deployment(ctx, namespace, name, pin, cause, progress, "")
        return f"deployment/{name} rolled back to {short_images(plan.target.images)}"
