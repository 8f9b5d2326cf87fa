"""What several strategies do to Deployments alike: patch them and follow their
rollouts (`Rollouts`), add an annotation, warn about an autoscaler that will
fight a change, and read the comma-separated lists they pin."""

from __future__ import annotations

from bot.bodies import Body
from bot.strategies.base import Context, Progress
from bot.strategies.observe import follow_rollout, pointer_token, stale_deadline_of


def listed_pin(pin: str) -> list[str]:
    return [p for p in pin.split(",") if p]


def annotate(ops: list[Body], deployment: Body, key: str, value: str) -> None:
    """Add a Deployment annotation to a patch, with or without annotations there yet."""
    if deployment["metadata"].get("annotations") is None:
        ops.append({"op": "add", "path": "/metadata/annotations", "value": {key: value}})
    else:
        path = f"/metadata/annotations/{pointer_token(key)}"
        ops.append({"op": "add", "path": path, "value": value})


class Rollouts:
    """The Deployments a strategy changed, followed once all are changed: their
    rollouts run side by side in the cluster while rollbot watches each in turn."""

    def __init__(self) -> None:
        self.started: dict[str, tuple[Body, str | None]] = {}

    def patch(self, ctx: Context, namespace: str, deployment: Body, ops: list[Body]) -> Body:
        name = deployment["metadata"]["name"]
        stale = stale_deadline_of(deployment)
        patched: Body = ctx.kube.json_patch_deployment(namespace, name, ops)
        self.started[name] = (patched, stale)
        return patched

    def unchanged(self, deployment: Body) -> None:
        """Changed already (before a crash, or by someone else): only to be followed."""
        self.started[deployment["metadata"]["name"]] = (deployment, None)

    def follow(self, ctx: Context, namespace: str, progress: Progress) -> None:
        for name, (start, stale) in self.started.items():
            follow_rollout(ctx, namespace, name, progress, start=start, stale_deadline=stale)


def autoscaler_warnings(ctx: Context, namespace: str, name: str, replicas: int) -> list[str]:
    warnings = []
    for hpa in ctx.kube.list_autoscalers(namespace):
        spec = hpa.get("spec", {})
        target = spec.get("scaleTargetRef") or {}
        if target.get("kind") != "Deployment" or target.get("name") != name:
            continue
        low, high = spec.get("minReplicas", 1), spec.get("maxReplicas")
        hpa_name = hpa["metadata"]["name"]
        if replicas == 0:
            warnings.append(
                f"HorizontalPodAutoscaler {hpa_name} targets {name}: it stops scaling it at 0 "
                f"and takes over again once it is scaled back up"
            )
        else:
            warnings.append(
                f"warning: HorizontalPodAutoscaler {hpa_name} targets {name} (min {low}, "
                f"max {high}): it will fight this change and rescale it"
            )
    return warnings
