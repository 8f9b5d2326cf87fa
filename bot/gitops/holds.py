"""Holding an owner's reconciliation, and giving it back exactly as it was.

Flux: `spec.suspend: true` on the Kustomization or HelmRelease (what
`flux suspend` does). Argo CD: the Application's `spec.syncPolicy.automated`
removed, which makes its syncs manual (self-heal and prune go with it).

The setting before the hold is written to the rollback record *before* the
patch, so a worker that dies between the two leaves a record whose retry finds
the previous setting already there and does not take the held one for it.
Restoring it puts back that value: an absent `suspend` absent again, an
`automated` block with every field it had.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from bot.bodies import Body
from bot.gitops.owner import Owner, OwnerRef

#: Asks Flux to reconcile now rather than at its next interval (`flux resume` does too).
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"


class ReconciliationHold(BaseModel):
    """One owner's hold, on the rollback record that made it."""

    model_config = ConfigDict(frozen=True)

    kind: str
    namespace: str
    name: str
    #: The setting before the hold, as JSON: `{"suspend": …}` (Flux) or
    #: `{"automated": …}` (Argo CD), null for a field that was absent. None: not
    #: read yet (the hold has not begun).
    previous: str | None = None
    held_at: datetime | None = None
    #: Flux: the source revision it had applied when held (the bad version's, most likely).
    applied_revision: str | None = None
    resumed_at: datetime | None = None
    resumed_by: str | None = None
    #: The commit rollbot made so that Git matches the rollback, and its branch.
    git_commit: str | None = None
    git_branch: str | None = None

    @property
    def ref(self) -> OwnerRef:
        return OwnerRef(self.kind, self.namespace, self.name, "the rollback's record")

    @property
    def held(self) -> bool:
        return self.held_at is not None and self.resumed_at is None

    @property
    def previous_value(self) -> Any:
        return json.loads(self.previous or "{}").get(self._field)

    @property
    def _field(self) -> str:
        return "automated" if self.kind == "Application" else "suspend"

    def previous_text(self) -> str:
        """The recorded setting in words ("spec.suspend absent")."""
        if self.kind == "Application":
            value = self.previous_value
            shown = "absent (manual sync)" if value is None else json.dumps(value, sort_keys=True)
            return f"spec.syncPolicy.automated {shown}"
        value = self.previous_value
        return "spec.suspend absent" if value is None else f"spec.suspend: {json.dumps(value)}"

    def held_text(self) -> str:
        """The change the hold makes, in words."""
        if self.kind == "Application":
            return f"{self.ref}: automated sync turned off (was {self.previous_text()})"
        return f"{self.ref}: suspended (was {self.previous_text()})"


def planned_hold(owner: Owner) -> ReconciliationHold:
    ref = owner.ref
    return ReconciliationHold(kind=ref.kind, namespace=ref.namespace, name=ref.name)


def previous_setting(owner: Owner) -> str:
    """The setting a hold changes, as the JSON a ReconciliationHold keeps."""
    if owner.ref.kind == "Application":
        return json.dumps({"automated": (owner.spec.get("syncPolicy") or {}).get("automated")})
    return json.dumps({"suspend": owner.spec.get("suspend")})


def applied_revision(owner: Owner) -> str | None:
    status = (owner.body or {}).get("status") or {}
    if owner.ref.kind == "Application":
        return (status.get("sync") or {}).get("revision")
    return status.get("lastAppliedRevision")


def hold_ops(owner: Owner) -> list[Body]:
    """The JSON patch that holds it; empty when it is held already (a retry)."""
    if owner.ref.kind == "Application":
        policy = owner.spec.get("syncPolicy") or {}
        if "automated" not in policy:
            return []
        return [{"op": "remove", "path": "/spec/syncPolicy/automated"}]
    if owner.spec.get("suspend") is True:
        return []
    return [{"op": "add", "path": "/spec/suspend", "value": True}]


def resume_ops(owner: Owner, hold: ReconciliationHold, at: datetime) -> list[Body]:
    """The JSON patch that puts the recorded setting back exactly (and asks Flux to
    reconcile at once)."""
    value = hold.previous_value
    spec = owner.spec
    if owner.ref.kind == "Application":
        if value is None:
            return (
                [{"op": "remove", "path": "/spec/syncPolicy/automated"}]
                if "automated" in (spec.get("syncPolicy") or {})
                else []
            )
        if "syncPolicy" not in spec:
            return [{"op": "add", "path": "/spec/syncPolicy", "value": {"automated": value}}]
        return [{"op": "add", "path": "/spec/syncPolicy/automated", "value": value}]
    ops: list[Body]
    if value is None:
        ops = [{"op": "remove", "path": "/spec/suspend"}] if "suspend" in spec else []
    else:
        ops = [{"op": "add", "path": "/spec/suspend", "value": value}]
    annotations = ((owner.body or {}).get("metadata") or {}).get("annotations")
    stamp = at.isoformat()
    if annotations is None:
        ops.append({"op": "add", "path": "/metadata/annotations", "value": {REQUESTED_AT: stamp}})
    else:
        key = REQUESTED_AT.replace("~", "~0").replace("/", "~1")
        ops.append({"op": "add", "path": f"/metadata/annotations/{key}", "value": stamp})
    return ops
