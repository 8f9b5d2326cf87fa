"""The Argo Rollouts strategy against the real controller: an update in progress
aborted back to stable, an aborted canary made permanent, undo to a revision
with the same result as the real plugin, a fast rollback that skips the
analysis, a blue-green Rollout rolled back, and the clear refusals (forbidden,
no such Rollout)."""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from bot.autorollback import AutoRollbackWatcher
from bot.config import RollbotConfig, ServiceEntry
from bot.errors import Forbidden, RolloutFailed
from bot.kube import Kube
from bot.rollout import RolloutPhase
from bot.strategies import Context, Plan, Request, StrategyError, change_cause
from bot.strategies import get as get_strategy
from tests.integration.rollouts import Rollouts, canary_steps
from tests.integration.strategy_helpers import Recorder

pytestmark = pytest.mark.cluster

V1, V2, V3 = "registry.local/web:v1", "registry.local/web:v2", "registry.local/web:v3"
CATALOG = RollbotConfig(
    services={
        "web": ServiceEntry(strategy="argo-rollouts"),
        "shop": ServiceEntry(strategy="argo-rollouts", rollout="web", abort_permanently=True),
    }
)


def context(kube: Kube, timeout: float = 90) -> Context:
    return Context(kube=kube, config=CATALOG, timeout=timeout)


def plan(kube: Kube, namespace: str, service: str = "web", revision: int = 0) -> Plan:
    request = Request(namespace, service, "argo-rollouts", revision)
    return get_strategy("argo-rollouts").plan(context(kube), request)


def apply(kube: Kube, planned: Plan, progress: Recorder | None = None) -> str:
    cause = change_cause("argo-rollouts", "U1", "bad release", target_revision=1)
    return get_strategy("argo-rollouts").apply(
        context(kube), planned.namespace, planned.pins, cause, progress or Recorder()
    )


def ready_by_image(rollouts: Rollouts, name: str) -> dict[str, int]:
    ready: dict[str, int] = {}
    for rs in rollouts.replica_sets(name):
        image = rs["spec"]["template"]["spec"]["containers"][0]["image"]
        ready[image] = ready.get(image, 0) + int(rs.get("status", {}).get("readyReplicas", 0))
    return ready


def selected(rollouts: Rollouts, service: str) -> str:
    selector = rollouts.core.read_namespaced_service(service, rollouts.namespace).spec.selector
    return str(selector.get("rollouts-pod-template-hash"))


def test_a_canary_paused_mid_way_is_aborted_back_to_stable_and_the_plan_says_where_it_stood(
    kube, rollouts
):
    rollouts.create_canary("web", V1, steps=canary_steps(None, weight=50, pause=""), analysis=False)
    rollouts.set_image("web", V2)
    rollouts.wait_phase("web", "Paused")
    rollouts.wait("web", lambda r: ready_by_image(rollouts, "web") == {V1: 1, V2: 1}, "half")

    planned = plan(kube, rollouts.namespace)
    assert planned.pins["action"] == "abort"
    assert (planned.current, planned.target) == ("revision 2 (Paused)", "stable revision 1")
    assert planned.facts[0] == (
        "Rollout web: Paused (CanaryPauseStep): step 1/2, canary weight 50%, 2/2 ready"
    )
    progress = Recorder()
    done = apply(kube, planned, progress)

    assert done == "rollout web aborted: traffic back to the stable revision"
    assert ready_by_image(rollouts, "web") == {V1: 2, V2: 0}
    body = rollouts.get("web")
    assert body["status"]["abort"] is True and rollouts.images_of("web") == [V2]
    assert progress.completed("web")
    assert "Rollout web aborted: traffic going back to the stable revision" in progress.milestones
    # Applied again (a worker that died after the patch): nothing more is written.
    again = Recorder()
    apply(kube, planned, again)
    assert again.milestones == ["Rollout web was already aborted; following it"]
    assert rollouts.get("web")["metadata"]["generation"] == body["metadata"]["generation"]


def test_a_canary_aborted_by_its_failed_analysis_is_undone_to_stable_for_good(kube, rollouts):
    rollouts.create_canary("web", V1)
    rollouts.metric.set(rollouts.metric_key("web"), 0.5)
    rollouts.set_image("web", V2)
    rollouts.wait_phase("web", "Degraded")

    planned = plan(kube, rollouts.namespace)
    assert planned.pins["action"] == "undo" and planned.pins["revision"] == "1"
    facts = "\n".join(planned.facts)
    assert "Degraded (RolloutAborted:" in facts
    assert "success-rate Failed, measured 0.5" in facts
    assert "Fast rollback: revision 1 is the stable one" in facts
    watching = RollbotConfig(
        services={
            "web": ServiceEntry(
                namespace=rollouts.namespace,
                strategy="argo-rollouts",
                auto_rollback=True,
                channel="C1",
            )
        }  # fmt: skip
    )
    (failed,) = AutoRollbackWatcher(kube, watching).find_failed_releases()
    assert (failed.deployment, failed.strategy, failed.revision) == ("web", "argo-rollouts", 2)
    apply(kube, planned)

    healthy = rollouts.wait_healthy("web")
    assert rollouts.images_of("web") == [V1]
    assert healthy["status"].get("abort") is not True
    assert len(rollouts.analysis_runs("web")) == 1  # going back ran no analysis
    assert AutoRollbackWatcher(kube, watching).find_failed_releases() == []


def test_a_permanent_abort_puts_the_stable_template_back_in_the_spec(kube, rollouts):
    rollouts.create_canary("web", V1, steps=canary_steps(None, weight=50, pause=""), analysis=False)
    rollouts.set_image("web", V2)
    rollouts.wait_phase("web", "Paused")

    planned = plan(kube, rollouts.namespace, service="shop")
    assert planned.pins["action"] == "abort+undo"
    done = apply(kube, planned)

    assert done == (
        "rollout web aborted: traffic back to the stable revision, then undone to revision 1"
    )
    rollouts.wait_healthy("web")
    assert rollouts.images_of("web") == [V1]
    assert ready_by_image(rollouts, "web") == {V1: 2, V2: 0}


def _three_revisions(rollouts: Rollouts) -> None:
    rollouts.create_canary("web", V1, steps=[], analysis=False)
    for image in (V2, V3):
        rollouts.set_image("web", image)
        rollouts.wait_healthy("web")


@pytest.mark.parametrize("revision", [0, 1])
def test_undo_leaves_the_rollout_as_the_plugin_leaves_its_twin(
    kube, rollouts, argo_rollouts, other_namespace, revision
):
    twin = Rollouts(kube.api_client, other_namespace, argo_rollouts)
    for place in (rollouts, twin):
        _three_revisions(place)

    apply(kube, plan(kube, rollouts.namespace, revision=revision))
    twin.plugin("undo", "web", *([f"--to-revision={revision}"] if revision else []))

    ours, theirs = rollouts.wait_healthy("web"), twin.wait_healthy("web")
    assert ours["spec"] == theirs["spec"]
    assert "rolled back by U1" in ours["metadata"]["annotations"]["kubernetes.io/change-cause"]
    assert sorted(rollouts.revisions("web")) == sorted(twin.revisions("web"))
    assert rollouts.images_of("web") == [V2 if revision == 0 else V1]


def test_undo_to_the_running_template_is_nothing_to_do_as_the_plugin_skips_it(kube, rollouts):
    _three_revisions(rollouts)
    assert plan(kube, rollouts.namespace, revision=3).nothing_to_do == (
        "skipped rollback (current template already matches revision 3)"
    )


def test_a_rollback_within_the_window_skips_steps_and_analysis(kube, rollouts):
    steps = canary_steps("web-analysis", weight=50, pause="")
    rollouts.create_canary("web", V1, steps=steps, rollback_window=1)
    rollouts.metric.set(rollouts.metric_key("web"), 0.99)
    for image in (V2, V3):
        # The window compares creation times, which have whole seconds: ReplicaSets made
        # in one second are not "between" each other, for the controller nor for rollbot.
        time.sleep(1.1)
        rollouts.set_image("web", image)
        rollouts.wait_phase("web", "Paused")
        rollouts.plugin("promote", "web")
        rollouts.wait_healthy("web")
    runs = len(rollouts.analysis_runs("web"))

    outside = plan(kube, rollouts.namespace, revision=1)
    assert any(f.startswith("Full rollout: revision 1 is outside") for f in outside.facts), (
        outside.facts
    )
    planned = plan(kube, rollouts.namespace)
    assert "Fast rollback: revision 2 is within rollbackWindow.revisions 1" in "\n".join(
        planned.facts
    )
    apply(kube, planned)

    done = rollouts.wait_healthy("web")
    assert rollouts.images_of("web") == [V2]
    assert done["status"]["currentStepIndex"] == len(steps)  # never paused at step 2
    assert len(rollouts.analysis_runs("web")) == runs


def test_a_blue_green_rollout_is_rolled_back_by_its_active_service(kube, rollouts):
    first = rollouts.create_bluegreen("web", V1, rollback_window=1)
    time.sleep(1.1)  # revision 1 older than 2 by the second, as the controller compares
    rollouts.set_image("web", V2)
    rollouts.wait_phase("web", "Paused")
    rollouts.plugin("promote", "web")
    promoted = rollouts.wait_healthy("web")
    assert selected(rollouts, "web-active") == promoted["status"]["stableRS"]

    planned = plan(kube, rollouts.namespace)
    assert planned.pins["action"] == "undo" and planned.target == "revision 1"
    assert any(f.startswith("Fast rollback: revision 1 is within") for f in planned.facts)
    apply(kube, planned)

    rollouts.wait_healthy("web")
    assert selected(rollouts, "web-active") == first["status"]["stableRS"]
    assert rollouts.images_of("web") == [V1]


def test_a_blue_green_update_waiting_for_promotion_is_aborted(kube, rollouts):
    first = rollouts.create_bluegreen("web", V1)
    rollouts.set_image("web", V2)
    rollouts.wait_phase("web", "Paused")

    planned = plan(kube, rollouts.namespace)
    assert planned.pins["action"] == "abort"
    progress = Recorder()
    apply(kube, planned, progress)

    assert selected(rollouts, "web-active") == first["status"]["stableRS"]
    assert rollouts.get("web")["status"]["abort"] is True
    assert any(s.phase is RolloutPhase.COMPLETE for _, s in progress.states)


def test_a_missing_rollout_is_a_clear_refusal(kube, rollouts):
    with pytest.raises(StrategyError, match="rollout 'web' was not found in namespace"):
        plan(kube, rollouts.namespace)


def test_a_token_that_may_read_but_not_abort_is_forbidden_and_changes_nothing(
    kube, rollouts, control_plane
):
    rollouts.create_canary("web", V1, steps=canary_steps(None, weight=50, pause=""), analysis=False)
    rollouts.set_image("web", V2)
    rollouts.wait_phase("web", "Paused")
    rbac = client.RbacAuthorizationV1Api(kube.api_client)
    namespace = rollouts.namespace
    rules = [
        {
            "apiGroups": ["argoproj.io"],
            "resources": ["rollouts", "analysisruns"],
            "verbs": ["get", "list"],
        },
        {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["list"]},
    ]
    rbac.create_namespaced_role(namespace, {"metadata": {"name": "reader"}, "rules": rules})
    subject = {"kind": "User", "name": "limited", "apiGroup": "rbac.authorization.k8s.io"}
    role = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"}
    rbac.create_namespaced_role_binding(
        namespace, {"metadata": {"name": "reader"}, "roleRef": role, "subjects": [subject]}
    )
    limited = Kube.from_kubeconfig(str(control_plane.kubeconfig_for("limited")))

    planned = plan(limited, namespace)  # reading is allowed
    with pytest.raises(Forbidden, match='cannot patch resource "rollouts/status"'):
        apply(limited, planned)
    assert rollouts.get("web")["status"].get("abort") is not True
    stranger = Kube.from_kubeconfig(str(control_plane.kubeconfig_for("bob")))
    with pytest.raises(Forbidden, match='cannot get resource "rollouts"'):
        plan(stranger, namespace)


def test_an_undo_that_stops_at_a_pause_with_no_duration_fails_saying_how_to_go_on(kube, rollouts):
    rollouts.create_canary("web", V1, steps=canary_steps(None, weight=50, pause=""), analysis=False)
    rollouts.set_image("web", V2)
    rollouts.wait_phase("web", "Paused")
    rollouts.plugin("promote", "web")
    rollouts.wait_healthy("web")

    planned = plan(kube, rollouts.namespace)  # revision 1: no rollbackWindow, so every step
    # (or, made in the same second as revision 2, not even older: every step too)
    assert any(fact.startswith("Full rollout: ") for fact in planned.facts)
    with pytest.raises(RolloutFailed) as failed:
        apply(kube, planned)

    assert str(failed.value) == (
        "rollout web stopped: it is paused at step 1/2, a pause with no duration. Promote it "
        f"(kubectl argo rollouts promote web -n {rollouts.namespace}) or abort it"
    )
