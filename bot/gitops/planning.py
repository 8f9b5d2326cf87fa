"""The GitOps step of a rollback's plan: who owns each workload it changes (its
Deployments, or the strategy's own workload: an Argo Rollout), what that owner
would do to the rollback, and — under the environment's `gitops` policy — the
holds that become part of what a person approves, or the reason it is refused.

Checked at assessment, before anyone approves: rollbot must be able to read
the owner and to patch it (a server-side dry run of the very patch, which the
API authorizes like the real one), so a missing right is a refusal now rather
than a failure after the approval.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from bot.bodies import Body
from bot.config import RollbotConfig
from bot.errors import Forbidden, PermanentError
from bot.gitops.holds import ReconciliationHold, hold_ops, planned_hold
from bot.gitops.owner import Owner, OwnerSource, owner_ref_of, read_owner


class GitOpsKube(OwnerSource, Protocol):
    def json_patch_custom(
        self, api: str, namespace: str, plural: str, name: str, ops: list[Body], dry_run: bool
    ) -> Body: ...


class GitOpsRefused(PermanentError):
    code = "gitops_refused"


@dataclass(frozen=True)
class GitOpsPlan:
    holds: tuple[ReconciliationHold, ...] = ()
    #: Lines for the confirmation: each owner in words, and the hold step.
    facts: tuple[str, ...] = ()


def owners_of(kube: OwnerSource, config: RollbotConfig, workloads: Iterable[Body]) -> list[Owner]:
    """Each distinct owner the workloads name; a bare Helm-style instance label that
    names no Application is left out (see `bot.gitops.owner`)."""
    owners: dict[str, Owner] = {}
    for workload in workloads:
        ref = owner_ref_of(workload, config.argocd_namespace)
        if ref is None or ref.key in owners:
            continue
        try:
            owner = read_owner(kube, ref)
        except Forbidden as err:
            raise GitOpsRefused(
                f"rollbot may not read {ref} ({ref.evidence}), so it cannot tell whether "
                f"it would revert the rollback: {err} (the chart's rbac.gitops grants it)"
            ) from err
        if owner.exists or ref.certain:
            owners[ref.key] = owner
    return list(owners.values())


def _where(config: RollbotConfig, namespace: str) -> str:
    environment = config.environment_of(namespace)
    return f" in {environment}" if environment else ""


def _check_may_hold(kube: GitOpsKube, owner: Owner) -> None:
    spec = owner.ref.spec
    try:
        kube.json_patch_custom(
            spec.api, owner.ref.namespace, spec.plural, owner.ref.name, hold_ops(owner), True
        )
    except Forbidden as err:
        raise GitOpsRefused(
            f"{owner.describe()}; rollbot may not change it to hold its reconciliation: "
            f"{err} (the chart's rbac.gitops grants it)"
        ) from err


def plan_gitops(
    kube: GitOpsKube, config: RollbotConfig, namespace: str, workloads: Iterable[Body]
) -> GitOpsPlan:
    """The holds a rollback of `workloads` needs, and what the confirmation says;
    GitOpsRefused when policy or rights rule the rollback out."""
    policy = config.policy_for(namespace).gitops
    where = _where(config, namespace)
    holds: list[ReconciliationHold] = []
    facts: list[str] = []
    for owner in owners_of(kube, config, workloads):
        facts.append(f"GitOps: {owner.describe()}")
        if not owner.exists:
            if policy == "require":
                raise GitOpsRefused(
                    f"{owner.describe()}; policy{where} requires reconciliation to be held "
                    "(gitops: require) and there is nothing to hold: fix the labels or "
                    "restore the owner first"
                )
            continue
        if not owner.reconciles:
            continue
        if policy == "forbid":
            raise GitOpsRefused(
                f"{owner.describe()}; policy{where} forbids rollbot to hold its reconciliation "
                "(gitops: forbid): roll back in Git instead"
            )
        _check_may_hold(kube, owner)
        hold = planned_hold(owner)
        holds.append(hold)
        if owner.ref.kind == "HelmRelease":
            facts.append(
                "HelmRelease: helm-controller would upgrade the release back to the chart and "
                "values in Git; suspended, it leaves a helm rollback alone (its own "
                "remediation acts only on a failed install or upgrade, not on a bad one)"
            )
        how = "automated sync turned off" if owner.ref.kind == "Application" else "suspended"
        facts.append(
            f"Plan: first hold reconciliation — {owner.ref} {how}, the setting before "
            "it recorded; then roll back. Only a person resumes it (Resume, or "
            "/rollback resume ID), after seeing what Git holds."
        )
    return GitOpsPlan(tuple(holds), tuple(facts))
