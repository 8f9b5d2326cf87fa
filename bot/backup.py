"""The backup taken before a rollback: what the runbooks save by hand with
`kubectl get … -o yaml`. The Deployment, the Services that route to its pods,
the ConfigMaps its pods read (with their data, so a config rollback can restore
them) and its HorizontalPodAutoscaler. Secrets are named, never copied.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from bot.errors import RollbotError

Body = dict[str, Any]
SERVER_FIELDS = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation")


class BackupSource(Protocol):
    def get_deployment(self, namespace: str, name: str) -> Body: ...

    def list_services(self, namespace: str) -> list[Body]: ...

    def get_config_map(self, namespace: str, name: str) -> Body: ...

    def list_autoscalers(self, namespace: str) -> list[Body]: ...


def clean(obj: Body) -> Body:
    """An object as a backup keeps it: no status, no server-managed fields."""
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k not in SERVER_FIELDS}
    return {k: v for k, v in {**obj, "metadata": meta}.items() if k != "status"}


def referenced(template: Body) -> tuple[set[str], set[str]]:
    """(ConfigMap names, Secret names) a pod template reads."""
    spec = template.get("spec", {})
    config_maps: set[str] = set()
    secrets: set[str] = set()
    for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        for source in container.get("envFrom") or []:
            if "configMapRef" in source:
                config_maps.add(source["configMapRef"]["name"])
            if "secretRef" in source:
                secrets.add(source["secretRef"]["name"])
        for var in container.get("env") or []:
            ref = var.get("valueFrom") or {}
            if "configMapKeyRef" in ref:
                config_maps.add(ref["configMapKeyRef"]["name"])
            if "secretKeyRef" in ref:
                secrets.add(ref["secretKeyRef"]["name"])
    for volume in spec.get("volumes") or []:
        if "configMap" in volume:
            config_maps.add(volume["configMap"]["name"])
        if "secret" in volume:
            secrets.add(volume["secret"]["secretName"])
        for projected in (volume.get("projected") or {}).get("sources") or []:
            if "configMap" in projected:
                config_maps.add(projected["configMap"]["name"])
            if "secret" in projected:
                secrets.add(projected["secret"]["name"])
    return config_maps, secrets


def routes_to(service: Body, pod_labels: Body) -> bool:
    selector = service.get("spec", {}).get("selector") or {}
    return bool(selector) and all(pod_labels.get(k) == v for k, v in selector.items())


def take_backup(source: BackupSource, namespace: str, name: str) -> Body:
    deployment = source.get_deployment(namespace, name)
    template = deployment["spec"]["template"]
    labels = template.get("metadata", {}).get("labels") or {}
    config_map_names, secret_names = referenced(template)
    config_maps = []
    missing = []
    for cm in sorted(config_map_names):
        try:
            config_maps.append(clean(source.get_config_map(namespace, cm)))
        except RollbotError as err:  # optional or not yet created: say so, go on
            missing.append(f"configmap/{cm}: {err}")
    return {
        "taken_at": time.time(),
        "deployment": clean(deployment),
        "services": [clean(s) for s in source.list_services(namespace) if routes_to(s, labels)],
        "config_maps": config_maps,
        "autoscalers": [
            clean(h)
            for h in source.list_autoscalers(namespace)
            if (h.get("spec", {}).get("scaleTargetRef") or {}).get("name") == name
            and h["spec"]["scaleTargetRef"].get("kind") == "Deployment"
        ],
        "secrets_referenced": sorted(secret_names),  # names only: Secret data is never copied
        "not_backed_up": missing,
    }
