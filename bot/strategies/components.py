"""Several Deployments of one service rolled back as one (eli-maor's backend,
worker, beat and frontend; todo-app's six): planned together, applied in
parallel, one progress view, one outcome that names any component that failed.

Each Deployment is planned and applied exactly as the one-Deployment undo does
it (`undo.py`), with the same pins.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from bot.engine import RollbackPlan, pin_of
from bot.errors import NoRolloutHistory, PermanentError, RollbotError
from bot.strategies.base import Context, Plan, Progress, Request, StrategyError, workloads_of
from bot.strategies.undo import plan_deployment, roll_back_deployment, short_images


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


class ComponentsStrategy:
    """The Deployment undo (or image tag), for every Deployment of a service."""

    name = "components"

    def plan(self, ctx: Context, request: Request) -> Plan:
        names = workloads_of(ctx, request)
        if (request.revision or "before" in request.options) and len(names) > 1:
            raise StrategyError(
                f"{request.service} has {len(names)} Deployments, each with its own revision "
                "numbers: roll back to the previous revision of each (no --to-revision), "
                "or to one image tag with --to-tag"
            )

        def plan_one(name: str) -> RollbackPlan | None:
            try:
                return plan_deployment(ctx, request, name)
            except NoRolloutHistory:
                return None  # never changed (a beat that was not redeployed): nothing to undo

        with ThreadPoolExecutor(max_workers=min(8, len(names))) as pool:
            planned = dict(zip(names, pool.map(plan_one, names), strict=True))
        plans = [p for p in planned.values() if p is not None]
        unchanged = tuple(
            f"{name}: no earlier revision, left alone" for name, p in planned.items() if p is None
        )
        moving = [p for p in plans if not p.already_at_target]
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
            pins={p.name: pin_of(p) for p in moving},
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
            plan = roll_back_deployment(
                ctx, namespace, name, pins[name], cause, progress, f"{name}: "
            )
            return short_images(plan.target.images)

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
