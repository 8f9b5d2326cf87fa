"""An Argo Rollout read and rolled back as the plugin and the controller would:
its history, where its update stands, its latest analysis, the undo patch, the
fast-rollback decision, and the plan a person approves."""

from __future__ import annotations

import copy

import pytest

from bot.argo_rollouts import (
    UndoProblem,
    derives,
    fast_rollback,
    history,
    latest_analysis,
    matches_template,
    owned_by,
    read_status,
    undo_ops,
    undo_target,
)
from bot.bodies import Body
from bot.config import RollbotConfig, ServiceEntry
from bot.errors import PermanentError
from bot.strategies import Context, Request, StrategyError, get
from tests.unit.argo_bodies import HISTORY, UID, analysis_run, replica_set, rollout


def canary_in_progress(**kw: object) -> Body:
    """Revision 4 (1.3) at step 1 of 6, weight 20, over the stable revision 3."""
    args: dict[str, object] = {
        "stable": "h3",
        "current": "h4",
        "phase": "Paused",
        "message": "CanaryPauseStep",
        "step": 1,
        "paused": ("CanaryPauseStep",),
    }
    args.update(kw)
    return rollout("ghcr.io/eli/backend:1.3", **args)  # type: ignore[arg-type]


def healthy_on(revision: int, **kw: object) -> Body:
    rs = HISTORY[revision - 1]
    image = rs["spec"]["template"]["spec"]["containers"][0]["image"]
    pod_hash = rs["metadata"]["labels"]["rollouts-pod-template-hash"]
    return rollout(image, stable=pod_hash, current=pod_hash, step=6, **kw)  # type: ignore[arg-type]


# -- history and status -------------------------------------------------------


def test_history_marks_the_stable_and_the_canary_replica_sets_and_keeps_only_its_own():
    stranger = replica_set(9, "other:1", "h9", created="2026-12-01T09:00:00Z", owner="someone")
    ro = canary_in_progress()
    revisions = history(ro, owned_by(ro, [*HISTORY, stranger]))
    assert [r.number for r in revisions] == [1, 2, 3, 4]
    assert [(r.stable, r.canary) for r in revisions][2:] == [(True, False), (False, True)]
    assert revisions[3].images == ("backend=ghcr.io/eli/backend:1.3",)


def test_status_shows_phase_step_and_the_canary_share_of_ready_pods():
    ro = canary_in_progress()
    status = read_status(ro, history(ro, HISTORY))
    assert status.updating and not status.aborted
    assert (status.step, status.steps, status.weight) == (1, 6, 20)
    assert status.describe() == "Paused (CanaryPauseStep): step 1/6, canary weight 20%, 5/5 ready"


def test_a_traffic_router_weight_wins_over_the_pod_share():
    ro = canary_in_progress()
    ro["status"]["canary"] = {"weights": {"canary": {"weight": 35}, "stable": {"weight": 65}}}
    assert read_status(ro, history(ro, HISTORY)).weight == 35


def test_a_spec_not_yet_observed_reads_as_progressing_whatever_the_old_phase_says():
    ro = healthy_on(3, generation=5, observed=4)
    status = read_status(ro)
    assert (status.phase, status.observed) == ("Progressing", False)


def test_latest_owned_analysis_run_names_the_failed_metric_and_its_measured_value():
    runs = [
        analysis_run("eli-maor-backend-4-2", "Failed", "2026-12-01T13:05:00Z", value="0.42"),
        analysis_run("eli-maor-backend-3-2", "Successful", "2026-12-01T12:05:00Z"),
        analysis_run("someone-else", "Error", "2026-12-01T14:00:00Z", owner="other"),
    ]
    summary = latest_analysis(canary_in_progress(), runs)
    assert summary is not None and summary.bad
    assert summary.name == "eli-maor-backend-4-2"
    assert summary.failed[0].value == "0.42"
    assert "success-rate Failed, measured 0.42" in summary.describe()


def test_no_analysis_run_is_no_summary():
    assert latest_analysis(canary_in_progress(), []) is None


# -- undo as the plugin does it ------------------------------------------------


def test_undo_without_a_revision_goes_to_the_second_highest_number_as_the_plugin_does():
    ro = canary_in_progress()
    assert undo_target(history(ro, HISTORY), 0).number == 3
    assert undo_target(history(ro, HISTORY), 1).replica_set == "eli-maor-backend-h1"


def test_undo_to_an_unknown_revision_or_with_no_earlier_one_is_refused():
    ro = canary_in_progress()
    with pytest.raises(UndoProblem, match="unable to find specified revision 7"):
        undo_target(history(ro, HISTORY), 7)
    with pytest.raises(UndoProblem, match="no revision found"):
        undo_target(history(ro, HISTORY[:1]), 0)


def test_undo_patch_puts_the_replica_set_template_back_without_its_hash_label():
    ro = canary_in_progress()
    ops = undo_ops(ro, HISTORY[1], "rolled back by U1: bad release")
    assert ops[0] == {"op": "test", "path": "/metadata/generation", "value": 4}
    replace = ops[1]
    assert replace["op"] == "replace" and replace["path"] == "/spec/template"
    expected = copy.deepcopy(HISTORY[1]["spec"]["template"])
    del expected["metadata"]["labels"]["rollouts-pod-template-hash"]
    assert replace["value"] == expected
    assert "rollouts-pod-template-hash" in HISTORY[1]["spec"]["template"]["metadata"]["labels"]
    assert ops[-1]["path"] == "/metadata/annotations/kubernetes.io~1change-cause"


def test_template_match_ignores_the_hash_and_fields_the_rollout_leaves_unset():
    ro = canary_in_progress()
    assert matches_template(ro, HISTORY[3])  # the Rollout's sparse template, defaulted in the RS
    assert not matches_template(ro, HISTORY[2])


def test_derivative_comparison_follows_apimachinery():
    assert derives({"a": [], "b": ""}, {"a": [1], "b": "x"})
    assert derives({"a": [1]}, {"a": [1, 2]})  # a prefix of a list derives
    assert not derives({"a": 1}, {"a": 1.0})
    assert not derives({"a": {"b": 1}}, {"c": 1})


# -- fast rollback ------------------------------------------------------------------


def test_back_to_the_stable_revision_is_always_fast():
    ro = canary_in_progress()
    revisions = history(ro, HISTORY)
    fast, why = fast_rollback(ro, revisions, revisions[2])
    assert fast and "stable" in why


def test_within_the_rollback_window_is_fast_outside_it_is_not():
    ro = healthy_on(4, window=2)  # stable: 4; 3 lies between 2 and 4, 2 and 3 between 1 and 4
    revisions = history(ro, HISTORY)
    assert fast_rollback(ro, revisions, revisions[2])[0]  # 3: nothing between
    assert fast_rollback(ro, revisions, revisions[1])[0]  # 2: one between, window 2
    fast, why = fast_rollback(ro, revisions, revisions[0])  # 1: two between
    assert not fast and "outside rollbackWindow.revisions 2 (2 between" in why


def test_without_a_window_an_older_revision_goes_through_steps_and_analysis():
    ro = healthy_on(4)
    revisions = history(ro, HISTORY)
    fast, why = fast_rollback(ro, revisions, revisions[2])
    assert not fast and "no rollbackWindow" in why


def test_experiment_replica_sets_do_not_count_toward_the_window():
    experiment = replica_set(5, "exp:1", "hx", created="2026-12-01T11:30:00Z", experiment=True)
    ro = healthy_on(4, window=1)
    revisions = history(ro, [*HISTORY[1:], experiment])
    target = next(r for r in revisions if r.number == 3)
    assert fast_rollback(ro, revisions, target)[0]


# -- the plan ---------------------------------------------------------------------------


class Cluster:
    def __init__(self, ro: Body | None, replica_sets: list[Body], runs: list[Body]) -> None:
        self.ro, self.replica_sets, self.runs = ro, replica_sets, runs

    def get_rollout(self, namespace: str, name: str) -> Body:
        if self.ro is None:
            raise PermanentError('Kubernetes rejected the request: rollouts "x" not found')
        return self.ro

    def list_replica_sets(self, namespace: str, label_selector: str) -> list[Body]:
        assert label_selector == "app=eli-maor-backend"
        return self.replica_sets

    def list_analysis_runs(self, namespace: str, label_selector: str = "") -> list[Body]:
        return self.runs


CATALOG = RollbotConfig(
    services={
        "eli-maor": ServiceEntry(
            namespace="production", strategy="argo-rollouts", rollout="eli-maor-backend"
        )
    }
)


def plan(ro: Body | None, revision: int = 0, **options: str):  # type: ignore[no-untyped-def]
    runs = [analysis_run("eli-maor-backend-4-2", "Failed", "2026-12-01T13:05:00Z")]
    ctx = Context(kube=Cluster(ro, HISTORY, runs), config=CATALOG, timeout=5)  # type: ignore[arg-type]
    return get("argo-rollouts").plan(
        ctx, Request("production", "eli-maor", "argo-rollouts", revision, None, options)
    )


def test_an_update_in_progress_is_planned_as_an_abort_back_to_stable_with_its_analysis():
    planned = plan(canary_in_progress())
    assert planned.pins == {"rollout": "eli-maor-backend", "uid": UID, "action": "abort"}
    assert planned.current == "revision 4 (Paused)" and planned.target == "stable revision 3"
    assert planned.workloads == ()
    assert (planned.from_revision, planned.target_revision) == (4, 3)
    facts = "\n".join(planned.facts)
    assert "Rollout eli-maor-backend: Paused (CanaryPauseStep): step 1/6" in facts
    assert "success-rate Failed, measured 0.42" in facts
    assert "stays Degraded (aborted)" in facts
    assert "← stable" in facts and "← canary" in facts
    assert planned.assessment is not None and planned.assessment.severity == "high"


def test_a_permanent_abort_also_undoes_the_spec_to_the_stable_revision():
    planned = plan(canary_in_progress(), permanent="true")
    assert planned.pins["action"] == "abort+undo"
    assert (planned.pins["replica_set"], planned.pins["revision"]) == ("eli-maor-backend-h3", "3")
    assert any(f.startswith("Fast rollback: revision 3 is the stable one") for f in planned.facts)


def test_the_plan_says_the_abort_is_made_permanent_and_why():
    asked = plan(canary_in_progress(), permanent="true")
    assert asked.changes == (
        "abort the update to revision 4: traffic back to the stable revision 3",
        "then make the abort permanent (asked with --permanent): spec.template of rollout "
        "eli-maor-backend → revision 3 (eli-maor-backend-h3)",
    )
    assert not any("stays Degraded" in f for f in asked.facts)
    entry = CATALOG.services["eli-maor"].model_copy(update={"abort_permanently": True})
    by_catalog = RollbotConfig(services={"eli-maor": entry})
    ctx = Context(kube=Cluster(canary_in_progress(), HISTORY, []), config=by_catalog, timeout=5)  # type: ignore[arg-type]
    planned = get("argo-rollouts").plan(ctx, Request("production", "eli-maor", "argo-rollouts"))
    assert "(abort_permanently in the catalog)" in planned.changes[1]


def test_permanent_with_nothing_to_abort_says_what_it_does_instead():
    planned = plan(healthy_on(4), permanent="true")
    assert planned.pins["action"] == "undo"
    assert (
        "--permanent: no update in progress to abort; the spec is undone to revision 3, as any "
        "rollback of this Rollout does"
    ) in planned.facts


def test_an_aborted_rollout_is_made_permanent_by_undoing_to_stable():
    planned = plan(canary_in_progress(phase="Degraded", abort=True, paused=()))
    assert planned.pins["action"] == "undo" and planned.pins["revision"] == "3"
    assert planned.changes[0].startswith("make the abort permanent (it was aborted already)")


def test_with_nothing_in_progress_it_undoes_to_the_previous_revision_and_says_if_fast():
    planned = plan(healthy_on(4, window=1))
    assert planned.pins["action"] == "undo" and planned.pins["pod_hash"] == "h3"
    assert planned.to_images == ("backend=ghcr.io/eli/backend:1.2",)
    assert any(f.startswith("Fast rollback: revision 3 is within") for f in planned.facts)
    assert planned.nothing_to_do is None


def test_a_chosen_revision_outside_the_window_is_a_full_rollout():
    planned = plan(healthy_on(4, window=1), revision=1)
    assert planned.pins["revision"] == "1"
    assert any(f.startswith("Full rollout: revision 1 is outside") for f in planned.facts)


def test_undo_to_the_template_it_already_runs_is_nothing_to_do():
    ro = healthy_on(4)
    ro["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/eli/backend:1.2"
    assert "already matches revision 3" in (plan(ro).nothing_to_do or "")


def test_a_missing_rollout_is_a_clear_refusal():
    with pytest.raises(StrategyError, match="rollout 'eli-maor-backend' was not found"):
        plan(None)


def test_an_unknown_revision_is_a_clear_refusal():
    with pytest.raises(StrategyError, match="revision 9 in history"):
        plan(healthy_on(4), revision=9)


def test_an_image_tag_is_refused_for_a_rollout():
    ctx = Context(kube=Cluster(healthy_on(4), HISTORY, []), config=CATALOG, timeout=5)  # type: ignore[arg-type]
    with pytest.raises(StrategyError, match="not an image tag"):
        get("argo-rollouts").plan(ctx, Request("production", "eli-maor", to_tag="1.0"))


def test_a_rollout_backup_is_not_restored_as_a_deployment():
    from bot.strategies.restore import bundles_of

    with pytest.raises(StrategyError, match="holds rollout/eli-maor-backend, not a Deployment"):
        bundles_of({"rollout": {}, "saved": ["rollout/eli-maor-backend"]})


def test_a_rollout_with_a_workload_ref_is_aborted_but_not_undone():
    ro = healthy_on(4)
    ro["spec"]["workloadRef"] = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    with pytest.raises(StrategyError, match="takes its template from Deployment/web"):
        plan(ro)
    in_progress = canary_in_progress()
    in_progress["spec"]["workloadRef"] = ro["spec"]["workloadRef"]
    assert plan(in_progress).pins["action"] == "abort"


def test_the_forms_targets_are_the_other_revisions_and_its_default_what_the_plan_picks():
    from bot.history import history_lines, rollback_targets

    runs: list[Body] = []
    updating = Cluster(canary_in_progress(), HISTORY, runs)
    targets = rollback_targets(updating, CATALOG, "production", "eli-maor")
    assert [t.revision for t in targets.choices] == [3, 2, 1] and targets.default == 3
    settled = Cluster(healthy_on(3), HISTORY[:3], runs)
    assert rollback_targets(settled, CATALOG, "production", "eli-maor").default == 2
    lines = history_lines(updating, CATALOG, "production", "eli-maor")
    assert lines[0].startswith("Argo Rollout production/eli-maor-backend: Paused")
    assert lines[-1] == "• 4 (canary) backend:1.3 — 1/1 ready"
