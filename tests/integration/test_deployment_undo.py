"""The rollback engine against a real kube-apiserver and kube-controller-manager."""

from __future__ import annotations

import time

import pytest

from bot.config import RollbotConfig
from bot.engine import apply_rollback, follow_rollout, plan_rollback, read_history
from bot.errors import (
    DeploymentNotFound,
    DeploymentPaused,
    Forbidden,
    NamespaceNotAllowed,
    NoRolloutHistory,
    PermanentError,
    RevisionNotFound,
    RolloutFailed,
)
from bot.kube import Kube
from bot.rollout import RolloutPhase
from tests.integration.strategy_helpers import rollback

pytestmark = pytest.mark.cluster
ANY = RollbotConfig()


def spec_and_annotations(deployment: dict) -> tuple:
    """What a rollback would change (the controller's status writes aside)."""
    meta = deployment["metadata"]
    return meta["generation"], meta["annotations"], deployment["spec"]


def test_undo_goes_to_the_previous_revision_and_the_controller_renumbers_it(kube, workloads):
    workloads.create("web", ["app:v1", "app:v2", "app:v3"])
    rollback(kube, ANY, workloads.namespace, "web", actor="alice", reason="500s on /chat")
    workloads.wait_complete("web")
    assert workloads.images_of("web") == ["app:v2"]
    revisions = workloads.revisions("web")
    assert sorted(revisions) == [1, 3, 4]
    notes = revisions[4]["metadata"]["annotations"]
    assert notes["deployment.kubernetes.io/revision-history"] == "2"
    _, history = read_history(kube, workloads.namespace, "web")
    current = [r for r in history if r.current]
    assert [r.number for r in current] == [4]
    assert current[0].change_cause == (
        "rollbot: rolled back by alice from revision 3 to 2: 500s on /chat"
    )
    assert current[0].earlier_numbers == (2,)


def test_undo_to_a_named_revision_uses_todays_numbers(kube, workloads):
    workloads.create("web", ["app:v1", "app:v2", "app:v3"])
    rollback(kube, ANY, workloads.namespace, "web", to_revision=1)
    workloads.wait_complete("web")
    assert workloads.images_of("web") == ["app:v1"]
    assert sorted(workloads.revisions("web")) == [2, 3, 4]
    # "previous" now means revision 3 (v3): the numbers, not the order of events.
    rollback(kube, ANY, workloads.namespace, "web")
    workloads.wait_complete("web")
    assert workloads.images_of("web") == ["app:v3"]
    assert sorted(workloads.revisions("web")) == [2, 4, 5]


def test_the_rollout_is_followed_through_the_watch_until_complete(kube, workloads):
    workloads.create("web", ["app:v1", "app:v2"], replicas=3)
    seen = []
    rollback(kube, ANY, workloads.namespace, "web", on_state=seen.append)
    assert seen[-1].phase is RolloutPhase.COMPLETE
    assert seen[-1].available == 3
    assert len(seen) >= 2, "progress was reported along the way, not only at the end"


def test_a_broken_release_misses_its_deadline_and_the_rollback_restores_it(kube, workloads):
    workloads.create(
        "web", ["app:v1", "app:v2", "app:v3-broken"], replicas=3, progress_deadline=4, wait=False
    )
    workloads.wait_deadline_exceeded("web")
    pods_before = workloads.core.list_namespaced_pod(workloads.namespace).items
    assert any(not cs.ready for p in pods_before for cs in (p.status.container_statuses or []))
    states = []
    rollback(kube, ANY, workloads.namespace, "web", on_state=states.append, timeout=60)
    assert states[-1].phase is RolloutPhase.COMPLETE
    dep = workloads.wait_complete("web")
    assert dep["status"]["availableReplicas"] == 3
    assert workloads.images_of("web") == ["app:v2"]


def test_rolling_back_to_a_broken_revision_fails_at_its_progress_deadline(kube, workloads):
    """Going back to an existing ReplicaSet right after a successful rollout, the
    controller may never set ProgressDeadlineExceeded (its condition still says
    the last rollout succeeded); rollbot keeps the deadline itself."""
    workloads.create("web", ["app:v1-broken", "app:v2"], progress_deadline=4)
    started = time.monotonic()
    with pytest.raises(RolloutFailed, match="progress deadline"):
        rollback(kube, ANY, workloads.namespace, "web", timeout=60)
    assert time.monotonic() - started < 30, "failed at the deadline, not at the time-out"


def test_replicas_set_after_the_deploy_are_left_alone(kube, workloads):
    workloads.create("web", ["app:v1", "app:v2"], replicas=2)
    workloads.scale("web", 4)
    workloads.wait_complete("web")
    rollback(kube, ANY, workloads.namespace, "web")
    dep = workloads.wait_complete("web")
    assert dep["spec"]["replicas"] == 4


def test_a_paused_deployment_is_refused_and_left_untouched(kube, workloads):
    workloads.create("web", ["app:v1", "app:v2"])
    workloads.patch("web", {"spec": {"paused": True}})
    before = spec_and_annotations(workloads.get("web"))
    with pytest.raises(DeploymentPaused, match="resume it first"):
        rollback(kube, ANY, workloads.namespace, "web")
    assert spec_and_annotations(workloads.get("web")) == before


def test_rolling_back_to_the_current_template_changes_nothing(kube, workloads):
    workloads.create("web", ["app:v1", "app:v2", "app:v1"])  # revision 3 repeats revision 1...
    # ...so the controller reused revision 1's ReplicaSet: history is 2, 3.
    assert sorted(workloads.revisions("web")) == [2, 3]
    before = spec_and_annotations(workloads.get("web"))
    with pytest.raises(PermanentError, match="already matches revision 3"):
        rollback(kube, ANY, workloads.namespace, "web", to_revision=3)
    assert spec_and_annotations(workloads.get("web")) == before


def test_a_deployment_with_one_revision_has_no_history_to_go_back_to(kube, workloads):
    workloads.create("web", ["app:v1"])
    with pytest.raises(NoRolloutHistory, match="no rollout history found"):
        rollback(kube, ANY, workloads.namespace, "web")


def test_an_unknown_revision_names_the_revisions_there_are(kube, workloads):
    workloads.create("web", ["app:v1", "app:v2"])
    with pytest.raises(RevisionNotFound, match=r"revision 9 in history \(revisions: 1, 2\)"):
        rollback(kube, ANY, workloads.namespace, "web", to_revision=9)


def test_with_revision_history_limit_zero_nothing_can_be_rolled_back(kube, workloads):
    workloads.create("web", ["app:v1", "app:v2", "app:v3"], history_limit=0)
    workloads.wait_for(
        "web", lambda _: len(workloads.replica_sets("web")) == 1, "down to one ReplicaSet"
    )
    with pytest.raises(NoRolloutHistory):
        rollback(kube, ANY, workloads.namespace, "web")


def test_an_unknown_deployment_and_a_forbidden_namespace_are_clear_errors(kube, workloads):
    with pytest.raises(DeploymentNotFound, match="'ghost' not found in namespace"):
        rollback(kube, ANY, workloads.namespace, "ghost")
    with pytest.raises(NamespaceNotAllowed, match="allowed: prod"):
        rollback(kube, RollbotConfig(namespaces=["prod"]), workloads.namespace, "web")


def _grant(kube: Kube, namespace: str, user: str, verbs: list[str]) -> None:
    rbac = __import__("kubernetes").client.RbacAuthorizationV1Api(kube.api_client)
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": f"{user}-role"},
            "rules": [
                {"apiGroups": ["apps"], "resources": ["deployments", "replicasets"], "verbs": verbs}
            ],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": f"{user}-binding"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": f"{user}-role",
            },
            "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}],
        },
    )


def test_a_token_without_patch_rights_gets_forbidden_and_changes_nothing(
    kube, workloads, control_plane
):
    workloads.create("web", ["app:v1", "app:v2"])
    _grant(kube, workloads.namespace, "limited", ["get", "list", "watch"])
    limited = Kube.from_kubeconfig(str(control_plane.kubeconfig_for("limited")))
    plan = plan_rollback(limited, ANY, workloads.namespace, "web")  # reading is allowed
    assert plan.target.number == 1
    with pytest.raises(Forbidden, match="cannot patch resource"):
        apply_rollback(limited, ANY, plan, change_cause="x")
    assert workloads.images_of("web") == ["app:v2"]
    stranger = Kube.from_kubeconfig(str(control_plane.kubeconfig_for("bob")))
    with pytest.raises(Forbidden, match="cannot get resource"):
        plan_rollback(stranger, ANY, workloads.namespace, "web")


def test_a_concurrent_edit_between_read_and_patch_is_replanned_not_overwritten(kube, workloads):
    workloads.create("web", ["app:v1", "app:v2"])
    plan = plan_rollback(kube, ANY, workloads.namespace, "web")
    workloads.scale("web", 3)  # someone else writes after rollbot read
    applied = apply_rollback(kube, ANY, plan, change_cause="rollbot test", sleep=lambda _: None)
    assert applied.attempts == 2
    for _ in follow_rollout(kube, applied, 60):
        pass
    dep = workloads.wait_complete("web")
    assert dep["spec"]["replicas"] == 3
    assert workloads.images_of("web") == ["app:v1"]


def test_a_conflicting_new_revision_during_planning_keeps_the_approved_target(kube, workloads):
    """The person approved "go to v1"; a deploy of v3 lands before the patch. rollbot
    still goes to v1 (the approved ReplicaSet), not to whatever is "previous" now."""
    workloads.create("web", ["app:v1", "app:v2"])
    plan = plan_rollback(kube, ANY, workloads.namespace, "web")
    workloads.roll("web", "app:v3", cause="a deploy racing the rollback")
    applied = apply_rollback(kube, ANY, plan, sleep=lambda _: None)
    assert applied.plan.target.replica_set == plan.target.replica_set
    workloads.wait_complete("web")
    assert workloads.images_of("web") == ["app:v1"]
