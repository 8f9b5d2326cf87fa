"""The Argo Rollouts test bed is the real thing: the controller built from its Go
module steps canaries, runs analyses against the metric the test sets, aborts
and promotes, and the plugin built beside it acts on what the controller made.

These tests check the bed, not rollbot: they use only the API and the plugin.
"""

from __future__ import annotations

from tests.integration.rollouts import Rollouts, canary_steps

V1, V2 = "registry.local/web:v1", "registry.local/web:v2"


def _stable_images(rollouts: Rollouts, name: str) -> list[str]:
    status = rollouts.get(name)["status"]
    stable = [
        rs
        for rs in rollouts.replica_sets(name)
        if rs["metadata"]["labels"]["rollouts-pod-template-hash"] == status["stableRS"]
    ]
    assert len(stable) == 1
    return [c["image"] for c in stable[0]["spec"]["template"]["spec"]["containers"]]


def _ready_by_image(rollouts: Rollouts, name: str) -> dict[str, int]:
    ready: dict[str, int] = {}
    for rs in rollouts.replica_sets(name):
        image = rs["spec"]["template"]["spec"]["containers"][0]["image"]
        ready[image] = ready.get(image, 0) + int(rs.get("status", {}).get("readyReplicas", 0))
    return ready


def test_a_canary_whose_analysis_fails_is_aborted_and_stable_keeps_serving(
    rollouts: Rollouts,
) -> None:
    rollouts.create_canary("web", V1)
    rollouts.metric.set(rollouts.metric_key("web"), 0.5)  # below the 0.95 it needs

    rollouts.set_image("web", V2)

    aborted = rollouts.wait(
        "web", lambda r: r.get("status", {}).get("abort") is True, "aborted", timeout=60
    )
    assert rollouts.metric.requests[rollouts.metric_key("web")] >= 1
    runs = rollouts.analysis_runs("web")
    assert [run["status"]["phase"] for run in runs] == ["Failed"]
    measured = runs[0]["status"]["metricResults"][0]["measurements"][0]
    assert (measured["phase"], measured["value"]) == ("Failed", "0.5")
    degraded = rollouts.wait_phase("web", "Degraded")
    assert "RolloutAborted" in degraded["status"]["message"]
    assert aborted["status"]["stableRS"] == degraded["status"]["stableRS"]
    assert _stable_images(rollouts, "web") == [V1]
    rollouts.wait(
        "web",
        lambda r: _ready_by_image(rollouts, "web") == {V1: 2, V2: 0},
        "scaled back to stable",
    )


def test_a_canary_whose_analysis_passes_becomes_the_new_stable(rollouts: Rollouts) -> None:
    rollouts.create_canary("web", V1)
    rollouts.metric.set(rollouts.metric_key("web"), 0.99)

    rollouts.set_image("web", V2)

    done = rollouts.wait_healthy("web", timeout=60)
    assert done["status"]["currentStepIndex"] == len(done["spec"]["strategy"]["canary"]["steps"])
    assert [run["status"]["phase"] for run in rollouts.analysis_runs("web")] == ["Successful"]
    assert rollouts.metric.requests[rollouts.metric_key("web")] >= 2  # count: 2
    assert _stable_images(rollouts, "web") == [V2]
    assert sorted(rollouts.revisions("web")) == [1, 2]


def test_a_canary_whose_metric_cannot_be_measured_is_aborted(rollouts: Rollouts) -> None:
    template = rollouts.create_analysis("web", error_limit=0)
    rollouts.create_canary("web", V1, steps=canary_steps(template, pause=None), analysis=False)
    rollouts.metric.fail(rollouts.metric_key("web"))

    rollouts.set_image("web", V2)

    degraded = rollouts.wait_phase("web", "Degraded")
    assert degraded["status"]["abort"] is True
    run = rollouts.analysis_runs("web")[0]
    assert run["status"]["phase"] == "Error"
    assert run["status"]["metricResults"][0]["consecutiveError"] == 1
    assert _stable_images(rollouts, "web") == [V1]


def test_a_canary_whose_pods_crash_loop_misses_its_progress_deadline(rollouts: Rollouts) -> None:
    rollouts.create_canary(
        "web", V1, analysis=False, progress_deadline=5, progress_deadline_abort=True
    )

    rollouts.set_image("web", "registry.local/web:broken")

    degraded = rollouts.wait_phase("web", "Degraded", timeout=60)
    assert "has timed out progressing" in degraded["status"]["message"]
    assert degraded["status"]["abort"] is True
    assert _stable_images(rollouts, "web") == [V1]


def test_a_canary_paused_at_its_weight_is_aborted_by_the_plugin(rollouts: Rollouts) -> None:
    rollouts.create_canary("web", V1, steps=canary_steps(None, weight=50, pause=""), analysis=False)

    rollouts.set_image("web", V2)

    paused = rollouts.wait_phase("web", "Paused")
    assert paused["status"]["currentStepIndex"] == 1
    assert [c["reason"] for c in paused["status"]["pauseConditions"]] == ["CanaryPauseStep"]
    rollouts.wait(
        "web", lambda r: _ready_by_image(rollouts, "web") == {V1: 1, V2: 1}, "half on the canary"
    )

    rollouts.plugin("abort", "web")

    degraded = rollouts.wait_phase("web", "Degraded")
    assert degraded["status"]["abort"] is True
    assert _stable_images(rollouts, "web") == [V1]
    rollouts.wait(
        "web", lambda r: _ready_by_image(rollouts, "web") == {V1: 2, V2: 0}, "back on stable"
    )


def test_undo_by_the_plugin_puts_the_old_revision_back_in_the_spec(rollouts: Rollouts) -> None:
    rollouts.create_canary("web", V1, steps=[], analysis=False)
    rollouts.set_image("web", V2)
    rollouts.wait_healthy("web")
    assert sorted(rollouts.revisions("web")) == [1, 2]

    out = rollouts.plugin("undo", "web", "--to-revision=1")

    assert out.strip() == "rollout 'web' undo"
    assert rollouts.images_of("web") == [V1]
    rollouts.wait_healthy("web")
    revisions = rollouts.revisions("web")
    assert sorted(revisions) == [2, 3]  # revision 1's ReplicaSet is revision 3 now
    assert revisions[3]["spec"]["template"]["spec"]["containers"][0]["image"] == V1


def test_a_blue_green_rollout_switches_its_active_service_when_promoted(
    rollouts: Rollouts,
) -> None:
    first = rollouts.create_bluegreen("web", V1)

    def selected(service: str) -> str:
        selector = rollouts.core.read_namespaced_service(service, rollouts.namespace).spec.selector
        return str(selector.get("rollouts-pod-template-hash"))

    assert selected("web-active") == first["status"]["stableRS"]
    rollouts.set_image("web", V2)

    paused = rollouts.wait_phase("web", "Paused")
    new_hash = paused["status"]["currentPodHash"]
    assert new_hash != first["status"]["stableRS"]
    rollouts.wait("web", lambda r: selected("web-preview") == new_hash, "previewed")
    assert selected("web-active") == first["status"]["stableRS"]

    rollouts.plugin("promote", "web")

    rollouts.wait_healthy("web")
    assert selected("web-active") == new_hash
    assert _stable_images(rollouts, "web") == [V2]


def test_undo_within_the_rollback_window_skips_the_steps_and_the_analysis(
    rollouts: Rollouts,
) -> None:
    steps = canary_steps(rollouts.create_analysis("web"), pause="")  # paused until promoted
    rollouts.create_canary("web", V1, steps=steps, analysis=False, rollback_window=2)
    rollouts.set_image("web", V2)
    rollouts.wait_phase("web", "Paused")
    rollouts.plugin("promote", "web")
    rollouts.wait_healthy("web")
    assert [run["status"]["phase"] for run in rollouts.analysis_runs("web")] == ["Successful"]

    rollouts.plugin("undo", "web")

    back = rollouts.wait_healthy("web", timeout=30)  # no pause to promote: steps skipped
    assert _stable_images(rollouts, "web") == [V1]
    assert back["status"]["currentStepIndex"] == len(steps)
    assert len(rollouts.analysis_runs("web")) == 1  # no analysis for the rollback
