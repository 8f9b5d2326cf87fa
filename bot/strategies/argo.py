"""An Argo Rollout rolled back the eli-maor way (strategy `argo-rollouts`,
catalog `rollout: NAME`): an update in progress is aborted as
`kubectl argo rollouts abort` does (traffic back to the stable ReplicaSet),
made permanent on request (`--permanent`, or the catalog's `abort_permanently`)
by undoing the spec to the stable revision, which the plan says; otherwise
the spec is undone to the previous or a chosen revision exactly as
`kubectl argo rollouts undo` does. The plan says whether the controller will
skip the steps and the analysis (a fast rollback) or go through them.

The pins: `rollout`, `uid`, `action` (abort, abort+undo or undo) and, for an undo,
the target's ReplicaSet, pod hash and revision.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import cast

from bot import failpoints
from bot.argo_assessment import assess_rollout
from bot.argo_rollouts import (
    ABORT_PATCH,
    RolloutRevision,
    UndoProblem,
    fast_rollback,
    history,
    latest_analysis,
    matches_template,
    read_status,
    undo_ops,
    undo_target,
)
from bot.backup import clean, routes_to
from bot.bodies import Body
from bot.strategies.argo_follow import RolloutKube, follow, replica_sets_of, wait_aborted
from bot.strategies.base import (
    Context,
    Plan,
    Progress,
    Request,
    StrategyError,
    entry_of,
    read_or_explain,
)

HISTORY_SHOWN = 6


def kube_of(ctx: Context) -> RolloutKube:
    return cast(RolloutKube, ctx.kube)


def rollout_of(ctx: Context, request: Request) -> str:
    entry = entry_of(ctx, request)
    return (entry.rollout if entry else None) or request.service


def read_rollout(kube: RolloutKube, namespace: str, name: str) -> Body:
    return read_or_explain(
        lambda: kube.get_rollout(namespace, name),
        lambda err: (
            f"rollout {name!r} was not found in namespace {namespace!r} "
            f"(kubectl argo rollouts list rollouts -n {namespace}): {err}"
        ),
    )


def _row(revision: RolloutRevision, target: RolloutRevision | None) -> str:
    marks = [m for m, on in (("stable", revision.stable), ("canary", revision.canary)) if on]
    if target is not None and revision.replica_set == target.replica_set:
        marks.append("target")
    mark = f" ← {', '.join(marks)}" if marks else ""
    images = ", ".join(revision.images) or "?"
    return (
        f"revision {revision.number} {revision.replica_set}: {images} "
        f"({revision.ready}/{revision.replicas} ready){mark}"
    )


def _label(revision: RolloutRevision | None) -> str:
    return f"revision {revision.number}" if revision else "revision ?"


def _permanent_asked_in_vain(
    asked: bool, action: str, updating: bool, target: RolloutRevision | None
) -> list[str]:
    """What --permanent does not do here, said rather than ignored."""
    if not asked or action == "abort+undo":
        return []
    if action == "abort":
        return [
            "--permanent: the abort cannot be made permanent: no ReplicaSet of the stable "
            "revision is left to undo the spec to"
        ]
    if not updating:
        return [
            f"--permanent: no update in progress to abort; the spec is undone to "
            f"{_label(target)}, as any rollback of this Rollout does"
        ]
    return []


class ArgoRolloutsStrategy:
    name = "argo-rollouts"

    def plan(self, ctx: Context, request: Request) -> Plan:
        if request.to_tag is not None:
            raise StrategyError(
                "an Argo Rollout rolls back to a revision, not an image tag: use --to-revision"
            )
        kube = kube_of(ctx)
        namespace, name = request.namespace, rollout_of(ctx, request)
        rollout = read_rollout(kube, namespace, name)
        owned = replica_sets_of(kube, namespace, rollout)
        revisions = history(rollout, owned)
        status = read_status(rollout, revisions)
        analysis = latest_analysis(rollout, kube.list_analysis_runs(namespace))
        current = next((r for r in revisions if r.pod_hash == status.current_hash), None)
        stable = next((r for r in revisions if r.stable), None)
        entry = entry_of(ctx, request)
        asked = request.options.get("permanent") == "true"
        permanent = asked or bool(entry and entry.abort_permanently)

        target: RolloutRevision | None
        if status.updating and not status.aborted and not request.revision:
            action = "abort+undo" if permanent and stable else "abort"
            target = stable if action == "abort+undo" else None
        elif status.updating and status.aborted and not request.revision and stable:
            action, target = "undo", stable  # aborted by hand: make it permanent
        else:
            action = "undo"
            try:
                target = undo_target(revisions, request.revision)
            except UndoProblem as err:
                raise StrategyError(f"rollout {name}: {err}") from err

        ref = rollout.get("spec", {}).get("workloadRef")
        if ref and action.endswith("undo"):
            # The plugin patches the referenced workload then; rollbot leaves it to it.
            raise StrategyError(
                f"rollout {name} takes its template from {ref.get('kind')}/{ref.get('name')} "
                f"(workloadRef): undo that workload, or run kubectl argo rollouts undo {name}"
            )
        facts = [f"Rollout {name}: {status.describe()}"]
        if analysis is not None:
            facts.append("Latest " + analysis.describe())
        changes: list[str] = []
        if action.startswith("abort"):
            shown = _label(stable)
            changes.append(
                f"abort the update to {_label(current)}: traffic back to the stable {shown}"
            )
            if action == "abort":
                facts.append(
                    f"The spec still holds {_label(current)}: the Rollout stays Degraded "
                    "(aborted) until it is undone (roll it back again, or ask with --permanent "
                    "to do both at once) or the update is retried"
                )
        facts += _permanent_asked_in_vain(asked, action, status.updating, target)
        nothing = None
        if target is not None:
            target_rs = next(rs for rs in owned if rs["metadata"]["name"] == target.replica_set)
            if action == "undo" and matches_template(rollout, target_rs):
                nothing = (
                    f"skipped rollback (current template already matches revision {target.number})"
                )
            change = f"spec.template of rollout {name} → {_label(target)} ({target.replica_set})"
            if action == "abort+undo":
                why = "asked with --permanent" if asked else "abort_permanently in the catalog"
                change = f"then make the abort permanent ({why}): {change}"
            elif status.updating and status.aborted and not request.revision:
                change = f"make the abort permanent (it was aborted already): {change}"
            changes.append(change)
            fast, why = fast_rollback(rollout, revisions, target)
            facts.append(f"Fast rollback: {why}" if fast else f"Full rollout: {why}")
        facts.append("History:")
        facts += [_row(r, target) for r in revisions[-HISTORY_SHOWN:]]

        pins = {"rollout": name, "uid": str(rollout["metadata"].get("uid")), "action": action}
        if target is not None:
            pins |= {
                "replica_set": target.replica_set,
                "pod_hash": target.pod_hash,
                "revision": str(target.number),
            }
        to = stable if action == "abort" else target
        return Plan(
            strategy=self.name,
            namespace=namespace,
            subject=f"rollout {name}",
            current=f"{_label(current)} ({status.phase})",
            target=(f"stable {_label(stable)}" if action.startswith("abort") else _label(target)),
            changes=tuple(changes),
            pins=pins,
            workloads=(),
            facts=tuple(facts),
            from_images=current.images if current else (),
            to_images=to.images if to else (),
            nothing_to_do=nothing,
            from_revision=current.number if current else None,
            target_revision=to.number if to else None,
            target_replica_set=to.replica_set if to else None,
            assessment=assess_rollout(status, analysis),
        )

    def apply(
        self, ctx: Context, namespace: str, pins: Mapping[str, str], cause: str, progress: Progress
    ) -> str:
        kube = kube_of(ctx)
        name, action = pins["rollout"], pins["action"]
        done = []
        if action.startswith("abort"):
            self._abort(ctx, kube, namespace, pins, progress)
            done.append("aborted: traffic back to the stable revision")
        if action.endswith("undo"):
            revision = self._undo(ctx, kube, namespace, pins, cause, progress)
            done.append(f"undone to revision {revision}")
        return f"rollout {name} " + ", then ".join(done)

    def backup(self, ctx: Context, namespace: str, pins: Mapping[str, str]) -> Body:
        """The Rollout as it is (status dropped), the Services that route to its pods
        and the names of its ReplicaSets: what `kubectl get rollout -o yaml` keeps."""
        kube = kube_of(ctx)
        rollout = self._current(kube, namespace, pins)
        labels = (rollout["spec"].get("template") or {}).get("metadata", {}).get("labels") or {}
        services = [clean(s) for s in kube.list_services(namespace) if routes_to(s, labels)]
        owned = replica_sets_of(kube, namespace, rollout)
        saved = [f"rollout/{pins['rollout']}"] + [
            f"service/{s['metadata']['name']}" for s in services
        ]
        return {
            "taken_at": time.time(),
            "rollout": clean(rollout),
            "services": services,
            "replica_sets": [r["metadata"]["name"] for r in owned],
            "saved": saved,
        }

    def readiness(self, ctx: Context, namespace: str, pins: Mapping[str, str]) -> tuple[int, int]:
        status = read_status(self._current(kube_of(ctx), namespace, pins))
        return status.available, status.desired

    def workload(self, ctx: Context, namespace: str, pins: Mapping[str, str]) -> Body:
        """The Rollout itself: Flux and Argo CD mark it as they mark a Deployment."""
        return self._current(kube_of(ctx), namespace, pins)

    @staticmethod
    def _current(kube: RolloutKube, namespace: str, pins: Mapping[str, str]) -> Body:
        rollout = read_rollout(kube, namespace, pins["rollout"])
        if str(rollout["metadata"].get("uid")) != pins["uid"]:
            raise StrategyError(
                f"rollout {pins['rollout']} was deleted and created again since the plan: "
                "run the rollback again"
            )
        return rollout

    def _abort(
        self,
        ctx: Context,
        kube: RolloutKube,
        namespace: str,
        pins: Mapping[str, str],
        progress: Progress,
    ) -> None:
        name = pins["rollout"]
        rollout = self._current(kube, namespace, pins)
        status = read_status(rollout)
        if status.aborted:
            progress.milestone(f"Rollout {name} was already aborted; following it")
        elif not status.updating:
            raise StrategyError(
                f"rollout {name} has no update in progress any more ({status.describe()}): "
                "nothing to abort; run the rollback again to undo to an earlier revision"
            )
        else:
            kube.merge_patch_rollout_status(namespace, name, ABORT_PATCH)
            failpoints.reached("applied")
            progress.milestone(f"Rollout {name} aborted: traffic going back to the stable revision")
        wait_aborted(kube, namespace, name, ctx.timeout, progress)

    def _undo(
        self,
        ctx: Context,
        kube: RolloutKube,
        namespace: str,
        pins: Mapping[str, str],
        cause: str,
        progress: Progress,
    ) -> str:
        name, revision = pins["rollout"], pins["revision"]
        rollout = self._current(kube, namespace, pins)
        target = next(
            (
                rs
                for rs in replica_sets_of(kube, namespace, rollout)
                if rs["metadata"]["name"] == pins["replica_set"]
            ),
            None,
        )
        if target is None:
            raise StrategyError(
                f"rollout {name}: the ReplicaSet {pins['replica_set']} of revision {revision} "
                "is gone since the plan (revisionHistoryLimit?): run the rollback again"
            )
        if matches_template(rollout, target):
            progress.milestone(f"Rollout {name} already runs revision {revision}'s template")
        else:
            kube.json_patch_rollout(namespace, name, undo_ops(rollout, target, cause))
            failpoints.reached("applied")
            progress.milestone(f"Rollout {name} undone: spec.template → revision {revision}")
        follow(kube, namespace, name, pins["pod_hash"], ctx.timeout, progress)
        return revision
