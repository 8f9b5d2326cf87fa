"""A Helm release rolled back the todo-app and eli-maor way, minus the guessing:
the history read from the release Secrets and shown, the last good revision named
explicitly (never "0", which may be a failed one), `helm rollback --wait`, and
the release's Deployments streamed while helm waits."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from bot import failpoints
from bot.helm_history import (
    HelmRevision,
    read_release_history,
)
from bot.helm_releases import (
    HelmPlan,
    check_helm,
    helm_rollback,
    plan_release_rollback,
)
from bot.rollout import rollout_state
from bot.strategies.base import Context, Plan, Progress, Request, StrategyError, entry_of

HISTORY_SHOWN = 6


def release_of(ctx: Context, request: Request) -> str:
    entry = entry_of(ctx, request)
    return (entry.release if entry else None) or request.service


def _row(revision: HelmRevision, plan: HelmPlan) -> str:
    mark = " ← current" if revision == plan.current else ""
    mark = " ← target" if revision == plan.target else mark
    app = f" (app {revision.app_version})" if revision.app_version else ""
    return (
        f"{revision.number} {revision.status} {revision.chart}{app} — "
        f"{revision.description or 'no description'}{mark}"
    )


def _deployments(revision: HelmRevision, namespace: str) -> tuple[str, ...]:
    return tuple(d.name for d in revision.deployments if d.namespace == namespace)


class HelmStrategy:
    name = "helm"

    def plan(self, ctx: Context, request: Request) -> Plan:
        if request.to_tag is not None:
            raise StrategyError(
                "a Helm release rolls back to a revision, not an image tag: "
                "use --to-revision, or --strategy undo to set the tag on its Deployments"
            )
        release = release_of(ctx, request)
        planned = plan_release_rollback(ctx.kube, request.namespace, release, request.revision)
        shown = planned.history[-HISTORY_SHOWN:]
        return Plan(
            strategy=self.name,
            namespace=request.namespace,
            subject=f"helm release {release}",
            current=f"helm revision {planned.current.number} ({planned.current.status})",
            target=f"helm revision {planned.target.number} ({planned.target.chart})",
            changes=planned.changes,
            pins={
                "release": release,
                "current": str(planned.current.number),
                "target": str(planned.target.number),
            },
            workloads=_deployments(planned.target, request.namespace)
            or _deployments(planned.current, request.namespace),
            facts=("Release history:", *(_row(r, planned) for r in shown)),
            from_images=tuple(i for d in planned.current.deployments for i in d.images),
            to_images=tuple(i for d in planned.target.deployments for i in d.images),
        )

    def apply(
        self, ctx: Context, namespace: str, pins: Mapping[str, str], cause: str, progress: Progress
    ) -> str:
        release = pins["release"]
        check_helm(ctx.helm.binary)
        history = read_release_history(ctx.kube, namespace, release)
        by_number = {r.number: r for r in history}
        current, target = by_number.get(int(pins["current"])), by_number.get(int(pins["target"]))
        if current is None or target is None:
            raise StrategyError(
                f"helm release {release}: revision {pins['current']} or {pins['target']} is "
                "gone from its history since the plan; run the rollback again"
            )
        plan = HelmPlan(release, namespace, tuple(history), current, target, ())
        progress.milestone(
            f"Running helm rollback {release} {target.number} --wait "
            f"(revision {current.number} → {target.number})"
        )
        done = threading.Event()
        watcher = threading.Thread(
            target=self._stream,
            args=(ctx, namespace, _deployments(target, namespace), progress, done),
            daemon=True,
        )
        watcher.start()
        try:
            new = helm_rollback(
                plan,
                source=ctx.kube,
                timeout_seconds=ctx.timeout,
                helm=ctx.helm.binary,
                kubeconfig=ctx.helm.kubeconfig,
                kube_context=ctx.helm.context,
            )
        finally:
            done.set()
            watcher.join(timeout=5)
        failpoints.reached("applied")
        return (
            f"helm release {release} rolled back to revision {target.number}: "
            f"now revision {new.number}, {new.status} ({new.description})"
        )

    @staticmethod
    def _stream(
        ctx: Context,
        namespace: str,
        names: tuple[str, ...],
        progress: Progress,
        done: threading.Event,
    ) -> None:
        """The release's Deployments while helm waits (helm itself says nothing until done)."""
        last: dict[str, str] = {}
        while not done.wait(1.0):
            for name in names:
                try:
                    state = rollout_state(ctx.kube.get_deployment(namespace, name))
                except Exception:  # a progress view must never fail the rollback
                    continue
                if last.get(name) != state.message:
                    last[name] = state.message
                    progress.rollout(name, state)
