"""Traffic diversion: a service's pods labelled out of its Service (and back in),
then its Endpoints checked: eli-maor's `kubectl label pods … --overwrite
serving=false`."""

from __future__ import annotations

from collections.abc import Mapping

from bot.bodies import Body
from bot.strategies.base import (
    Context,
    Plan,
    Progress,
    Request,
    StrategyError,
    entry_of,
    option,
    workloads_of,
)
from bot.strategies.deployment_changes import (
    listed_pin,
)
from bot.strategies.observe import (
    endpoint_pods,
    is_ready,
    names,
    pods_of,
    read_endpoints,
    selects,
    wait_until,
)


def without(selector: Body, label: str) -> Body:
    return {k: v for k, v in selector.items() if k != label}


def traffic_services(services: list[Body], pods: list[Body], label: str) -> list[Body]:
    """The Services that route to these pods by the traffic label: their selector
    names the label, and the rest of it matches the pods."""
    return [
        s
        for s in services
        if label in (s.get("spec", {}).get("selector") or {})
        and any(
            selects(without(s["spec"]["selector"], label), p["metadata"].get("labels"))
            for p in pods
        )
    ]


def routing_services(services: list[Body], pods: list[Body]) -> list[Body]:
    """The Services whose selector matches any of these pods as they are labelled now."""
    return [
        s
        for s in services
        if any(
            selects(s.get("spec", {}).get("selector"), p["metadata"].get("labels")) for p in pods
        )
    ]


def _selector_keys(deployment: Body) -> set[str]:
    selector = deployment["spec"].get("selector") or {}
    keys = set(selector.get("matchLabels") or {})
    return keys | {e["key"] for e in selector.get("matchExpressions") or []}


def _label_counts(pods: list[Body], label: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for pod in pods:
        value = (pod["metadata"].get("labels") or {}).get(label, "(unset)")
        counts[value] = counts.get(value, 0) + 1
    return counts


def parse_serving(text: str) -> str:
    value = text.strip().lower()
    if value not in ("true", "false"):
        raise StrategyError(f"divert serving={text!r}: use false (out of the Service) or true")
    return value


class DivertStrategy:
    name = "divert"

    def plan(self, ctx: Context, request: Request) -> Plan:
        value = parse_serving(option(request, "serving"))
        entry = entry_of(ctx, request)
        label = entry.traffic_label if entry else "serving"
        deployments = workloads_of(ctx, request)
        pods: dict[str, list[Body]] = {}
        for name in deployments:
            deployment = ctx.kube.get_deployment(request.namespace, name)
            if label in _selector_keys(deployment):
                raise StrategyError(
                    f"deployment {name!r} selects its own pods by {label!r}: relabelling them "
                    f"would orphan them, and its ReplicaSet would start new ones that serve. "
                    f"Take {label} out of its selector to divert traffic this way"
                )
            pods[name] = pods_of(ctx.kube, request.namespace, deployment)
        every_pod = [p for group in pods.values() for p in group]
        services = ctx.kube.list_services(request.namespace)
        routes = traffic_services(services, every_pod, label)
        if not routes:
            others = routing_services(services, every_pod)
            shown = (
                "; ".join(
                    f"service {s['metadata']['name']} selects "
                    + ", ".join(f"{k}={v}" for k, v in sorted(s["spec"]["selector"].items()))
                    for s in others
                )
                or "no Service selects them at all"
            )
            raise StrategyError(
                f"no Service selects the pods of {names(deployments)} on the {label!r} label "
                f"({shown}): labelling them {label}={value} would take them out of nothing. "
                f"To divert traffic this way the Service's selector must include "
                f'{label}: "true" (and the pod template the same label)'
            )
        if value == "true" and not any(s["spec"]["selector"][label] == "true" for s in routes):
            raise StrategyError(
                f"service {names(s['metadata']['name'] for s in routes)} selects "
                f"{label}={routes[0]['spec']['selector'][label]}, not {label}=true: labelling "
                f"the pods {label}=true would not put them back"
            )
        changes = []
        for name, group in pods.items():
            relabel = [
                p["metadata"]["name"]
                for p in group
                if (p["metadata"].get("labels") or {}).get(label) != value
            ]
            if relabel:
                changes.append(f"label pods of {name} {label}={value}: {names(relabel)}")
        route_names = [s["metadata"]["name"] for s in routes]
        facts = [
            f"routed by service {names(route_names)} (selector on {label})",
            f"pods the Deployment starts from now on carry its template's labels, "
            f"not {label}={value}",
        ]
        if value == "false":
            facts.append("the pods keep running out of the Service; --traffic on puts them back")
        return Plan(
            strategy=self.name,
            namespace=request.namespace,
            subject=f"{request.service} traffic",
            current=", ".join(
                f"{label}={v}: {n} pod(s)"
                for v, n in sorted(_label_counts(every_pod, label).items())
            )
            or "no pods",
            target=f"{label}={value}",
            changes=tuple(changes),
            pins={
                "label": label,
                "value": value,
                "deployments": ",".join(deployments),
                "services": ",".join(route_names),
            },
            workloads=tuple(deployments),
            facts=tuple(facts),
            nothing_to_do=None if changes else f"every pod already has {label}={value}",
            verify_checks=value == "true",
        )

    def apply(
        self, ctx: Context, namespace: str, pins: Mapping[str, str], cause: str, progress: Progress
    ) -> str:
        label, value = pins["label"], pins["value"]
        deployments = [
            ctx.kube.get_deployment(namespace, n) for n in listed_pin(pins["deployments"])
        ]
        services = listed_pin(pins["services"])
        pods: list[Body] = []
        for deployment in deployments:
            for pod in pods_of(ctx.kube, namespace, deployment):
                if (pod["metadata"].get("labels") or {}).get(label) != value:
                    patch = {"metadata": {"labels": {label: value}}}
                    pod = ctx.kube.merge_patch_pod(namespace, pod["metadata"]["name"], patch)
                pods.append(pod)
        progress.milestone(f"Labelled {len(pods)} pod(s) {label}={value}")
        diverted = {p["metadata"]["name"] for p in pods}

        def problem() -> str | None:
            for service in services:
                served, waiting = endpoint_pods(read_endpoints(ctx.kube, namespace, service))
                if value == "false":
                    still = (served | waiting) & diverted
                    if still:
                        return f"service {service} still lists {names(still)}"
                    continue
                selector = ctx.kube.get_service(namespace, service)["spec"].get("selector")
                # Pods as they are now: a replaced one counts, and readiness moves.
                expected = {
                    p["metadata"]["name"]
                    for d in deployments
                    for p in pods_of(ctx.kube, namespace, d)
                    if is_ready(p) and selects(selector, p["metadata"].get("labels"))
                }
                if expected - served:
                    return f"service {service} does not serve {names(expected - served)} yet"
            return None

        wait_until(
            problem,
            ctx.timeout,
            lambda left: f"pods labelled {label}={value}, but after {ctx.timeout:g}s {left}",
        )
        where = names(services)
        if value == "false":
            progress.milestone(f"Service {where} no longer routes to {len(pods)} pod(s)")
            return f"diverted {len(pods)} pod(s) out of service {where} ({label}=false)"
        progress.milestone(f"Service {where} routes to {len(pods)} pod(s) again")
        return f"put {len(pods)} pod(s) back into service {where} ({label}=true)"
