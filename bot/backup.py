"""The backup taken before a rollback: what the runbooks save by hand with
`kubectl get … -o yaml`. The Deployment, the Services that route to its pods,
the ConfigMaps its pods read (with their data, so a config rollback can restore
them) and its HorizontalPodAutoscaler. Secrets are named, never copied.

The backup stays in the store, whole, for a restore. What people are shown
(the file in the rollback thread) is `redacted_backup`: the same shape with
env values, ConfigMap data and anything credential-like taken out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from typing import Any, Protocol

from bot.errors import RollbotError
from bot.redaction import REDACTED, looks_secret_key, redact

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


#: Holds the whole object as last applied, env values included: dropped, not redacted.
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
#: Below this size a value's hash is left out: a short value is guessed from its hash.
FINGERPRINT_MIN_BYTES = 16


def redacted_backup(bundle: Body) -> Body:
    """A copy of a backup (one Deployment's, or `{"components": {name: backup}}`) safe to
    show people: env values, header values and ConfigMap data replaced, credential-like
    `args`/`command` items and annotations redacted, the last-applied annotation dropped,
    Secret data removed, and every other string passed through `redact`."""
    shown = _scrub(bundle, parent="")
    assert isinstance(shown, dict)
    return shown


def _scrub(value: Any, parent: str) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        if parent in ("command", "args"):
            return _arguments(value)
        if parent in ("env", "httpHeaders"):
            return [_without_value(item) for item in value]
        return [_scrub(item, parent) for item in value]
    if not isinstance(value, dict):
        return value
    if value.get("kind") == "Secret":
        value = {k: v for k, v in value.items() if k not in ("data", "stringData")}
    if value.get("kind") == "ConfigMap" or parent == "config_maps":
        value = {
            **value,
            **{
                key: {name: _fingerprint(data, key == "binaryData") for name, data in items.items()}
                for key in ("data", "binaryData")
                if isinstance(items := value.get(key), dict)
            },
        }
    out: Body = {}
    for key, item in value.items():
        if key == "annotations" and isinstance(item, dict):
            out[key] = {
                name: (
                    "[dropped: holds the whole object]" if name == LAST_APPLIED else redact(text)
                )
                if isinstance(text, str)
                else text
                for name, text in item.items()
            }
        else:
            out[key] = _scrub(item, key)
    return out


def _fingerprint(data: Any, binary: bool) -> str:
    """What a ConfigMap value was, without the value: its size and, for a long one, its hash."""
    if not isinstance(data, str):
        return REDACTED
    raw = data.encode()
    if binary:
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            pass
    note = f"{len(raw)} bytes"
    if len(raw) >= FINGERPRINT_MIN_BYTES:
        note += f", sha256 {hashlib.sha256(raw).hexdigest()[:12]}"
    return f"[redacted: {note}]"


def _without_value(item: Any) -> Any:
    """An env var or HTTP header: its name and `valueFrom` kept, its value replaced."""
    if not isinstance(item, dict):
        return _scrub(item, "")
    kept = {k: _scrub(v, k) for k, v in item.items() if k != "value"}
    if "value" in item:
        kept["value"] = REDACTED if item["value"] not in ("", None) else item["value"]
    return kept


def _arguments(items: list[Any]) -> list[Any]:
    """`command`/`args`: each item redacted, and the item after a secret-named flag
    (`--password`, `-token`) replaced whatever it looks like."""
    out: list[Any] = []
    hide_next = False
    for item in items:
        if not isinstance(item, str):
            out.append(item)
            hide_next = False
            continue
        out.append(REDACTED if hide_next else redact(item))
        hide_next = item.startswith("-") and "=" not in item and looks_secret_key(item)
    return out
