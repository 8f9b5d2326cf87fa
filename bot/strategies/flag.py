"""A feature flag turned off (or on) through an env var on every container,
rolled out: jarvis-api's `kubectl set env deployment/… NAME=false`."""

from __future__ import annotations

import re
from collections.abc import Mapping

from bot.bodies import Body
from bot.deployments import CHANGE_CAUSE
from bot.diff import fingerprint
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
    annotate,
    listed_pin,
)
from bot.strategies.observe import (
    names,
    unchanged_since,
)

ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


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
        for deployment_name in listed_pin(pins["deployments"]):
            deployment = ctx.kube.get_deployment(namespace, deployment_name)
            ops = env_ops(deployment["spec"]["template"], name, value)
            if not ops:
                rollouts.unchanged(deployment)
                continue
            ops.insert(0, unchanged_since(deployment))
            annotate(ops, deployment, CHANGE_CAUSE, cause)
            rollouts.patch(ctx, namespace, deployment, ops)
            progress.milestone(f"Set {name}={value} on {deployment_name}")
        rollouts.follow(ctx, namespace, progress)
        return f"set {name}={value} on {names(listed_pin(pins['deployments']))}"
