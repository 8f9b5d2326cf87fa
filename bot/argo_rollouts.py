"""An Argo Rollout as rollbot reads it: its revisions (the ReplicaSets it owns),
where its update stands, its latest analysis, and the two changes
`kubectl argo rollouts` makes (abort, undo) — pure functions on raw bodies.

The rules follow argo-rollouts v1.10: the plugin's `undo` (the previous revision
is the second-highest `rollout.argoproj.io/revision`; the ReplicaSet's pod
template goes back into `spec.template` without its `rollouts-pod-template-hash`
label, skipped when the template already matches), its `abort` (the status
subresource's `abort: true`) and the controller's fast rollback (`rollbackWindow`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.bodies import Body
from bot.deployments import container_images

REVISION = "rollout.argoproj.io/revision"
HASH_LABEL = "rollouts-pod-template-hash"
#: ReplicaSets of an Experiment do not count toward the rollback window.
EXPERIMENT = "experiment.argoproj.io/name"
ABORT_PATCH: Body = {"status": {"abort": True}}


@dataclass(frozen=True)
class RolloutRevision:
    number: int
    replica_set: str
    pod_hash: str
    images: tuple[str, ...]
    #: The ReplicaSet's creationTimestamp (RFC 3339, so it sorts as text).
    created: str
    replicas: int
    ready: int
    stable: bool
    canary: bool
    experiment: bool


@dataclass(frozen=True)
class RolloutStatus:
    """Where a Rollout stands, as `kubectl argo rollouts get` shows it."""

    name: str
    strategy: str  # "canary" or "blue-green"
    phase: str  # Healthy, Progressing, Paused, Degraded
    message: str
    observed: bool
    aborted: bool
    paused: tuple[str, ...]  # the pause conditions' reasons
    step: int | None  # the current step index, canary only
    steps: int
    weight: int | None  # the canary's share of traffic, canary only
    desired: int
    updated: int
    ready: int
    available: int
    stable_hash: str
    current_hash: str
    #: blue-green: the ReplicaSet hash the active Service selects.
    active_hash: str

    @property
    def updating(self) -> bool:
        """An update in progress: a canary (or preview) that is not the stable one."""
        return bool(self.stable_hash) and self.current_hash != self.stable_hash

    def describe(self) -> str:
        """One line: "Progressing: step 1/5, canary weight 20%, 4/5 ready"."""
        parts = []
        if self.step is not None and self.steps:
            parts.append(f"step {min(self.step, self.steps)}/{self.steps}")
        if self.weight is not None:
            parts.append(f"canary weight {self.weight}%")
        if self.aborted:
            parts.append("aborted")
        parts.append(f"{self.ready}/{self.desired} ready")
        why = f" ({self.message})" if self.message else ""
        return f"{self.phase}{why}: " + ", ".join(parts)


@dataclass(frozen=True)
class FailedMetric:
    name: str
    phase: str
    value: str
    message: str

    def describe(self) -> str:
        text = f"{self.name} {self.phase}"
        if self.value:
            text += f", measured {self.value}"
        return text + (f" ({self.message})" if self.message else "")


@dataclass(frozen=True)
class AnalysisSummary:
    name: str
    phase: str
    message: str
    failed: tuple[FailedMetric, ...]

    @property
    def bad(self) -> bool:
        return self.phase in ("Failed", "Error", "Inconclusive")

    def describe(self) -> str:
        text = f"analysis {self.name}: {self.phase or 'Pending'}"
        if self.message:
            text += f" ({self.message})"
        if self.failed:
            text += "; " + "; ".join(m.describe() for m in self.failed)
        return text


class UndoProblem(ValueError):
    """The plugin's refusal: no such revision, or none before the current one."""


# -- reading -----------------------------------------------------------------


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def revision_of(replica_set: Body) -> int:
    """The plugin's `revision`: the annotation, 0 when absent."""
    annotations = replica_set["metadata"].get("annotations") or {}
    return _int(annotations.get(REVISION))


def owned_by(rollout: Body, replica_sets: Sequence[Body]) -> list[Body]:
    """The ReplicaSets whose controller is this Rollout (by uid, as the plugin checks)."""
    uid = rollout["metadata"].get("uid")
    return [
        rs
        for rs in replica_sets
        if any(
            ref.get("controller") and ref.get("uid") == uid
            for ref in rs["metadata"].get("ownerReferences") or []
        )
    ]


def history(rollout: Body, owned: Sequence[Body]) -> list[RolloutRevision]:
    """The Rollout's revisions, oldest first."""
    status = rollout.get("status") or {}
    stable, current = status.get("stableRS") or "", status.get("currentPodHash") or ""
    revisions = []
    for rs in owned:
        meta = rs["metadata"]
        pod_hash = (meta.get("labels") or {}).get(HASH_LABEL, "")
        rs_status = rs.get("status") or {}
        revisions.append(
            RolloutRevision(
                number=revision_of(rs),
                replica_set=meta["name"],
                pod_hash=pod_hash,
                images=container_images(rs["spec"]["template"]),
                created=str(meta.get("creationTimestamp") or ""),
                replicas=_int(rs_status.get("replicas")),
                ready=_int(rs_status.get("readyReplicas")),
                stable=bool(pod_hash) and pod_hash == stable,
                canary=bool(pod_hash) and pod_hash == current and current != stable,
                experiment=bool((meta.get("annotations") or {}).get(EXPERIMENT)),
            )
        )
    return sorted(revisions, key=lambda r: (r.number, r.created))


def steps_of(rollout: Body) -> list[Body]:
    canary = (rollout.get("spec", {}).get("strategy") or {}).get("canary")
    return list((canary or {}).get("steps") or [])


def _set_weight(rollout: Body, step: int | None, aborted: bool) -> int:
    """The weight the steps ask for now (the plugin's `GetCurrentSetWeight`)."""
    steps = steps_of(rollout)
    if aborted:
        return 0
    if step is None or step >= len(steps):
        return 100
    for index in range(step, -1, -1):
        if "setWeight" in steps[index]:
            return _int(steps[index]["setWeight"])
    return 0


def read_status(rollout: Body, revisions: Sequence[RolloutRevision] = ()) -> RolloutStatus:
    meta, spec = rollout["metadata"], rollout.get("spec") or {}
    status = rollout.get("status") or {}
    strategy = "blue-green" if (spec.get("strategy") or {}).get("blueGreen") else "canary"
    # A string in status (v0.10+: the generation; older: a hash, taken as seen).
    seen = str(status.get("observedGeneration") or "")
    observed = not seen.isdigit() or int(seen) == _int(meta.get("generation"))
    aborted = bool(status.get("abort"))
    step = status.get("currentStepIndex")
    steps = len(steps_of(rollout))
    weight: int | None = None
    if strategy == "canary":
        weights = (status.get("canary") or {}).get("weights")
        if weights:
            weight = _int((weights.get("canary") or {}).get("weight"))
        elif steps and step is not None and step < steps:
            weight = actual_weight(status, revisions, _set_weight(rollout, step, aborted))
        elif steps:
            weight = 0 if aborted else 100
    phase = str(status.get("phase") or "Progressing")
    message = str(status.get("message") or "")
    if not observed:
        phase, message = "Progressing", "waiting for rollout spec update to be observed"
    desired = spec.get("replicas")
    return RolloutStatus(
        name=meta["name"],
        strategy=strategy,
        phase=phase,
        message=message,
        observed=observed,
        aborted=aborted,
        paused=tuple(str(c.get("reason")) for c in status.get("pauseConditions") or []),
        step=None if step is None or strategy != "canary" else _int(step),
        steps=steps,
        weight=weight,
        desired=1 if desired is None else _int(desired),
        updated=_int(status.get("updatedReplicas")),
        ready=_int(status.get("readyReplicas")),
        available=_int(status.get("availableReplicas")),
        stable_hash=str(status.get("stableRS") or ""),
        current_hash=str(status.get("currentPodHash") or ""),
        active_hash=str((status.get("blueGreen") or {}).get("activeSelector") or ""),
    )


def actual_weight(status: Body, revisions: Sequence[RolloutRevision], set_weight: int) -> int:
    """Without a traffic router the canary's share is its share of ready pods."""
    canary = [r for r in revisions if r.canary]
    total = sum(r.ready for r in revisions)
    if not canary or not total:
        return set_weight if not revisions else 0
    return canary[0].ready * 100 // total


def latest_analysis(rollout: Body, runs: Sequence[Body]) -> AnalysisSummary | None:
    """The newest AnalysisRun the Rollout owns, with its failed metrics' last values."""
    uid = rollout["metadata"].get("uid")
    owned = [
        run
        for run in runs
        if any(ref.get("uid") == uid for ref in run["metadata"].get("ownerReferences") or [])
    ]
    if not owned:
        return None
    run = max(
        owned,
        key=lambda r: (str(r["metadata"].get("creationTimestamp") or ""), r["metadata"]["name"]),
    )
    status = run.get("status") or {}
    failed = []
    for metric in status.get("metricResults") or []:
        if metric.get("phase") not in ("Failed", "Error", "Inconclusive"):
            continue
        measured = metric.get("measurements") or []
        last = measured[-1] if measured else {}
        failed.append(
            FailedMetric(
                name=str(metric.get("name") or "?"),
                phase=str(metric.get("phase")),
                value=str(last.get("value") or ""),
                message=str(metric.get("message") or last.get("message") or ""),
            )
        )
    return AnalysisSummary(
        name=run["metadata"]["name"],
        phase=str(status.get("phase") or ""),
        message=str(status.get("message") or ""),
        failed=tuple(failed),
    )


# -- undo ----------------------------------------------------------------------


def undo_target(revisions: Sequence[RolloutRevision], to_revision: int) -> RolloutRevision:
    """The plugin's choice: revision N, or (0) the second-highest revision number."""
    if to_revision > 0:
        for revision in revisions:
            if revision.number == to_revision:
                return revision
        known = ", ".join(str(r.number) for r in revisions) or "none"
        raise UndoProblem(
            f"unable to find specified revision {to_revision} in history (revisions: {known})"
        )
    numbers = sorted({r.number for r in revisions}, reverse=True)
    if len(numbers) < 2:
        raise UndoProblem("no revision found before the current one")
    return next(r for r in revisions if r.number == numbers[1])


def derives(wanted: Any, have: Any) -> bool:
    """apimachinery's `DeepDerivative`: every field `wanted` sets is equal in `have`
    (unset and empty ones are ignored), as the plugin compares templates."""
    if isinstance(wanted, Mapping):
        if not wanted:
            return True
        if not isinstance(have, Mapping):
            return False
        return all(k in have and derives(v, have[k]) for k, v in wanted.items())
    if isinstance(wanted, list):
        if not wanted:
            return True
        if not isinstance(have, list) or len(wanted) > len(have):
            return False
        return all(derives(a, b) for a, b in zip(wanted, have, strict=False))
    if isinstance(wanted, str) and not wanted:
        return True
    if wanted is None:
        return True
    return type(wanted) is type(have) and bool(wanted == have)


def without_hash(template: Body) -> Body:
    """A pod template with the controller's hash label taken out (a copy)."""
    clean = copy.deepcopy(template)
    labels = (clean.get("metadata") or {}).get("labels")
    if labels is not None:
        labels.pop(HASH_LABEL, None)
    return clean


def matches_template(rollout: Body, replica_set: Body) -> bool:
    """Whether the Rollout already runs this ReplicaSet's template (the plugin skips)."""
    return derives(
        without_hash(rollout["spec"].get("template") or {}),
        without_hash(replica_set["spec"]["template"]),
    )


def undo_ops(rollout: Body, replica_set: Body, cause: str | None = None) -> list[Body]:
    """The plugin's patch (the ReplicaSet's template, hash label out, into
    `spec.template`), guarded: refused if the spec changed since it was read; the
    Rollout keeps who rolled it back and why, as a Deployment keeps its change-cause."""
    ops: list[Body] = [
        {"op": "test", "path": "/metadata/generation", "value": rollout["metadata"]["generation"]},
        {
            "op": "replace",
            "path": "/spec/template",
            "value": without_hash(replica_set["spec"]["template"]),
        },
    ]
    if cause:
        key = "kubernetes.io~1change-cause"
        if rollout["metadata"].get("annotations") is None:
            ops.append({"op": "add", "path": "/metadata/annotations", "value": {}})
        ops.append({"op": "add", "path": f"/metadata/annotations/{key}", "value": cause})
    return ops


# -- fast rollback ----------------------------------------------------------------


def fast_rollback(
    rollout: Body, revisions: Sequence[RolloutRevision], target: RolloutRevision
) -> tuple[bool, str]:
    """Whether the controller will skip the steps and the analysis going to `target`,
    and why (its `isFastRollback`): back to the stable ReplicaSet always; to an older
    one when fewer revisions than `spec.rollbackWindow.revisions` lie between it and
    the stable one."""
    status = rollout.get("status") or {}
    stable_hash = status.get("stableRS") or ""
    if target.pod_hash and target.pod_hash == stable_hash:
        return True, f"revision {target.number} is the stable one: steps and analysis are skipped"
    window = _int(((rollout.get("spec") or {}).get("rollbackWindow") or {}).get("revisions"))
    stable = next((r for r in revisions if r.stable), None)
    if stable is None or not target.created or target.created >= stable.created:
        return False, (
            f"revision {target.number} is not older than the stable one: "
            "it goes through every step and analysis"
        )
    between = [
        r for r in revisions if not r.experiment and target.created < r.created < stable.created
    ]
    if window <= 0:
        return False, (
            "no rollbackWindow in the Rollout's spec: "
            f"revision {target.number} goes through every step and analysis"
        )
    if len(between) < window:
        return True, (
            f"revision {target.number} is within rollbackWindow.revisions {window}: "
            "steps and analysis are skipped"
        )
    return False, (
        f"revision {target.number} is outside rollbackWindow.revisions {window} "
        f"({len(between)} between it and the stable one): it goes through every step and analysis"
    )
