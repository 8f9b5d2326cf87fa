"""The runbooks' operational rollbacks, each asked for by flag:

- restore: put the ConfigMaps (and with `what=all` the Deployments) of an
  earlier rollback's backup back, and restart what reads them
  (`kubectl rollout undo configmap/…` + `kubectl rollout restart`);
- flag: a feature flag off through an env var (`kubectl set env … NAME=false`);
- scale: the emergency scale to 0, and back (`kubectl scale --replicas=N`);
- divert: label a service's pods out of its Service, and back
  (`kubectl label pods … --overwrite serving=false`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

from bot.backup import referenced
from bot.deployments import CHANGE_CAUSE, container_images, templates_equal
from bot.diff import fingerprint, template_diff
from bot.strategies.base import (
    Body,
    Context,
    Plan,
    Progress,
    Request,
    StrategyError,
    entry_of,
    option,
    read_or_explain,
    workloads_of,
)
from bot.strategies.observe import (
    endpoint_pods,
    follow_rollout,
    is_ready,
    names,
    pods_of,
    pointer_token,
    read_endpoints,
    replicas_of,
    selects,
    stale_deadline_of,
    unchanged_since,
    wait_until,
)

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
MAX_REPLICAS = 1000


def _list(pin: str) -> list[str]:
    return [p for p in pin.split(",") if p]


def _annotated(ops: list[Body], deployment: Body, key: str, value: str) -> None:
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


# -- restore --------------------------------------------------------------------------


def bundles_of(bundle: Body) -> dict[str, Body]:
    """Deployment → its backup, whether one Deployment was backed up or several."""
    if "components" in bundle:
        return dict(bundle["components"])
    return {bundle["deployment"]["metadata"]["name"]: bundle}


def config_map_changes(backed_up: Body, live: Body) -> list[str]:
    """The keys a restore changes ("FLAG changed", "NEW removed", "OLD restored"); no values."""
    changes = []
    for field in ("data", "binaryData"):
        before = live.get(field) or {}
        after = backed_up.get(field) or {}
        for key in sorted(set(before) | set(after)):
            if key not in before:
                changes.append(f"{key} restored")
            elif key not in after:
                changes.append(f"{key} removed")
            elif before[key] != after[key]:
                changes.append(f"{key} changed")
    return changes


def restore_config_ops(backed_up: Body, live: Body) -> list[Body]:
    """Put `data`/`binaryData` back, guarded by what was read."""
    ops: list[Body] = []
    for field in ("data", "binaryData"):
        now, then = live.get(field), backed_up.get(field)
        if (now or {}) == (then or {}):
            continue
        if now is not None:
            ops.append({"op": "test", "path": f"/{field}", "value": now})
        if then:
            ops.append({"op": "add", "path": f"/{field}", "value": then})
        else:
            ops.append({"op": "remove", "path": f"/{field}"})
    return ops


def with_restart(template: Body, restarted_at: str) -> Body:
    """The template as `kubectl rollout restart` leaves it: a fresh restartedAt annotation."""
    metadata = dict(template.get("metadata") or {})
    metadata["annotations"] = {**(metadata.get("annotations") or {}), RESTARTED_AT: restarted_at}
    return {**template, "metadata": metadata}


class RestoreStrategy:
    name = "restore"

    def plan(self, ctx: Context, request: Request) -> Plan:
        backup_id = option(request, "backup")
        what = request.options.get("what", "config")
        if what not in ("config", "all"):
            raise StrategyError(f"restore what={what!r}: use config or all")
        bundles = _backup(ctx, backup_id, request.namespace)

        config_maps = _backed_up_config_maps(bundles)
        changes: list[str] = []
        restored: list[str] = []
        for name, backed_up in config_maps.items():
            live = _live_config_map(ctx, request.namespace, name)
            keys = config_map_changes(backed_up, live)
            if keys:
                restored.append(name)
                changes.append(f"configmap {name}: {', '.join(keys)}")

        facts: list[str] = []
        specs: list[str] = []
        live_deployments: dict[str, Body] = {}
        for name, bundle in bundles.items():
            live_deployments[name] = deployment = ctx.kube.get_deployment(request.namespace, name)
            if what != "all":
                continue
            backed_up = bundle["deployment"]["spec"]
            diff = template_diff(deployment["spec"]["template"], backed_up["template"])
            now, then = replicas_of(deployment), int(backed_up.get("replicas", 1))
            if diff or now != then:
                specs.append(name)
            changes += [f"deployment {name}: {c.describe()}" for c in diff]
            if now != then:
                changes.append(f"deployment {name}: replicas {now} → {then}")
                facts += _autoscaler_warnings(ctx, request.namespace, name, then)

        restarts: list[str] = []
        for name, deployment in live_deployments.items():
            template = (
                bundles[name]["deployment"]["spec"]["template"]
                if name in specs
                else deployment["spec"]["template"]
            )
            reads = referenced(template)[0] & set(restored)
            if reads:
                restarts.append(name)
                changes.append(f"restart deployment {name} (it reads configmap {names(reads)})")
        for name in config_maps:
            if name not in restored:
                facts.append(f"configmap {name} already holds the backup's data")

        touched = tuple(dict.fromkeys(specs + restarts)) or tuple(bundles)
        return Plan(
            strategy=self.name,
            namespace=request.namespace,
            subject=f"{request.service} from backup {backup_id}",
            current="the live " + ("configuration" if what == "config" else "state"),
            target=f"backup of rollback {backup_id}",
            changes=tuple(changes),
            pins={
                "backup": backup_id,
                "what": what,
                "config_maps": ",".join(restored),
                "deployments": ",".join(specs),
                "restart": ",".join(restarts),
                # One marker per approved restart: a second apply sees it done.
                "restarted_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            },
            workloads=touched,
            facts=tuple(facts),
            from_images=tuple(
                i for n in specs for i in container_images(live_deployments[n]["spec"]["template"])
            ),
            to_images=tuple(
                i
                for n in specs
                for i in container_images(bundles[n]["deployment"]["spec"]["template"])
            ),
            nothing_to_do=None
            if changes
            else f"backup {backup_id} saved no ConfigMap (its Deployments read none)"
            if what == "config" and not config_maps
            else f"the live {'configuration' if what == 'config' else 'state'} already matches "
            f"backup {backup_id}",
        )

    def apply(
        self, ctx: Context, namespace: str, pins: Mapping[str, str], cause: str, progress: Progress
    ) -> str:
        bundles = _backup(ctx, pins["backup"], namespace)
        config_maps = _backed_up_config_maps(bundles)
        for name in _list(pins["config_maps"]):
            backed_up = config_maps[name]
            live = _live_config_map(ctx, namespace, name)
            ops = restore_config_ops(backed_up, live)
            if ops:
                ctx.kube.json_patch_config_map(namespace, name, ops)
                progress.milestone(f"Restored configmap {name} from the backup")

        specs, restarts = _list(pins["deployments"]), _list(pins["restart"])
        rollouts = Rollouts()
        for name in dict.fromkeys(specs + restarts):
            deployment = ctx.kube.get_deployment(namespace, name)
            backed_up = bundles[name]["deployment"]["spec"]
            template = backed_up["template"] if name in specs else deployment["spec"]["template"]
            if name in restarts:
                template = with_restart(template, pins["restarted_at"])
            replicas = int(backed_up.get("replicas", 1)) if name in specs else None
            ops = [unchanged_since(deployment)]
            if not templates_equal(deployment["spec"]["template"], template):
                ops.append({"op": "replace", "path": "/spec/template", "value": template})
                _annotated(ops, deployment, CHANGE_CAUSE, cause)
            if replicas is not None and replicas != replicas_of(deployment):
                ops.append({"op": "replace", "path": "/spec/replicas", "value": replicas})
            if len(ops) == 1:
                rollouts.unchanged(deployment)
                continue
            rollouts.patch(ctx, namespace, deployment, ops)
            done = "restored from the backup" if name in specs else "restarted"
            progress.milestone(f"Deployment {name} {done}")
        rollouts.follow(ctx, namespace, progress)

        parts = []
        if pins["config_maps"]:
            parts.append(f"restored configmap {names(_list(pins['config_maps']))}")
        if specs:
            parts.append(f"restored deployment {names(specs)}")
        if restarts:
            parts.append(f"restarted {names(restarts)}")
        return f"{'; '.join(parts) or 'nothing to restore'} (backup of {pins['backup']})"


def _backup(ctx: Context, backup_id: str, namespace: str) -> dict[str, Body]:
    bundle = ctx.backups(backup_id)
    if bundle is None:
        raise StrategyError(
            f"no backup named {backup_id!r}: give the id of an earlier rollback of this "
            "service (its backup was saved before it ran)"
        )
    bundles = bundles_of(bundle)
    for name, one in bundles.items():
        taken_in = one["deployment"]["metadata"].get("namespace", namespace)
        if taken_in != namespace:
            raise StrategyError(
                f"backup {backup_id!r} is of deployment {name!r} in namespace {taken_in!r}, "
                f"not {namespace!r}"
            )
    return bundles


def _backed_up_config_maps(bundles: Mapping[str, Body]) -> dict[str, Body]:
    found: dict[str, Body] = {}
    for bundle in bundles.values():
        for config_map in bundle.get("config_maps") or []:
            found.setdefault(config_map["metadata"]["name"], config_map)
    return found


def _live_config_map(ctx: Context, namespace: str, name: str) -> Body:
    return read_or_explain(
        lambda: ctx.kube.get_config_map(namespace, name),
        lambda err: (
            f"configmap {name!r} is in the backup but not in namespace {namespace!r} any more: "
            f"rollbot restores ConfigMaps, it does not recreate them ({err})"
        ),
    )


def _autoscaler_warnings(ctx: Context, namespace: str, name: str, replicas: int) -> list[str]:
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


# -- flag -------------------------------------------------------------------------------


def parse_flag(text: str) -> tuple[str, str]:
    """`NAME=VALUE`, as `kubectl set env` takes it."""
    name, equals, value = text.partition("=")
    if not equals or not ENV_NAME.match(name):
        raise StrategyError(
            f"flag {text!r} is not NAME=VALUE with NAME a valid environment variable name "
            "(e.g. FEATURE_NEW_DASHBOARD=false)"
        )
    return name, value


def env_var(name: str, value: str) -> Body:
    # The API leaves an empty value out; so does this, so "already set" compares equal.
    return {"name": name, "value": value} if value else {"name": name}


def set_env(existing: list[Body] | None, name: str, value: str) -> list[Body]:
    """`kubectl set env NAME=VALUE`: replaces the first NAME in place (a valueFrom
    too) and drops any later duplicate; appends NAME when there is none."""
    out: list[Body] = []
    covered = False
    for var in existing or []:
        if var.get("name") != name:
            out.append(var)
        elif not covered:
            out.append(env_var(name, value))
            covered = True
    if not covered:
        out.append(env_var(name, value))
    return out


def env_ops(template: Body, name: str, value: str) -> list[Body]:
    """One op per container (init containers too, as kubectl) whose env changes."""
    ops = []
    spec = template.get("spec", {})
    for kind in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(kind) or []):
            env = container.get("env")
            wanted = set_env(env, name, value)
            if wanted != (env or []):
                path = f"/spec/template/spec/{kind}/{index}"
                ops.append({"op": "test", "path": f"{path}/name", "value": container["name"]})
                ops.append({"op": "add", "path": f"{path}/env", "value": wanted})
    return ops


def shown_value(var: Body | None) -> str:
    """An env var's current value as a confirmation shows it (never a secret's)."""
    if var is None:
        return "(unset)"
    ref = var.get("valueFrom") or {}
    if "configMapKeyRef" in ref:
        source = ref["configMapKeyRef"]
        return f"(from configmap {source.get('name')} key {source.get('key')})"
    if ref:
        return f"(from {', '.join(ref)})"
    return fingerprint(str(var.get("value", "")))


def _containers(template: Body) -> list[Body]:
    spec = template.get("spec", {})
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


class FlagStrategy:
    name = "flag"

    def plan(self, ctx: Context, request: Request) -> Plan:
        flag = option(request, "flag")
        name, value = parse_flag(flag)
        changes: list[str] = []
        touched: list[str] = []
        seen: set[str] = set()
        for deployment_name in workloads_of(ctx, request):
            deployment = ctx.kube.get_deployment(request.namespace, deployment_name)
            template = deployment["spec"]["template"]
            if env_ops(template, name, value):
                touched.append(deployment_name)
            for container in _containers(template):
                env = container.get("env") or []
                if set_env(env, name, value) == env:
                    seen.add(value)
                    continue
                now = shown_value(next((v for v in env if v.get("name") == name), None))
                seen.add(now)
                changes.append(
                    f"deployment {deployment_name} container {container['name']}: "
                    f"env {name}: {now} → {value}"
                )
        return Plan(
            strategy=self.name,
            namespace=request.namespace,
            subject=f"{request.service} feature flag {name}",
            current=f"{name}: {', '.join(sorted(seen))}",
            target=f"{name}={value}",
            changes=tuple(changes),
            pins={"name": name, "value": value, "deployments": ",".join(touched)},
            workloads=tuple(touched) or tuple(workloads_of(ctx, request)),
            nothing_to_do=None
            if touched
            else f"every container of {request.service} already has {name}={value}",
        )

    def apply(
        self, ctx: Context, namespace: str, pins: Mapping[str, str], cause: str, progress: Progress
    ) -> str:
        name, value = pins["name"], pins["value"]
        rollouts = Rollouts()
        for deployment_name in _list(pins["deployments"]):
            deployment = ctx.kube.get_deployment(namespace, deployment_name)
            ops = env_ops(deployment["spec"]["template"], name, value)
            if not ops:
                rollouts.unchanged(deployment)
                continue
            ops.insert(0, unchanged_since(deployment))
            _annotated(ops, deployment, CHANGE_CAUSE, cause)
            rollouts.patch(ctx, namespace, deployment, ops)
            progress.milestone(f"Set {name}={value} on {deployment_name}")
        rollouts.follow(ctx, namespace, progress)
        return f"set {name}={value} on {names(_list(pins['deployments']))}"


# -- scale ------------------------------------------------------------------------------


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
            facts += _autoscaler_warnings(ctx, request.namespace, name, replicas)
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
        deployments = [ctx.kube.get_deployment(namespace, n) for n in _list(pins["deployments"])]
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


# -- divert -----------------------------------------------------------------------------


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
        deployments = [ctx.kube.get_deployment(namespace, n) for n in _list(pins["deployments"])]
        services = _list(pins["services"])
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
