"""The diff a person reads before approving a rollback."""

from __future__ import annotations

from bot.diff import fingerprint, template_diff
from tests.unit.builders import template


def described(current, target):
    return [c.describe() for c in template_diff(current, target)]


def test_an_image_change_reads_as_before_and_after():
    assert described(template("app:v3"), template("app:v2")) == [
        "container app: image: app:v3 → app:v2"
    ]


def test_env_values_are_never_shown_only_fingerprinted():
    current = template(env=[{"name": "API_KEY", "value": "s3cret-new"}])
    target = template(env=[{"name": "API_KEY", "value": "s3cret-old"}])
    [change] = template_diff(current, target)
    assert change.what == "env API_KEY"
    assert "s3cret" not in change.describe()
    assert change.before == fingerprint("s3cret-new") != change.after


def test_env_references_are_shown_since_they_name_no_value():
    current = template(
        env=[{"name": "DB", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}}]
    )
    target = template(env=[])
    [change] = template_diff(current, target)
    assert change.kind == "removed"
    assert "secretKeyRef" in change.describe()


def test_added_and_removed_containers_labels_and_pod_fields_are_all_listed():
    current = template("app:v3", labels={"track": "canary"})
    current["spec"]["containers"].append({"name": "sidecar", "image": "proxy:2"})
    current["spec"]["serviceAccountName"] = "new-sa"
    target = template("app:v3")
    target["spec"]["initContainers"] = [{"name": "migrate", "image": "app:v2"}]
    lines = described(current, target)
    assert "init container migrate: container added: app:v2" in lines
    assert "container sidecar: container removed (was proxy:2)" in lines
    assert "pod: label track removed (was canary)" in lines
    assert "pod: serviceAccountName removed (was new-sa)" in lines


def test_resources_and_probes_are_named_and_the_hash_label_is_ignored():
    current = template("app:v1", hash_label="aaa")
    target = template("app:v1", hash_label="bbb")
    current["spec"]["containers"][0]["resources"] = {"limits": {"memory": "512Mi"}}
    target["spec"]["containers"][0]["readinessProbe"] = {"httpGet": {"path": "/health"}}
    whats = [c.what for c in template_diff(current, target)]
    assert whats == ["resources", "readinessProbe"]


def test_identical_templates_have_no_diff():
    assert template_diff(template("x:1"), template("x:1")) == []
