"""Restore, from an earlier rollback's backup: its ConfigMaps (and with
`what=all` its Deployments) put back, and what reads them restarted — jarvis-api's
and family-assistant's `kubectl rollout undo configmap/…` + `kubectl rollout restart`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from bot.backup import referenced
from bot.bodies import Body
from bot.deployments import CHANGE_CAUSE, container_images, templates_equal
from bot.diff import template_diff
from bot.strategies.base import (
    Context,
    Plan,
    Progress,
    Request,
    StrategyError,
    option,
    read_or_explain,
    workloads_of,
)
from bot.strategies.deployment_changes import (
    Rollouts,
    annotate,
    autoscaler_warnings,
    listed_pin,
)
from bot.strategies.observe import (
    names,
    replicas_of,
    unchanged_since,
)

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def bundles_of(bundle: Body) -> dict[str, Body]:
    """Deployment → its backup, whether one Deployment was backed up or several."""
    if "components" in bundle:
        return dict(bundle["components"])
    if "deployment" not in bundle:  # an Argo Rollout's backup: its own strategy undoes it
        kept = ", ".join(bundle.get("saved") or ()) or "no Deployment"
        raise StrategyError(
            f"that backup holds {kept}, not a Deployment: roll an Argo Rollout back with "
            "its own strategy (--to-revision N)"
        )
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
        ours = set(workloads_of(ctx, request))
        if strangers := sorted(set(bundles) - ours):
            raise StrategyError(
                f"backup {backup_id!r} is of {', '.join(strangers)}, not of {request.service} "
                f"({', '.join(sorted(ours))}): give the id of a rollback of this service"
            )

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
                facts += autoscaler_warnings(ctx, request.namespace, name, then)

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
        for name in listed_pin(pins["config_maps"]):
            backed_up = config_maps[name]
            live = _live_config_map(ctx, namespace, name)
            ops = restore_config_ops(backed_up, live)
            if ops:
                ctx.kube.json_patch_config_map(namespace, name, ops)
                progress.milestone(f"Restored configmap {name} from the backup")

        specs, restarts = listed_pin(pins["deployments"]), listed_pin(pins["restart"])
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
                annotate(ops, deployment, CHANGE_CAUSE, cause)
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
            parts.append(f"restored configmap {names(listed_pin(pins['config_maps']))}")
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
