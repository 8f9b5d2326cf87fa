"""Holding and resuming restore exactly what was there, on the objects' bodies."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bot.gitops.holds import (
    REQUESTED_AT,
    ReconciliationHold,
    hold_ops,
    previous_setting,
    resume_ops,
)
from bot.gitops.owner import Owner, OwnerRef
from tests.unit.gitops.conftest import application, apply_json_patch, kustomization

AT = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)


def _round_trip(ref: OwnerRef, body: dict[str, object]) -> tuple[dict, dict, ReconciliationHold]:
    """(held body, resumed body, the hold as recorded)."""
    owner = Owner(ref, body)
    hold = ReconciliationHold(
        kind=ref.kind, namespace=ref.namespace, name=ref.name, previous=previous_setting(owner)
    )
    held = apply_json_patch(body, hold_ops(owner))
    resumed = apply_json_patch(held, resume_ops(Owner(ref, held), hold, AT))
    return held, resumed, hold


FLUX = OwnerRef("Kustomization", "flux-system", "apps", "label")
ARGO = OwnerRef("Application", "argocd", "web", "annotation")


def test_flux_hold_suspends_and_resume_leaves_suspend_absent_again() -> None:
    body = kustomization()
    held, resumed, hold = _round_trip(FLUX, body)
    assert held["spec"]["suspend"] is True
    assert hold.previous_text() == "spec.suspend absent"
    assert resumed["spec"] == body["spec"]
    assert resumed["metadata"]["annotations"] == {REQUESTED_AT: AT.isoformat()}


def test_flux_explicit_false_is_restored_as_false() -> None:
    body = kustomization(suspend=False)
    _, resumed, hold = _round_trip(FLUX, body)
    assert resumed["spec"]["suspend"] is False
    assert hold.previous_text() == "spec.suspend: false"


def test_resume_keeps_the_annotations_already_there() -> None:
    body = kustomization()
    body["metadata"]["annotations"] = {"team": "web"}  # type: ignore[index]
    _, resumed, _ = _round_trip(FLUX, body)
    assert resumed["metadata"]["annotations"] == {"team": "web", REQUESTED_AT: AT.isoformat()}


def test_argo_hold_removes_automated_and_resume_restores_every_field() -> None:
    policy = {
        "automated": {"prune": True, "selfHeal": True, "allowEmpty": False},
        "syncOptions": ["CreateNamespace=true"],
    }
    body = application("web", policy)
    held, resumed, hold = _round_trip(ARGO, body)
    assert held["spec"]["syncPolicy"] == {"syncOptions": ["CreateNamespace=true"]}
    assert json.loads(hold.previous or "")["automated"] == policy["automated"]
    assert resumed["spec"] == body["spec"]


def test_argo_hold_of_an_app_whose_only_policy_was_automated() -> None:
    body = application("web", {"automated": {"selfHeal": True}})
    held, resumed, _ = _round_trip(ARGO, body)
    assert held["spec"]["syncPolicy"] == {}
    assert resumed["spec"] == body["spec"]


def test_a_retry_of_a_hold_changes_nothing_more() -> None:
    held = apply_json_patch(kustomization(), hold_ops(Owner(FLUX, kustomization())))
    assert hold_ops(Owner(FLUX, held)) == []
    argo = application("web", {})
    assert hold_ops(Owner(ARGO, argo)) == []


def test_the_hold_says_what_it_changed() -> None:
    hold = ReconciliationHold(
        kind="Application",
        namespace="argocd",
        name="web",
        previous=json.dumps({"automated": {"selfHeal": True}}),
    )
    assert hold.held_text() == (
        "Argo CD Application argocd/web: automated sync turned off (was "
        'spec.syncPolicy.automated {"selfHeal": true})'
    )
