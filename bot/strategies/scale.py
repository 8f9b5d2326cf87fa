"""The emergency scale, to 0 and back: eli-maor's `kubectl scale --replicas=N`,
with how to scale back and a warning about an autoscaler."""

from __future__ import annotations

from collections.abc import Mapping

from bot.strategies.base import (
    Context,
    Plan,
    Progress,
    Request,
    StrategyError,
    option,
    workloads_of,
)
from bot.strategies.deployment_changes import (
    Rollouts,
    autoscaler_warnings,
    listed_pin,
)
from bot.strategies.observe import (
    names,
    pods_of,
    replicas_of,
    unchanged_since,
    wait_until,
)

MAX_REPLICAS = 1000


def parse_replicas(text: str) -> int:
    if not text.strip().isdigit() or int(text) > MAX_REPLICAS:
        raise StrategyError(
            f"replicas {text!r}: give a whole number from 0 to {MAX_REPLICAS} (e.g. --scale 0)"
        )
    return int(text)


class ScaleStrategy:
    name = "scale"

    def plan(self, ctx: Context, request: Request) -> Plan:
        replicas = parse_replicas(option(request, "replicas"))
        now: dict[str, int] = {}
        for name in workloads_of(ctx, request):
            now[name] = replicas_of(ctx.kube.get_deployment(request.namespace, name))
        moving = [name for name, n in now.items() if n != replicas]
        facts: list[str] = []
        back = sorted({now[n] for n in moving})
        if len(back) == 1:
            facts.append(f"scale back with --scale {back[0]}")
        else:
            facts += [f"{n}: scale back with --scale {now[n]}" for n in moving]
        for name in moving:
            facts += autoscaler_warnings(ctx, request.namespace, name, replicas)
        return Plan(
            strategy=self.name,
            namespace=request.namespace,
            subject=f"{request.service} scale",
            current=", ".join(f"{n}: {r} replicas" for n, r in now.items()),
            target=f"{replicas} replicas",
            changes=tuple(f"scale deployment {n} {now[n]} → {replicas}" for n in moving),
            pins={"replicas": str(replicas), "deployments": ",".join(moving)},
            workloads=tuple(moving) or tuple(now),
            facts=tuple(facts),
            nothing_to_do=None if moving else f"{request.service} already runs {replicas}",
            verify_checks=replicas != 0,
        )

    def apply(
        self, ctx: Context, namespace: str, pins: Mapping[str, str], cause: str, progress: Progress
    ) -> str:
        replicas = int(pins["replicas"])
        deployments = [
            ctx.kube.get_deployment(namespace, n) for n in listed_pin(pins["deployments"])
        ]
        rollouts = Rollouts()
        for deployment in deployments:
            if replicas_of(deployment) == replicas:
                rollouts.unchanged(deployment)
                continue
            ops = [
                unchanged_since(deployment),
                {"op": "replace", "path": "/spec/replicas", "value": replicas},
            ]
            rollouts.patch(ctx, namespace, deployment, ops)
            progress.milestone(f"Scaled {deployment['metadata']['name']} to {replicas}")
        rollouts.follow(ctx, namespace, progress)
        if replicas == 0:

            def left() -> str | None:
                pods = [
                    p["metadata"]["name"]
                    for d in deployments
                    for p in pods_of(ctx.kube, namespace, d)
                ]
                return f"pods {names(pods)} are still there" if pods else None

            wait_until(
                left,
                ctx.timeout,
                lambda problem: f"scaled to 0, but after {ctx.timeout:g}s {problem}",
            )
            progress.milestone(f"No pods left of {names(rollouts.started)}")
        deployments_names = names(rollouts.started)
        return f"scaled {deployments_names} to {replicas}"
