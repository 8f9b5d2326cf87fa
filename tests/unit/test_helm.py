"""Helm release history from its Secrets, the revision to roll back to, and
`helm rollback` as rollbot runs it (against a stand-in helm script)."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from bot import helm_releases as helm
from bot.errors import (
    AlreadyAtTarget,
    InvalidInput,
    PermanentError,
    RevisionNotFound,
    RolloutFailed,
    RolloutTimedOut,
)
from bot.helm_history import (
    HelmRevision,
    ReleaseDeployment,
    ReleaseNotFound,
    decode_release,
    read_release_history,
    release_deployments,
    revision_from_release,
)
from bot.helm_releases import (
    AlreadyAtRevision,
    HelmNotFound,
    HelmRollbackFailed,
    NothingToRollBackTo,
    ReleaseChanged,
    ReleasePending,
    TargetRevisionFailed,
    choose_target,
    describe_changes,
    helm_rollback,
    plan_helm_rollback,
)

Body = dict[str, Any]
NS = "shop"
REL = "todo"

DESCRIPTIONS = {
    "deployed": "Upgrade complete",
    "superseded": "Upgrade complete",
    "failed": 'Upgrade "todo" failed: context deadline exceeded',
    "pending-upgrade": "Preparing upgrade",
    "pending-install": "Initial install underway",
    "pending-rollback": "Rollback to 1",
}


def manifest(tag: str, *, worker: bool = False) -> str:
    docs = [
        f"""---
# Source: todo-app/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: todo-backend
spec:
  replicas: 2
  template:
    spec:
      initContainers:
        - name: migrate
          image: "registry.example/todo-backend:{tag}"
      containers:
        - name: backend
          image: "registry.example/todo-backend:{tag}"
""",
        """---
apiVersion: v1
kind: Service
metadata:
  name: todo-backend
spec:
  ports: [{port: 80}]
""",
    ]
    if worker:
        docs.append(
            """---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: todo-worker
  namespace: jobs
spec:
  template:
    spec:
      containers:
        - name: worker
          image: registry.example/todo-worker:2
"""
        )
    return "".join(docs)


def release_json(
    number: int,
    status: str = "superseded",
    *,
    tag: str = "",
    chart_version: str = "0.1.0",
    app_version: str = "1.0.0",
    description: str | None = None,
    values: Body | None = None,
    worker: bool = False,
) -> Body:
    """A release as helm stores it (the fields rollbot reads, and some it does not)."""
    return {
        "name": REL,
        "info": {
            "first_deployed": "2026-02-07T10:00:00.1Z",
            "last_deployed": f"2026-02-07T10:00:{number:02d}.123456789Z",
            "deleted": "",
            "description": DESCRIPTIONS.get(status, "") if description is None else description,
            "status": status,
        },
        "chart": {
            "metadata": {
                "name": "todo-app",
                "version": chart_version,
                "appVersion": app_version,
                "apiVersion": "v2",
            },
            "templates": [],
        },
        "config": {"tag": tag or f"1.{number}.0"} if values is None else values,
        "manifest": manifest(tag or f"1.{number}.0", worker=worker),
        "version": number,
        "namespace": NS,
    }


def helm_secret(release: Body, *, compress: bool = True) -> Body:
    """A release Secret as the API returns it: base64 (the Secret's) of helm's base64 of gzip."""
    payload = json.dumps(release).encode()
    if compress:
        payload = gzip.compress(payload)
    data = base64.b64encode(base64.b64encode(payload)).decode()
    name, number = release["name"], release["version"]
    return {
        "metadata": {
            "name": f"sh.helm.release.v1.{name}.v{number}",
            "namespace": release["namespace"],
            "labels": {
                "owner": "helm",
                "name": name,
                "status": release["info"]["status"],
                "version": str(number),
            },
        },
        "type": "helm.sh/release.v1",
        "data": {"release": data},
    }


def history(*statuses: str) -> list[HelmRevision]:
    return [revision_from_release(release_json(n, s)) for n, s in enumerate(statuses, start=1)]


class FakeSecrets:
    """A SecretSource whose listing can change between calls (helm writing a revision)."""

    def __init__(self, *listings: list[Body]) -> None:
        self.listings = list(listings)
        self.selectors: list[str] = []

    def list_secrets(self, namespace: str, label_selector: str) -> list[Body]:
        assert namespace == NS
        self.selectors.append(label_selector)
        return self.listings.pop(0) if len(self.listings) > 1 else self.listings[0]


def secrets_of(*releases: Body) -> list[Body]:
    return [helm_secret(r) for r in releases]


# -- reading the history ------------------------------------------------------------------


def test_a_release_secret_decodes_to_its_history_row_and_deployments():
    secret = helm_secret(release_json(3, "failed", tag="1.2.0-broken", values={"tag": "x"}))
    revision = revision_from_release(decode_release(secret))
    assert revision == HelmRevision(
        number=3,
        status="failed",
        chart="todo-app-0.1.0",
        app_version="1.0.0",
        description='Upgrade "todo" failed: context deadline exceeded',
        updated="2026-02-07T10:00:03.123456789Z",
        deployments=(
            ReleaseDeployment(
                name="todo-backend",
                namespace=NS,
                images=(
                    "backend=registry.example/todo-backend:1.2.0-broken",
                    "migrate=registry.example/todo-backend:1.2.0-broken",
                ),
            ),
        ),
    )
    assert revision.values == {"tag": "x"}


def test_a_deployment_with_its_own_namespace_keeps_it():
    revision = revision_from_release(release_json(1, "deployed", worker=True))
    assert [(d.namespace, d.name) for d in revision.deployments] == [
        (NS, "todo-backend"),
        ("jobs", "todo-worker"),
    ]


def test_an_uncompressed_release_record_is_read_too():
    secret = helm_secret(release_json(1, "deployed"), compress=False)
    assert decode_release(secret)["version"] == 1


def test_an_unreadable_release_record_is_a_permanent_error_naming_the_secret():
    secret = helm_secret(release_json(1, "deployed"))
    secret["data"]["release"] = base64.b64encode(b"not base64 at all!").decode()
    with pytest.raises(PermanentError, match=r"sh\.helm\.release\.v1\.todo\.v1"):
        decode_release(secret)


def test_history_is_read_from_the_release_secrets_oldest_first():
    stranger = helm_secret({**release_json(7, "deployed"), "name": "todo-old"})
    stranger["metadata"]["labels"]["name"] = REL  # labelled like ours, named otherwise
    source = FakeSecrets(
        [
            helm_secret(release_json(10, "deployed")),
            helm_secret(release_json(2, "superseded")),
            stranger,
            helm_secret(release_json(9, "failed")),
        ]
    )
    revisions = read_release_history(source, NS, REL)
    assert [(r.number, r.status) for r in revisions] == [
        (2, "superseded"),
        (9, "failed"),
        (10, "deployed"),
    ]
    assert source.selectors == ["owner=helm,name=todo"]


def test_a_release_without_secrets_is_not_found_naming_namespace_and_release():
    with pytest.raises(ReleaseNotFound) as caught:
        read_release_history(FakeSecrets([]), NS, REL)
    assert isinstance(caught.value, PermanentError)
    assert "'todo'" in str(caught.value) and "'shop'" in str(caught.value)
    assert caught.value.code == "release_not_found"


def test_the_release_deployments_are_those_of_the_newest_revision():
    source = FakeSecrets(
        secrets_of(release_json(1, "superseded", worker=True), release_json(2, "deployed"))
    )
    assert release_deployments(source, NS, REL) == ["todo-backend"]


# -- choosing the target ------------------------------------------------------------------


def number_of_target(revisions: list[HelmRevision], revision: int = 0) -> int:
    return choose_target(revisions, NS, REL, revision).number


def test_default_target_is_the_previous_revision_when_all_went_well():
    assert number_of_target(history("superseded", "superseded", "deployed")) == 2


def test_default_target_skips_a_failed_revision():
    # `helm rollback todo 0` would pick 3, which failed.
    assert number_of_target(history("superseded", "superseded", "failed", "deployed")) == 2


def test_default_target_after_a_failed_upgrade_is_the_revision_still_marked_deployed():
    # The cluster runs what revision 3 applied; revision 2 still says "deployed".
    assert number_of_target(history("superseded", "deployed", "failed")) == 2
    assert number_of_target(history("superseded", "deployed", "failed", "failed")) == 2


def test_default_target_skips_a_revision_left_pending_below_the_current_one():
    assert number_of_target(history("superseded", "pending-upgrade", "deployed")) == 1


def test_an_explicit_superseded_revision_is_the_target():
    assert number_of_target(history("superseded", "superseded", "deployed"), 1) == 1


def test_an_explicit_failed_revision_is_refused():
    with pytest.raises(TargetRevisionFailed) as caught:
        choose_target(history("superseded", "failed", "deployed"), NS, REL, 2)
    message = str(caught.value)
    assert "revision 2" in message and "failed" in message
    assert "context deadline exceeded" in message
    assert "deployed: 1, 3" in message


def test_an_explicit_current_revision_is_refused_as_already_there():
    with pytest.raises(AlreadyAtRevision, match="already at revision 3") as caught:
        choose_target(history("superseded", "superseded", "deployed"), NS, REL, 3)
    assert isinstance(caught.value, AlreadyAtTarget)  # handled as "nothing to do"
    assert caught.value.revision == 3


def test_an_explicit_missing_revision_is_refused_listing_the_revisions():
    with pytest.raises(RevisionNotFound, match=r"revision 7 .*revisions: 1, 2, 3"):
        choose_target(history("superseded", "superseded", "deployed"), NS, REL, 7)


def test_a_negative_revision_is_invalid_input():
    with pytest.raises(InvalidInput):
        choose_target(history("superseded", "deployed"), NS, REL, -1)


@pytest.mark.parametrize(
    "statuses",
    [("deployed",), ("failed", "deployed"), ("failed", "failed")],
    ids=["first-install", "only-a-failed-install-below", "all-failed"],
)
def test_nothing_to_roll_back_to_when_no_good_revision_is_below_the_current_one(statuses):
    with pytest.raises(NothingToRollBackTo, match="nothing to roll back to"):
        choose_target(history(*statuses), NS, REL)


@pytest.mark.parametrize("status", ["pending-upgrade", "pending-rollback"])
def test_a_pending_release_is_explained_with_the_rollback_and_the_stuck_secret(status):
    revisions = history("superseded", "deployed", status)
    for asked in (0, 1):  # an explicit revision does not get around it
        with pytest.raises(ReleasePending) as caught:
            choose_target(revisions, NS, REL, asked)
        message = str(caught.value)
        assert f"stuck in {status} at revision 3" in message
        assert "refuses upgrades" in message
        assert "`helm rollback todo 2 -n shop`" in message
        assert "sh.helm.release.v1.todo.v3" in message
        assert "kubectl delete secret sh.helm.release.v1.todo.v3 -n shop" in message
        assert caught.value.code == "release_pending"


def test_a_pending_install_is_explained_with_uninstall_or_the_stuck_secret():
    with pytest.raises(ReleasePending) as caught:
        choose_target(history("pending-install"), NS, REL)
    message = str(caught.value)
    assert "stuck in pending-install at revision 1" in message
    assert "sh.helm.release.v1.todo.v1" in message
    assert "helm uninstall todo -n shop" in message
    assert "helm rollback" not in message


# -- what a rollback changes --------------------------------------------------------------


def test_the_plan_says_what_changes_between_current_and_target():
    current = revision_from_release(
        release_json(
            3,
            "failed",
            tag="1.2.0-broken",
            chart_version="0.2.0",
            app_version="1.2.0",
            values={"tag": "1.2.0-broken", "db": {"password": "s3cr3t-new"}},
        )
    )
    target = revision_from_release(
        release_json(
            2,
            "deployed",
            tag="1.1.0",
            values={"tag": "1.1.0", "db": {"password": "s3cr3t-old"}},
            worker=True,
        )
    )
    changes = describe_changes(current, target)
    assert changes == [
        "chart todo-app-0.2.0 → todo-app-0.1.0",
        "app version 1.2.0 → 1.0.0",
        "jobs/todo-worker: added (worker registry.example/todo-worker:2)",
        "shop/todo-backend: backend registry.example/todo-backend:1.2.0-broken → "
        "registry.example/todo-backend:1.1.0",
        "shop/todo-backend: migrate registry.example/todo-backend:1.2.0-broken → "
        "registry.example/todo-backend:1.1.0",
        "values differ: db.password, tag",
    ]
    assert not any("s3cr3t" in line for line in changes)  # values may be secrets


def test_a_deployment_the_target_lacks_is_named_as_removed():
    current = revision_from_release(release_json(2, "deployed", worker=True, values={}))
    target = revision_from_release(release_json(1, "superseded", tag="1.2.0", values={}))
    assert describe_changes(current, target) == [
        "jobs/todo-worker: removed (not in revision 1)",
    ]


def test_values_set_on_one_side_only_are_named_without_an_empty_key():
    current = revision_from_release(release_json(2, "deployed", values={"image": "web:2"}))
    target = revision_from_release(release_json(1, "superseded", values={}))
    assert describe_changes(current, target)[-1] == "values differ: image"


def test_the_plan_pins_current_target_and_history():
    revisions = history("superseded", "deployed", "failed")
    plan = plan_helm_rollback(revisions, NS, REL)
    assert (plan.current.number, plan.target.number) == (3, 2)
    assert plan.last_deployed is not None and plan.last_deployed.number == 2
    assert plan.history == tuple(revisions)
    assert plan.changes == (
        "todo-backend: backend registry.example/todo-backend:1.3.0 → "
        "registry.example/todo-backend:1.2.0",
        "todo-backend: migrate registry.example/todo-backend:1.3.0 → "
        "registry.example/todo-backend:1.2.0",
        "values differ: tag",
    )


# -- running helm ------------------------------------------------------------------------


BEFORE = [
    release_json(1, "superseded"),
    release_json(2, "deployed"),
    release_json(3, "failed"),
]
AFTER = [
    release_json(1, "superseded"),
    release_json(2, "superseded"),
    release_json(3, "failed"),
    release_json(4, "deployed", tag="1.2.0", description="Rollback to 2"),
]


class FakeHelm:
    """A stand-in helm that records its arguments, then prints and exits as told."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.log = folder / "calls"

    def __call__(self, body: str = "echo 'Rollback was a success! Happy Helming!'") -> str:
        script = self.folder / "helm"
        script.write_text(f'#!/bin/sh\necho "$@" >> {self.log}\n{body}\n')
        script.chmod(0o755)
        return str(script)

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def fake_helm(tmp_path: Path) -> FakeHelm:
    return FakeHelm(tmp_path)


def plan_from(releases: list[Body]) -> helm.HelmPlan:
    revisions = [revision_from_release(r) for r in releases]
    return plan_helm_rollback(revisions, NS, REL)


def test_helm_rollback_names_the_target_waits_and_returns_the_new_revision(fake_helm):
    source = FakeSecrets(secrets_of(*BEFORE), secrets_of(*AFTER))
    new = helm_rollback(
        plan_from(BEFORE),
        source=source,
        timeout_seconds=90.5,
        helm=fake_helm(),
        kubeconfig="/etc/kube/config",
        kube_context="prod",
    )
    assert (new.number, new.status, new.description) == (4, "deployed", "Rollback to 2")
    assert fake_helm.calls() == [
        "rollback todo 2 --namespace shop --wait --timeout 91s "
        "--kubeconfig /etc/kube/config --kube-context prod"
    ]


def test_a_failing_helm_rollback_carries_helms_stderr(fake_helm):
    helm_path = fake_helm(
        "echo 'Error: release todo failed: context deadline exceeded' >&2; exit 1"
    )
    with pytest.raises(HelmRollbackFailed) as caught:
        helm_rollback(
            plan_from(BEFORE),
            source=FakeSecrets(secrets_of(*BEFORE)),
            timeout_seconds=5,
            helm=helm_path,
        )
    assert isinstance(caught.value, RolloutFailed)
    assert caught.value.returncode == 1
    assert "Error: release todo failed: context deadline exceeded" in str(caught.value)
    assert "rollback todo 2 --namespace shop" in str(caught.value)


def test_a_missing_helm_binary_is_a_clear_permanent_error(tmp_path):
    with pytest.raises(HelmNotFound, match="cannot run the helm binary") as caught:
        helm_rollback(
            plan_from(BEFORE),
            source=FakeSecrets(secrets_of(*BEFORE)),
            timeout_seconds=5,
            helm=str(tmp_path / "no-helm-here"),
        )
    assert isinstance(caught.value, PermanentError)


def test_helm_outliving_its_time_out_is_stopped(fake_helm, monkeypatch):
    monkeypatch.setattr(helm, "HELM_GRACE_SECONDS", 0)
    with pytest.raises(RolloutTimedOut, match="pending-rollback"):
        helm_rollback(
            plan_from(BEFORE),
            source=FakeSecrets(secrets_of(*BEFORE)),
            timeout_seconds=0.5,
            helm=fake_helm("exec sleep 10"),
        )


def test_a_rollback_already_done_is_returned_without_running_helm_again(fake_helm):
    new = helm_rollback(
        plan_from(BEFORE),
        source=FakeSecrets(secrets_of(*AFTER)),
        timeout_seconds=5,
        helm=fake_helm(),
    )
    assert new.number == 4
    assert fake_helm.calls() == []


def test_a_release_changed_since_the_plan_is_not_rolled_back(fake_helm):
    upgraded = [*BEFORE, release_json(4, "deployed", description="Upgrade complete")]
    with pytest.raises(ReleaseChanged, match="newest revision is now 4"):
        helm_rollback(
            plan_from(BEFORE),
            source=FakeSecrets(secrets_of(*upgraded)),
            timeout_seconds=5,
            helm=fake_helm(),
        )
    assert fake_helm.calls() == []


def test_a_release_gone_pending_since_the_plan_is_not_rolled_back(fake_helm):
    pending = [*BEFORE, release_json(4, "pending-upgrade")]
    with pytest.raises(ReleasePending):
        helm_rollback(
            plan_from(BEFORE),
            source=FakeSecrets(secrets_of(*pending)),
            timeout_seconds=5,
            helm=fake_helm(),
        )
    assert fake_helm.calls() == []


def test_helm_success_without_a_deployed_new_revision_is_a_failed_rollout(fake_helm):
    failed = [*BEFORE, release_json(4, "failed", description="Rollback to 2 failed")]
    source = FakeSecrets(secrets_of(*BEFORE), secrets_of(*failed))
    with pytest.raises(RolloutFailed, match="left revision 4 failed"):
        helm_rollback(plan_from(BEFORE), source=source, timeout_seconds=5, helm=fake_helm())


def test_a_missing_helm_binary_is_reported_before_anything_says_helm_is_running():
    from bot.config import RollbotConfig
    from bot.strategies import Context, HelmSettings, get

    told: list[str] = []

    class Told:
        def milestone(self, text: str) -> None:
            told.append(text)

        def rollout(self, workload: str, state: object) -> None:
            told.append(workload)

    ctx = Context(
        kube=None,  # type: ignore[arg-type]
        config=RollbotConfig(),
        timeout=5,
        helm=HelmSettings(binary="/nonexistent/helm"),
    )
    pins = {"release": REL, "current": "3", "target": "2"}
    with pytest.raises(helm.HelmNotFound, match="ROLLBOT_HELM"):
        get("helm").apply(ctx, NS, pins, "cause", Told())  # type: ignore[arg-type]
    assert told == []
