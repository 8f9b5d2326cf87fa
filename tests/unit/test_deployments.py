"""kubectl rollout undo's rules, one by one, on raw API objects."""

from __future__ import annotations

import pytest

from bot.deployments import (
    CHANGE_CAUSE,
    choose_target,
    revision_number,
    rollout_history,
    templates_equal,
    undo_annotations,
    undo_patch,
)
from bot.errors import NoRolloutHistory, RevisionNotFound
from tests.unit.builders import deployment, replica_set, template


def three_revisions() -> tuple[dict, list[dict]]:
    dep = deployment(template("app:v3"))
    rsets = [
        replica_set(
            "web-1",
            "1",
            template("app:v1", hash_label="h1"),
            annotations={CHANGE_CAUSE: "first"},
            created="2026-01-01T00:00:01Z",
        ),
        replica_set(
            "web-2",
            "2",
            template("app:v2", hash_label="h2"),
            annotations={CHANGE_CAUSE: "second"},
            created="2026-01-01T00:00:02Z",
        ),
        replica_set(
            "web-3",
            "3",
            template("app:v3", hash_label="h3"),
            annotations={CHANGE_CAUSE: "third"},
            created="2026-01-01T00:00:03Z",
        ),
    ]
    return dep, rsets


def test_history_lists_owned_replica_sets_oldest_first_and_marks_the_current_one():
    dep, rsets = three_revisions()
    rsets.append(replica_set("stranger", "9", template("app:v9"), owner="someone-else"))
    history = rollout_history(dep, rsets)
    assert [r.number for r in history] == [1, 2, 3]
    assert [r.change_cause for r in history] == ["first", "second", "third"]
    assert [r.current for r in history] == [False, False, True]
    assert history[0].images == ("app=app:v1",)


def test_a_replica_set_owned_without_the_controller_flag_is_not_history():
    dep, rsets = three_revisions()
    rsets.append(replica_set("adopted", "7", template("app:v7"), controller=False))
    assert 7 not in [r.number for r in rollout_history(dep, rsets)]


def test_missing_revision_annotation_counts_as_zero_and_garbage_is_skipped():
    assert revision_number(replica_set("a", None, template())) == 0
    assert revision_number(replica_set("b", "not-a-number", template())) is None
    dep, rsets = three_revisions()
    rsets.append(replica_set("junk", "x1", template("app:junk")))
    assert [r.number for r in rollout_history(dep, rsets)] == [1, 2, 3]


def test_previous_is_the_second_highest_revision_not_the_second_newest_object():
    dep, rsets = three_revisions()
    # Rolled back from 3 to 1: the controller renumbered web-1 to 4.
    rsets[0]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "4"
    history = rollout_history(dep, rsets)
    assert choose_target("web", history, 0).number == 3


def test_to_revision_picks_that_revision_or_names_the_ones_that_exist():
    dep, rsets = three_revisions()
    history = rollout_history(dep, rsets)
    assert choose_target("web", history, 1).replica_set == "web-1"
    with pytest.raises(RevisionNotFound, match=r"revision 7 .*revisions: 1, 2, 3"):
        choose_target("web", history, 7)
    with pytest.raises(RevisionNotFound):
        choose_target("web", history, -1)


def test_a_single_revision_has_nothing_to_roll_back_to():
    dep, rsets = three_revisions()
    with pytest.raises(NoRolloutHistory, match="only one revision"):
        choose_target("web", rollout_history(dep, rsets[:1]), 0)
    with pytest.raises(NoRolloutHistory, match="owns no ReplicaSets"):
        choose_target("web", rollout_history(dep, []), 0)


def test_template_equality_ignores_the_hash_label_and_empty_versus_missing():
    a = template("app:v1", hash_label="abc")
    b = template("app:v1")
    b["spec"]["volumes"] = []
    b["metadata"]["annotations"] = {}
    assert templates_equal(a, b)
    assert not templates_equal(a, template("app:v2"))


def test_undo_annotations_keep_the_deployments_bookkeeping_and_take_the_rest_from_the_rs():
    dep = deployment(
        annotations={
            "deployment.kubernetes.io/revision": "3",
            "kubectl.kubernetes.io/last-applied-configuration": "{...}",
            "team": "payments",  # only on the Deployment: an undo drops it, as kubectl does
            CHANGE_CAUSE: "third",
        }
    )
    _, rsets = three_revisions()
    rsets[1]["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] = "5"
    target = rollout_history(dep, rsets)[1]
    assert undo_annotations(dep, target) == {
        "deployment.kubernetes.io/revision": "3",
        "kubectl.kubernetes.io/last-applied-configuration": "{...}",
        CHANGE_CAUSE: "second",
    }


def test_undo_patch_guards_generation_and_annotations_and_strips_the_hash():
    dep, rsets = three_revisions()
    target = rollout_history(dep, rsets)[0]
    ops = undo_patch(dep, target, change_cause="rollbot: by alice")
    assert ops[0] == {"op": "test", "path": "/metadata/generation", "value": 3}
    assert ops[1] == {
        "op": "test",
        "path": "/metadata/annotations",
        "value": dep["metadata"]["annotations"],
    }
    assert ops[2]["path"] == "/spec/template"
    assert "pod-template-hash" not in ops[2]["value"]["metadata"]["labels"]
    assert ops[2]["value"]["spec"]["containers"][0]["image"] == "app:v1"
    assert ops[3]["value"][CHANGE_CAUSE] == "rollbot: by alice"
    # The plan's own objects are not modified by building the patch.
    assert target.template["metadata"]["labels"]["pod-template-hash"] == "h1"


def test_json_pointers_resolve_escaped_keys():
    from bot.deployments import pointer_value

    obj = {"metadata": {"annotations": {"kubernetes.io/change-cause": "x"}}, "a": [1, 2]}
    assert pointer_value(obj, "/metadata/annotations/kubernetes.io~1change-cause") == "x"
    assert pointer_value(obj, "/a/1") == 2
    assert pointer_value(obj, "/a/9") is None
    assert pointer_value(obj, "/missing/deep") is None


def test_an_image_tag_target_reuses_a_matching_revision_or_builds_one():
    from bot.deployments import TagNeverDeployed, image_target, with_tag

    dep, rsets = three_revisions()
    history = rollout_history(dep, rsets)
    assert image_target(dep, history, "v1").replica_set == "web-1"  # same template as rev 1
    dep["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "A", "value": "1"}]
    built = image_target(dep, history, "v2")
    assert built.number == 0 and built.images == ("app=app:v2",)
    assert built.template["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]
    with pytest.raises(TagNeverDeployed, match="'v9' was never deployed .*v1, v2, v3"):
        image_target(dep, history, "v9")
    assert image_target(dep, history, "v9", allow_unknown=True).images == ("app=app:v9",)
    assert with_tag("ghcr.io:443/acme/app@sha256:abc", "1.2") == "ghcr.io:443/acme/app:1.2"
    assert with_tag("app", "1.2") == "app:1.2"
