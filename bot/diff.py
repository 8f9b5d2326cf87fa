"""What a rollback will change, as a person reads it: current pod template → target.

The diff speaks in the terms of the runbooks ("image", "env", "resources",
"probes") rather than JSON paths, and never shows an env var's value: values
may be secrets, so a changed value shows as a short fingerprint instead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from typing import Any

from bot.bodies import Body
from bot.deployments import without_hash
from bot.redaction import redact

PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
# Container fields the diff names on their own; the rest fall into "other".
NAMED_CONTAINER_FIELDS = frozenset(
    {"name", "image", "env", "resources", "command", "args", *PROBES}
)


@dataclass(frozen=True)
class Change:
    """One line of the diff: where, what, and the value before and after."""

    where: str  # "container app", "init container migrate", "pod"
    what: str  # "image", "env DATABASE_URL", "resources", "label tier", ...
    before: str | None  # None: absent before (added)
    after: str | None  # None: absent after (removed)

    @property
    def kind(self) -> str:
        if self.before is None:
            return "added"
        if self.after is None:
            return "removed"
        return "changed"

    def describe(self) -> str:
        if self.before is None:
            return f"{self.where}: {self.what} added: {self.after}"
        if self.after is None:
            return f"{self.where}: {self.what} removed (was {self.before})"
        return f"{self.where}: {self.what}: {self.before} → {self.after}"


#: Keys the fingerprints: without it, a short value could be found again from its
#: fingerprint by trying every candidate. The store key where there is one (the
#: same fingerprint in every process), else one for this process's life.
_SALT = os.environ.get("ROLLBOT_STORE_KEY", "").encode() or secrets.token_bytes(32)


def fingerprint(value: str) -> str:
    """A value shown without showing it: enough to tell two values apart, and keyed
    so that nobody can tell which value it was."""
    return "•••" + hmac.new(_SALT, value.encode(), hashlib.sha256).hexdigest()[:8]


def _compact(value: Any) -> str:
    """A value as one line, with anything that looks like a credential redacted (a
    command's `--password x`, a URL with a password, a token in an annotation)."""
    if not isinstance(value, str):
        value = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return redact(value)


def _env_value(var: Body) -> str:
    if "value" in var:
        return fingerprint(str(var["value"]))
    if "valueFrom" in var:
        # A reference names where the value lives, not the value: safe to show.
        return "from " + _compact(var["valueFrom"])
    return "(empty)"


def _by_name(items: list[Body] | None) -> dict[str, Body]:
    return {item.get("name", str(i)): item for i, item in enumerate(items or [])}


def _diff_values(where: str, what: str, before: Any, after: Any) -> list[Change]:
    if before == after:
        return []
    old = None if before is None else _compact(before)
    new = None if after is None else _compact(after)
    if old is not None and old == new:
        # They differ only where redacted: tell them apart by fingerprint.
        old = f"{old} {fingerprint(json.dumps(before, sort_keys=True))}"
        new = f"{new} {fingerprint(json.dumps(after, sort_keys=True))}"
    return [Change(where, what, old, new)]


def _diff_mapping(
    where: str, noun: str, before: Body | None, after: Body | None, show: Any = _compact
) -> list[Change]:
    before, after = before or {}, after or {}
    changes = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old != new:
            changes.append(
                Change(
                    where,
                    f"{noun} {key}",
                    None if old is None else show(old),
                    None if new is None else show(new),
                )
            )
    return changes


def _diff_env(where: str, before: list[Body] | None, after: list[Body] | None) -> list[Change]:
    old, new = _by_name(before), _by_name(after)
    changes = []
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            changes.append(
                Change(
                    where,
                    f"env {name}",
                    _env_value(old[name]) if name in old else None,
                    _env_value(new[name]) if name in new else None,
                )
            )
    return changes


def _diff_container(where: str, before: Body | None, after: Body | None) -> list[Change]:
    if before is None or after is None:
        present = after if before is None else before
        assert present is not None
        image = present.get("image", "")
        return [
            Change(
                where,
                "container",
                None if before is None else image,
                None if after is None else image,
            )
        ]
    changes = _diff_values(where, "image", before.get("image"), after.get("image"))
    changes += _diff_env(where, before.get("env"), after.get("env"))
    for key in ("resources", "command", "args", *PROBES):
        changes += _diff_values(where, key, before.get(key), after.get(key))
    other_keys = (set(before) | set(after)) - NAMED_CONTAINER_FIELDS
    for key in sorted(other_keys):
        changes += _diff_values(where, key, before.get(key), after.get(key))
    return changes


def _diff_containers(
    label: str, before: list[Body] | None, after: list[Body] | None
) -> list[Change]:
    old, new = _by_name(before), _by_name(after)
    changes = []
    for name in sorted(set(old) | set(new), key=lambda n: (n not in new, n)):
        changes += _diff_container(f"{label} {name}", old.get(name), new.get(name))
    return changes


def template_diff(current: Body, target: Body) -> list[Change]:
    """Every difference between two pod templates, ignoring `pod-template-hash`."""
    current, target = without_hash(current), without_hash(target)
    cur_meta, tgt_meta = current.get("metadata", {}), target.get("metadata", {})
    cur_spec, tgt_spec = current.get("spec", {}), target.get("spec", {})
    changes = _diff_containers(
        "init container", cur_spec.get("initContainers"), tgt_spec.get("initContainers")
    )
    changes += _diff_containers("container", cur_spec.get("containers"), tgt_spec.get("containers"))
    changes += _diff_mapping("pod", "label", cur_meta.get("labels"), tgt_meta.get("labels"))
    changes += _diff_mapping(
        "pod", "annotation", cur_meta.get("annotations"), tgt_meta.get("annotations")
    )
    for key in sorted((set(cur_spec) | set(tgt_spec)) - {"containers", "initContainers"}):
        changes += _diff_values("pod", key, cur_spec.get(key), tgt_spec.get(key))
    return changes
