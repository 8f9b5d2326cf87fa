from __future__ import annotations

from bot.gitops.owner import KUSTOMIZATION, Owner, OwnerRef, owner_ref_of
from tests.unit.gitops.conftest import FLUX_LABELS, application, deployment, kustomization


def test_flux_kustomize_labels_name_the_kustomization() -> None:
    ref = owner_ref_of(deployment(labels=FLUX_LABELS))
    assert ref is not None
    assert (ref.kind, ref.namespace, ref.name, ref.certain) == (
        "Kustomization",
        "flux-system",
        "apps",
        True,
    )


def test_flux_helm_labels_name_the_helm_release() -> None:
    labels = {"helm.toolkit.fluxcd.io/name": "todo", "helm.toolkit.fluxcd.io/namespace": "apps"}
    ref = owner_ref_of(deployment(labels=labels))
    assert ref is not None and (ref.kind, ref.namespace, ref.name) == (
        "HelmRelease",
        "apps",
        "todo",
    )


def test_argo_tracking_annotation_names_the_application_in_argocds_namespace() -> None:
    body = deployment(**{"argocd.argoproj.io/tracking-id": "web:apps/Deployment:prod/web"})
    ref = owner_ref_of(body, argocd_namespace="gitops")
    assert ref is not None and (ref.kind, ref.namespace, ref.name) == (
        "Application",
        "gitops",
        "web",
    )


def test_argo_tracking_annotation_of_an_app_in_any_namespace() -> None:
    body = deployment(**{"argocd.argoproj.io/tracking-id": "team-a_web:apps/Deployment:prod/web"})
    ref = owner_ref_of(body)
    assert ref is not None and (ref.namespace, ref.name) == ("team-a", "web")


def test_instance_label_alone_is_an_uncertain_argo_owner() -> None:
    ref = owner_ref_of(deployment(labels={"app.kubernetes.io/instance": "web"}))
    assert ref is not None and ref.kind == "Application" and not ref.certain


def test_a_workload_without_marks_has_no_owner() -> None:
    assert owner_ref_of(deployment(labels={"app": "web"})) is None


def _flux(**spec: object) -> Owner:
    ref = OwnerRef("Kustomization", "flux-system", "apps", "label")
    return Owner(ref, kustomization(**spec))


def test_flux_owner_says_a_rollback_alone_is_reverted_within_its_interval() -> None:
    assert _flux().describe() == (
        "managed by Flux Kustomization flux-system/apps (every 1m, from GitRepository "
        "flux-system/apps): a rollback alone is reverted within 1m"
    )
    assert _flux().reconciles


def test_intervals_read_as_people_write_them() -> None:
    assert _flux(interval="1h0m0s").interval == "1h"
    assert _flux(interval="1h30m0s").interval == "1h30m"
    assert _flux(interval="30s").interval == "30s"
    assert _flux(interval="10m").interval == "10m"


def test_a_suspended_kustomization_does_not_reconcile() -> None:
    owner = _flux(suspend=True)
    assert not owner.reconciles
    assert "suspended already" in owner.describe()


def test_a_missing_owner_is_said_plainly() -> None:
    owner = Owner(OwnerRef("Kustomization", "flux-system", "apps", "label x"), None)
    assert not owner.exists and not owner.reconciles
    assert "which does not exist" in owner.describe()
    assert "Flux Kustomization flux-system/apps" in owner.describe()


def _argo(policy: dict[str, object] | None) -> Owner:
    return Owner(OwnerRef("Application", "argocd", "web", "annotation"), application("web", policy))


def test_argo_self_heal_reverts_within_seconds() -> None:
    owner = _argo({"automated": {"selfHeal": True, "prune": True}})
    assert owner.reconciles
    assert owner.describe() == (
        "managed by Argo CD Application argocd/web (automated sync, self-heal, prune): "
        "a rollback alone is reverted within seconds"
    )


def test_argo_automated_without_self_heal_waits_for_the_next_git_change() -> None:
    owner = _argo({"automated": {}})
    assert owner.reconciles
    assert "until the next change in Git" in owner.describe()


def test_argo_manual_sync_or_automated_disabled_does_not_reconcile() -> None:
    assert not _argo(None).reconciles
    assert not _argo({"syncOptions": ["CreateNamespace=true"]}).reconciles
    assert not _argo({"automated": {"enabled": False, "selfHeal": True}}).reconciles
    assert "manual sync" in _argo(None).describe()


def test_kinds_point_at_the_served_api_versions() -> None:
    assert KUSTOMIZATION.api == "apis/kustomize.toolkit.fluxcd.io/v1"
