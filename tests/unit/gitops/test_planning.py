"""The hold step of a plan, under each `gitops` policy, and its refusals."""

from __future__ import annotations

import pytest

from bot.config import RollbotConfig
from bot.gitops.owner import APPLICATION, HELM_RELEASE, KUSTOMIZATION
from bot.gitops.planning import GitOpsPlan, GitOpsRefused, plan_gitops
from bot.strategies import Context, Request, get, workloads_now
from tests.unit.argo_bodies import HISTORY
from tests.unit.gitops.conftest import (
    FLUX_LABELS,
    GitOpsCluster,
    application,
    deployment,
    kustomization,
)
from tests.unit.test_argo_rollouts import canary_in_progress


def _config(policy: str = "hold") -> RollbotConfig:
    return RollbotConfig.model_validate(
        {"environments": {"prod": {"namespaces": ["prod"], "gitops": policy}}}
    )


def test_an_active_kustomization_is_held_and_the_plan_says_so(
    gitops_cluster: GitOpsCluster,
) -> None:
    gitops_cluster.put(KUSTOMIZATION.api, KUSTOMIZATION.plural, kustomization())
    plan = plan_gitops(gitops_cluster, _config(), "prod", [deployment(labels=FLUX_LABELS)])
    assert [(h.kind, h.namespace, h.name, h.previous) for h in plan.holds] == [
        ("Kustomization", "flux-system", "apps", None)
    ]
    assert plan.facts[0] == (
        "GitOps: managed by Flux Kustomization flux-system/apps (every 1m, from GitRepository "
        "flux-system/apps): a rollback alone is reverted within 1m"
    )
    assert "first hold reconciliation" in plan.facts[1]
    # The right to patch was checked by a dry run, which changed nothing.
    assert [dry for _, _, dry in gitops_cluster.patches] == [True]
    assert "suspend" not in gitops_cluster.objects[next(iter(gitops_cluster.objects))]["spec"]


def test_components_of_one_kustomization_hold_it_once(gitops_cluster: GitOpsCluster) -> None:
    gitops_cluster.put(KUSTOMIZATION.api, KUSTOMIZATION.plural, kustomization())
    workloads = [deployment(n, labels=FLUX_LABELS) for n in ("backend", "worker")]
    assert len(plan_gitops(gitops_cluster, _config(), "prod", workloads).holds) == 1


def test_policy_forbid_refuses_with_the_reason(gitops_cluster: GitOpsCluster) -> None:
    gitops_cluster.put(KUSTOMIZATION.api, KUSTOMIZATION.plural, kustomization())
    with pytest.raises(GitOpsRefused, match=r"policy in prod forbids .*gitops: forbid"):
        plan_gitops(gitops_cluster, _config("forbid"), "prod", [deployment(labels=FLUX_LABELS)])


def test_a_missing_owner_is_said_under_hold_and_refused_under_require(
    gitops_cluster: GitOpsCluster,
) -> None:
    workload = deployment(labels=FLUX_LABELS)
    plan = plan_gitops(gitops_cluster, _config("hold"), "prod", [workload])
    assert plan.holds == ()
    assert "which does not exist" in plan.facts[0]
    with pytest.raises(GitOpsRefused, match="requires reconciliation to be held"):
        plan_gitops(gitops_cluster, _config("require"), "prod", [workload])


def test_without_the_right_to_patch_the_owner_it_is_refused_before_approval(
    gitops_cluster: GitOpsCluster,
) -> None:
    gitops_cluster.put(KUSTOMIZATION.api, KUSTOMIZATION.plural, kustomization())
    gitops_cluster.refused.add(("patch", "kustomizations"))
    with pytest.raises(GitOpsRefused, match="may not change it.*rbac.gitops"):
        plan_gitops(gitops_cluster, _config(), "prod", [deployment(labels=FLUX_LABELS)])


def test_without_the_right_to_read_the_owner_it_is_refused(
    gitops_cluster: GitOpsCluster,
) -> None:
    gitops_cluster.refused.add(("get", "kustomizations"))
    with pytest.raises(GitOpsRefused, match="may not read Flux Kustomization"):
        plan_gitops(gitops_cluster, _config(), "prod", [deployment(labels=FLUX_LABELS)])


def test_a_suspended_or_manual_owner_needs_no_hold(gitops_cluster: GitOpsCluster) -> None:
    gitops_cluster.put(KUSTOMIZATION.api, KUSTOMIZATION.plural, kustomization(suspend=True))
    plan = plan_gitops(gitops_cluster, _config("forbid"), "prod", [deployment(labels=FLUX_LABELS)])
    assert plan.holds == () and "suspended already" in plan.facts[0]


def test_argo_self_heal_is_held(gitops_cluster: GitOpsCluster) -> None:
    gitops_cluster.put(
        APPLICATION.api, APPLICATION.plural, application("web", {"automated": {"selfHeal": True}})
    )
    tracked = deployment(**{"argocd.argoproj.io/tracking-id": "web:apps/Deployment:prod/web"})
    plan = plan_gitops(gitops_cluster, _config(), "prod", [tracked])
    assert [h.kind for h in plan.holds] == ["Application"]


def test_a_helm_instance_label_naming_no_application_is_not_an_owner(
    gitops_cluster: GitOpsCluster,
) -> None:
    helm_made = deployment(labels={"app.kubernetes.io/instance": "todo-app"})
    assert plan_gitops(gitops_cluster, _config("require"), "prod", [helm_made]).facts == ()


def test_the_policy_is_validated() -> None:
    with pytest.raises(ValueError, match="gitops"):
        _config("sometimes")


def test_a_helm_release_is_held_and_the_confirmation_explains_why(
    gitops_cluster: GitOpsCluster,
) -> None:
    release = kustomization("todo")
    release["kind"], release["metadata"]["namespace"] = "HelmRelease", "apps"
    release["spec"] = {
        "interval": "5m",
        "chart": {"spec": {"chart": "todo", "sourceRef": {"kind": "HelmRepository", "name": "r"}}},
    }
    gitops_cluster.put(HELM_RELEASE.api, HELM_RELEASE.plural, release)
    labels = {"helm.toolkit.fluxcd.io/name": "todo", "helm.toolkit.fluxcd.io/namespace": "apps"}
    plan = plan_gitops(gitops_cluster, _config(), "prod", [deployment(labels=labels)])
    assert [h.kind for h in plan.holds] == ["HelmRelease"]
    assert plan.facts[0] == (
        "GitOps: managed by Flux HelmRelease apps/todo (every 5m, from HelmRepository apps/r): "
        "a rollback alone is reverted within 5m"
    )
    assert "leaves a helm rollback alone" in plan.facts[1]


def _plan_rollout(cluster: GitOpsCluster, policy: str) -> GitOpsPlan:
    """The argo-rollouts strategy's plan for the eli-maor canary in progress, then its
    GitOps step over what that plan changes, as the assessment makes them."""
    config = RollbotConfig.model_validate(
        {
            "services": {"eli-maor": {"strategy": "argo-rollouts", "rollout": "eli-maor-backend"}},
            "environments": {"prod": {"namespaces": ["production"], "gitops": policy}},
        }
    )
    ctx = Context(kube=cluster, config=config, timeout=5)  # type: ignore[arg-type]
    strategy = get("argo-rollouts")
    planned = strategy.plan(ctx, Request("production", "eli-maor", "argo-rollouts"))
    changed = workloads_now(ctx, strategy, "production", planned.workloads, planned.pins)
    return plan_gitops(cluster, config, "production", changed)


def test_a_rollout_flux_applies_is_held_as_a_deployment_is(gitops_cluster: GitOpsCluster) -> None:
    gitops_cluster.put(KUSTOMIZATION.api, KUSTOMIZATION.plural, kustomization())
    canary = canary_in_progress()
    canary["metadata"]["labels"] = FLUX_LABELS
    gitops_cluster.rollouts[("production", "eli-maor-backend")] = canary
    gitops_cluster.replica_sets = HISTORY

    plan = _plan_rollout(gitops_cluster, "hold")
    assert [(h.kind, h.namespace, h.name) for h in plan.holds] == [
        ("Kustomization", "flux-system", "apps")
    ]
    assert plan.facts[0].startswith("GitOps: managed by Flux Kustomization flux-system/apps")
    assert "first hold reconciliation" in plan.facts[1]
    assert [dry for _, _, dry in gitops_cluster.patches] == [True]
    with pytest.raises(GitOpsRefused, match=r"policy in prod forbids .*gitops: forbid"):
        _plan_rollout(gitops_cluster, "forbid")


def test_a_rollout_without_gitops_marks_plans_no_hold(gitops_cluster: GitOpsCluster) -> None:
    gitops_cluster.rollouts[("production", "eli-maor-backend")] = canary_in_progress()
    gitops_cluster.replica_sets = HISTORY
    assert _plan_rollout(gitops_cluster, "require") == GitOpsPlan()
