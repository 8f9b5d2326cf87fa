"""Blue-green, jarvis-api's "Option C": switch the Service's selector back to the
other colour, scaling that colour up first if it runs fewer pods, then see the
Service's Endpoints serve that colour's pods only.

The colour that was live keeps running: switching back is another blue-green
rollback, and instant. Rolling back a blue-green rollback switches back, since
the live colour is read from the Service each time.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.bodies import Body
from bot.config import BlueGreen
from bot.deployments import CHANGE_CAUSE, container_images
from bot.errors import PermanentError
from bot.kube import selector_string
from bot.strategies.base import (
    Context,
    Plan,
    Progress,
    Request,
    StrategyError,
    entry_of,
    read_or_explain,
)
from bot.strategies.observe import (
    endpoint_pods,
    follow_rollout,
    names,
    pointer_token,
    read_endpoints,
    replicas_of,
    selects,
    stale_deadline_of,
    unchanged_since,
    wait_until,
)


class SelectorChanged(PermanentError):
    """Someone switched the Service to a third value between the plan and now."""

    code = "selector_changed"


def colours_of(bg: BlueGreen, service: str) -> dict[str, str]:
    """Colour → Deployment, `SERVICE-blue` and `SERVICE-green` unless the catalog says."""
    return dict(bg.colours) or {"blue": f"{service}-blue", "green": f"{service}-green"}


def other_colour(colours: Mapping[str, str], live: str) -> str:
    (other,) = [c for c in colours if c != live]
    return other


def live_colour(service: Body, label: str, colours: Mapping[str, str]) -> str:
    """The colour the Service's selector picks; a clear error when it picks none of them."""
    name = service["metadata"]["name"]
    selector = service.get("spec", {}).get("selector") or {}
    known = ", ".join(f"{c} ({d})" for c, d in colours.items())
    if label not in selector:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(selector.items())) or "none"
        raise StrategyError(
            f"service {name!r} has no {label!r} in its selector (selector: {shown}), so it "
            f"does not pick a colour: set blue_green.label in the catalog to the label "
            f"that names the colour"
        )
    live = str(selector[label])
    if live not in colours:
        raise StrategyError(
            f"service {name!r} selects {label}={live}, which is none of its colours "
            f"({known}): rollbot cannot tell which colour to switch to. Fix the selector, "
            f"or list the colours under blue_green.colours in the catalog"
        )
    return live


def switch_ops(service: Body, label: str, expected: str, wanted: str, cause: str) -> list[Body]:
    """The selector switch, refused by the apiserver if the colour changed meanwhile;
    the Service keeps who switched it and why, as a Deployment keeps its change-cause."""
    path = f"/spec/selector/{pointer_token(label)}"
    annotations = service["metadata"].get("annotations")
    record = (
        {
            "op": "add",
            "path": f"/metadata/annotations/{pointer_token(CHANGE_CAUSE)}",
            "value": cause,
        }
        if annotations is not None
        else {"op": "add", "path": "/metadata/annotations", "value": {CHANGE_CAUSE: cause}}
    )
    return [
        {"op": "test", "path": path, "value": expected},
        {"op": "replace", "path": path, "value": wanted},
        record,
    ]


def serving_problem(
    served: set[str], waiting: set[str], colour_pods: set[str], colour: str, expect_pods: bool
) -> str | None:
    """What keeps an Endpoints object from serving that colour only (None: nothing)."""
    strays = served - colour_pods
    if strays:
        return f"it still serves {names(strays)}, not of colour {colour}"
    if not served and expect_pods:
        pending = f" ({names(waiting)} not ready)" if waiting else ""
        return f"it serves no pod of colour {colour} yet{pending}"
    return None


class BlueGreenStrategy:
    name = "blue-green"

    def plan(self, ctx: Context, request: Request) -> Plan:
        entry = entry_of(ctx, request)
        bg = (entry.blue_green if entry else None) or BlueGreen()
        service_name = bg.service or request.service
        colours = colours_of(bg, request.service)
        service = _read_service(ctx, request.namespace, service_name)
        live = live_colour(service, bg.label, colours)
        target = other_colour(colours, live)
        live_deployment = ctx.kube.get_deployment(request.namespace, colours[live])
        target_deployment = ctx.kube.get_deployment(request.namespace, colours[target])

        selector = dict(service["spec"]["selector"])
        switched = {**selector, bg.label: target}
        pod_labels = target_deployment["spec"]["template"].get("metadata", {}).get("labels")
        if not selects(switched, pod_labels):
            shown = ", ".join(f"{k}={v}" for k, v in sorted((pod_labels or {}).items()))
            raise StrategyError(
                f"deployment {colours[target]!r}'s pods are labelled {shown or 'with nothing'}; "
                f"service {service_name!r} switched to {bg.label}={target} would select none "
                f"of them"
            )

        have, want = replicas_of(target_deployment), replicas_of(live_deployment)
        changes = []
        if have < want:
            changes.append(f"scale deployment {colours[target]} {have} → {want}")
        changes.append(f"service {service_name} selector {bg.label}: {live} → {target}")
        facts = [
            f"{colours[live]} ({live}) keeps running after the switch: switching back is "
            "instant (another blue-green rollback)"
        ]
        if max(have, want) == 0:
            facts.append(f"neither colour runs any pod: service {service_name} will serve none")
        return Plan(
            strategy=self.name,
            namespace=request.namespace,
            subject=f"service {service_name} (blue-green)",
            current=f"{live} ({colours[live]})",
            target=f"{target} ({colours[target]})",
            changes=tuple(changes),
            pins={
                "service": service_name,
                "label": bg.label,
                "from": live,
                "to": target,
                "deployment": colours[target],
                "replicas": str(max(have, want)),
                "from_deployment": colours[live],
            },
            workloads=(colours[target],),
            facts=tuple(facts),
            from_images=container_images(live_deployment["spec"]["template"]),
            to_images=container_images(target_deployment["spec"]["template"]),
        )

    def apply(
        self, ctx: Context, namespace: str, pins: Mapping[str, str], cause: str, progress: Progress
    ) -> str:
        service_name, label = pins["service"], pins["label"]
        before, after, name = pins["from"], pins["to"], pins["deployment"]
        replicas = int(pins["replicas"])

        # Only from the colour that was approved (or to it, if a crash came after the switch).
        service = _read_service(ctx, namespace, service_name)
        _check_unchanged(service, label, before, after)

        # 1. The colour to switch to runs, and is ready, before it gets any traffic.
        deployment = ctx.kube.get_deployment(namespace, name)
        stale = stale_deadline_of(deployment)
        if replicas_of(deployment) < replicas:
            ops = [
                unchanged_since(deployment),
                {"op": "replace", "path": "/spec/replicas", "value": replicas},
            ]
            deployment = ctx.kube.json_patch_deployment(namespace, name, ops)
            progress.milestone(f"Scaled {name} up to {replicas}")
        follow_rollout(ctx, namespace, name, progress, start=deployment, stale_deadline=stale)

        # 2. The switch; the apiserver refuses it if the colour changed since the read.
        service = _read_service(ctx, namespace, service_name)
        if _check_unchanged(service, label, before, after) == after:
            progress.milestone(f"Service {service_name} already selects {label}={after}")
        else:
            service = ctx.kube.json_patch_service(
                namespace, service_name, switch_ops(service, label, before, after, cause)
            )
            progress.milestone(f"Service {service_name} switched: {label} {before} → {after}")

        # 3. Its Endpoints serve the new colour's pods, and no other.
        switched = service["spec"]["selector"]

        def problem() -> str | None:
            colour_pods = {
                p["metadata"]["name"]
                for p in ctx.kube.list_pods(namespace, selector_string({"matchLabels": switched}))
            }
            endpoints = read_endpoints(ctx.kube, namespace, service_name)
            if endpoints is None:
                return "it has no Endpoints yet"
            served, waiting = endpoint_pods(endpoints)
            return serving_problem(served, waiting, colour_pods, after, replicas > 0)

        wait_until(
            problem,
            ctx.timeout,
            lambda left: (
                f"service {service_name!r} selects {label}={after} now, but after "
                f"{ctx.timeout:g}s {left}: check the pods of {name} and the Service's "
                f"Endpoints (kubectl get endpoints {service_name} -n {namespace})"
            ),
        )
        endpoints = read_endpoints(ctx.kube, namespace, service_name)
        served, _ = endpoint_pods(endpoints)
        progress.milestone(
            f"Endpoints of {service_name} serve {len(served)} pod(s) of {name} ({after}) only"
        )
        kept = pins.get("from_deployment", f"the {before} Deployment")
        progress.milestone(
            f"Left {kept} ({before}) running: switching back to it is instant "
            "(another blue-green rollback)"
        )
        return (
            f"service {service_name} switched from {before} to {after}: "
            f"{len(served)} pod(s) of {name} serve it; {kept} left running"
        )


def _check_unchanged(service: Body, label: str, before: str, after: str) -> str:
    """The colour the Service selects now, if it is the approved one or the target."""
    now = (service.get("spec", {}).get("selector") or {}).get(label)
    if now not in (before, after):
        raise SelectorChanged(
            f"service {service['metadata']['name']!r} now selects {label}={now}, neither "
            f"{before} (as approved) nor {after}: someone changed it meanwhile, so nothing "
            "was switched. Look at it, then ask for the rollback again"
        )
    return str(now)


def _read_service(ctx: Context, namespace: str, name: str) -> Body:
    return read_or_explain(
        lambda: ctx.kube.get_service(namespace, name),
        lambda err: (
            f"service {name!r} not found in namespace {namespace!r}: blue-green switches "
            f"that Service's selector (name it in the catalog as blue_green.service) ({err})"
        ),
    )
