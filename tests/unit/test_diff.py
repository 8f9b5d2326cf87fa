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


def test_credentials_in_args_and_annotations_are_redacted_but_a_change_still_shows():
    before = {"spec": {"containers": [{"name": "app", "args": ["--password", "s3cret"]}]}}
    after = {
        "metadata": {"annotations": {"db": "postgres://app:hunter2@db/prod"}},
        "spec": {"containers": [{"name": "app", "args": ["--password", "0ther"]}]},
    }
    shown = "\n".join(c.describe() for c in template_diff(before, after))
    assert "s3cret" not in shown and "0ther" not in shown and "hunter2" not in shown
    args = next(line for line in shown.splitlines() if "args" in line)
    old, new = args.split(": args: ", 1)[1].split(" → ")
    assert old.startswith('["--password","[redacted]"]') and old != new, "still told apart"


def test_env_fingerprints_are_keyed_not_a_plain_hash_of_the_value():
    import hashlib

    plain = hashlib.sha256(b"hunter2").hexdigest()
    assert plain[:6] not in fingerprint("hunter2") and plain[:8] not in fingerprint("hunter2")
    assert fingerprint("hunter2") == fingerprint("hunter2") != fingerprint("hunter3")
