"""Several Deployments of one service rolled back as one (eli-maor's backend,
worker, beat and frontend; todo-app's six): planned together, applied in
parallel, one progress view, one outcome that names any component that failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from bot.engine import (
    AppliedRollback,
    RollbackPlan,
    apply_rollback,
    follow_rollout,
    plan_rollback,
)
from bot.errors import NoRolloutHistory, PermanentError, RollbotError
from bot.strategies.base import Context, Plan, Progress, Request, StrategyError, workloads_of

TAG_PIN = "tag:"


class ComponentsFailed(PermanentError):
    code = "components_failed"

    def __init__(self, failed: dict[str, str], done: list[str]) -> None:
        self.failed, self.done = failed, done
        lines = [f"{name}: {problem}" for name, problem in failed.items()]
        rolled = ", ".join(done) if done else "none"
        super().__init__(
            f"{len(failed)} of {len(failed) + len(done)} components failed to roll back:\n"
            + "\n".join(lines)
            + f"\nRolled back: {rolled}. Their pre-rollback state is in this rollback's backup "
            "and can be restored."
        )


def _short(images: tuple[str, ...]) -> str:
    return ", ".join(i.split("=", 1)[-1].rsplit("/", 1)[-1] for i in images) or "?"


class ComponentsStrategy:
    """The Deployment undo (or image tag), for every Deployment of a service."""

    name = "components"

    def plan(self, ctx: Context, request: Request) -> Plan:
        names = workloads_of(ctx, request)
        if request.revision and len(names) > 1:
            raise StrategyError(
                f"{request.service} has {len(names)} Deployments, each with its own revision "
                "numbers: roll back to the previous revision of each (no --to-revision), "
                "or to one image tag with --to-tag"
            )

        def plan_one(name: str) -> RollbackPlan | None:
            try:
                return plan_rollback(
                    ctx.kube,
                    ctx.config,
                    request.namespace,
                    name,
                    request.revision,
                    to_tag=request.to_tag,
                    container=request.options.get("container"),
                )
            except NoRolloutHistory:
                return None  # never changed (a beat that was not redeployed): nothing to undo

        with ThreadPoolExecutor(max_workers=min(8, len(names))) as pool:
            planned = dict(zip(names, pool.map(plan_one, names), strict=True))
        plans = [p for p in planned.values() if p is not None]
        unchanged = tuple(
            f"{name}: no earlier revision, left alone" for name, p in planned.items() if p is None
        )
        moving = [p for p in plans if not p.already_at_target]
        container = request.options.get("container")
        tag_pin = f"{TAG_PIN}{request.to_tag}" + (f"|{container}" if container else "")
        pins = {p.name: tag_pin if request.to_tag else p.target.replica_set for p in moving}
        changes = tuple(f"{p.name}: {c.describe()}" for p in moving for c in p.changes)
        facts = unchanged + tuple(
            f"{p.name}: already at the target, left alone" for p in plans if p.already_at_target
        )
        return Plan(
            strategy=self.name,
            namespace=request.namespace,
            subject=f"{request.service} ({len(names)} deployments)",
            current=", ".join(f"{p.name} r{_rev(p, current=True)}" for p in plans),
            target=", ".join(f"{p.name} r{_rev(p, current=False)}" for p in plans),
            changes=changes,
            pins=pins,
            workloads=tuple(names),
            facts=facts,
            from_images=tuple(i for p in moving if p.current for i in p.current.images),
            to_images=tuple(i for p in moving for i in p.target.images),
            nothing_to_do=None if moving else "no component has anything to roll back to",
        )

    def apply(
        self, ctx: Context, namespace: str, pins: Mapping[str, str], cause: str, progress: Progress
    ) -> str:
        def one(name: str) -> str:
            pin = pins[name]
            if pin.startswith(TAG_PIN):
                tag, _, container = pin.removeprefix(TAG_PIN).partition("|")
                plan = plan_rollback(
                    ctx.kube,
                    ctx.config,
                    namespace,
                    name,
                    to_tag=tag,
                    container=container or None,
                    allow_unknown_tag=True,
                )
            else:
                plan = plan_rollback(ctx.kube, ctx.config, namespace, name, replica_set=pin)
            if plan.already_at_target:
                # Applied before a crash, or by someone else: only the rollout to follow.
                states = follow_rollout(ctx.kube, _as_applied(plan), ctx.timeout)
            else:
                applied = apply_rollback(ctx.kube, ctx.config, plan, change_cause=cause)
                progress.milestone(f"{name}: rollback applied")
                states = follow_rollout(ctx.kube, applied, ctx.timeout)
            for state in states:
                progress.rollout(name, state)
            return _short(plan.target.images)

        outcomes: dict[str, str] = {}
        failed: dict[str, str] = {}
        with ThreadPoolExecutor(max_workers=max(1, min(8, len(pins)))) as pool:
            futures = {name: pool.submit(one, name) for name in pins}
            for name, future in futures.items():
                try:
                    outcomes[name] = future.result()
                    progress.milestone(f"{name}: rolled out ({outcomes[name]})")
                except RollbotError as err:
                    failed[name] = str(err)
                    progress.milestone(f"{name}: failed: {err}")
        if failed:
            raise ComponentsFailed(failed, sorted(outcomes))
        return "rolled back " + ", ".join(f"{n} ({images})" for n, images in outcomes.items())


def _rev(plan: RollbackPlan, *, current: bool) -> str:
    if current:
        return str(plan.current.number) if plan.current else "?"
    return str(plan.target.number) if plan.target.number else (plan.to_tag or "?")


def _as_applied(plan: RollbackPlan) -> AppliedRollback:
    return AppliedRollback(plan, plan.deployment, None, 0, None)
