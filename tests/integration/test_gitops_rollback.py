"""GitOps-aware rollback against the real Flux controllers (testbed/flux.py) and
Argo CD's Application CRD, from Slack: reconciliation held as a step of the
approved rollback, the rollback lasting across several intervals, Resume putting
back exactly the recorded setting, and Git made to match so that resuming keeps
the good version. And the refusals: policy, a missing owner, no right to patch.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from bot.config import RollbotConfig
from bot.errors import PermanentError
from bot.gitops.holds import ReconciliationHold
from bot.gitops.planning import plan_gitops
from bot.kube import Kube
from bot.records import RollbackRecord, RollbackState, requested
from handlers.ids import ActionId
from testbed.argocd import ArgoCd, tracking_id
from testbed.controlplane import ControlPlane
from testbed.flux import Flux, FluxApp
from tests.integration.conftest import FLUX_GIT_TOKEN
from tests.integration.slack_helpers import (
    ALICE,
    BOB,
    CHANNEL,
    SlackUser,
    confirmation,
    delivered,
    final,
    wait_for,
)

pytestmark = pytest.mark.cluster
S = RollbackState
#: The Kustomizations' interval, in seconds: short, so a test sees several.
INTERVAL = 5
GOOD, BAD = "registry.local/web:v1", "registry.local/web:v2"


def released_bad_version(flux: Flux, namespace: str) -> FluxApp:
    """v1 deployed by Flux from Git, then v2 (the bad release) committed and applied."""
    app = flux.deploy_app(namespace, "web", image=GOOD, interval=f"{INTERVAL}s")
    app.release(BAD)
    return app


def config(namespace: str, **entry: Any) -> RollbotConfig:
    return RollbotConfig.model_validate(
        {
            "argocd_namespace": namespace,
            "follow_up_minutes": [],
            "services": {"web": {"namespace": namespace, **entry}},
        }
    )


def thread_texts(slack, ts: str) -> list[str]:
    return [m.text + json.dumps(m.blocks) for m in slack.thread(CHANNEL, ts)]


def find_button(slack, ts: str, action: ActionId) -> dict[str, Any] | None:
    """A button in the thread (an actions block's element or a section's accessory)."""
    for message in reversed(slack.thread(CHANNEL, ts)):
        for block in message.blocks:
            for element in [*block.get("elements", []), block.get("accessory") or {}]:
                if element.get("action_id") == action:
                    return {**element, "ts": message.ts}
    return None


def roll_back(bot, slack) -> RollbackRecord:
    SlackUser(bot.url, ALICE).command("web")
    record_id, ts = confirmation(slack)
    SlackUser(bot.url, BOB).click(ActionId.APPROVE, record_id, ts)
    return final(bot.store, record_id)


def resume_from_thread(bot, slack, record: RollbackRecord) -> str:
    """Resume… on the outcome, then Resume reconciliation under the question; the
    question's text."""
    ts = record.thread_ts
    assert ts is not None
    resume = wait_for("Resume…", lambda: find_button(slack, ts, ActionId.RESUME))
    SlackUser(bot.url, BOB).click(ActionId.RESUME, record.id, resume["ts"])
    confirm = wait_for("the question", lambda: find_button(slack, ts, ActionId.RESUME_CONFIRM))
    question = next(t for t in thread_texts(slack, ts) if "Resume reconciliation held" in t)
    SlackUser(bot.url, BOB).click(ActionId.RESUME_CONFIRM, record.id, confirm["ts"])
    wait_for("the resume", lambda: not bot.store.get(record.id).holding)
    # The record is written before its thread line is queued: wait for the line itself.
    wait_for(
        "the thread's resume line",
        lambda: any("Reconciliation resumed by" in t for t in thread_texts(slack, ts)),
    )
    delivered(bot.store)
    return question


def stays(app: FluxApp, image: str, seconds: float) -> None:
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        assert app.image() == image, f"Flux changed the image to {app.image()}"
        time.sleep(0.5)


def test_rollbot_suspends_the_kustomization_first_and_the_rollback_holds(
    flux: Flux, make_bot, slack, namespace: str
) -> None:
    app = released_bad_version(flux, namespace)
    bot = make_bot(config(namespace))
    SlackUser(bot.url, ALICE).command("web")
    record_id, ts = confirmation(slack)
    shown = json.dumps(slack.thread(CHANNEL, ts)[0].blocks)
    assert (
        f"managed by Flux Kustomization {namespace}/web (every {INTERVAL}s, from GitRepository "
        f"{namespace}/web): a rollback alone is reverted within {INTERVAL}s"
    ) in shown
    assert "first hold reconciliation" in shown

    SlackUser(bot.url, BOB).click(ActionId.APPROVE, record_id, ts)
    record = final(bot.store, record_id)
    assert record.state is S.SUCCEEDED, record.timeline
    (hold,) = record.holds
    assert hold.previous == json.dumps({"suspend": False}) and hold.held
    assert app.kustomization()["spec"]["suspend"] is True
    # Held before the rollback was applied: the timeline says so in that order.
    steps = [e.message for e in record.timeline]
    held_at = next(i for i, m in enumerate(steps) if m.startswith("reconciliation held"))
    assert held_at < next(i for i, m in enumerate(steps) if m.startswith("applied"))
    assert any("Reconciliation held since" in t for t in thread_texts(slack, ts))

    stays(app, GOOD, 4 * INTERVAL)  # several intervals: Flux leaves it alone

    question = resume_from_thread(bot, slack, record)
    assert "restores spec.suspend: false" in question
    assert "resuming brings the bad version back" in question
    assert app.kustomization()["spec"]["suspend"] is False  # exactly as recorded
    assert any("Reconciliation resumed by U0BOB" in t for t in thread_texts(slack, ts))
    # And it was true: with Git unchanged, Flux puts the bad version back.
    app.wait_rolled_out(BAD, timeout=3 * INTERVAL + 30)


def test_with_the_git_commit_made_flux_keeps_the_good_version_after_resuming(
    flux: Flux, make_bot, slack, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = released_bad_version(flux, namespace)
    monkeypatch.setenv("ROLLBOT_TEST_GIT_TOKEN", FLUX_GIT_TOKEN)
    git = {
        "repository": app.repo.url,
        "branch": app.repo.branch,
        "path": app.path,
        "token_env": "ROLLBOT_TEST_GIT_TOKEN",
    }
    bot = make_bot(config(namespace, git=git))
    record = roll_back(bot, slack)
    assert record.state is S.SUCCEEDED, record.timeline

    committed = wait_for("the commit", lambda: bot.store.get(record.id).holds[0].git_commit)
    assert app.repo.head() == committed
    assert f"image: {GOOD}" in app.repo.read(app.manifest_path)
    ts = record.thread_ts
    assert ts is not None
    # The commit is written on the record, then its line queued: wait for the line.
    wait_for(
        "the commit's line",
        lambda: any(f"committed as {committed[:12]}" in t for t in thread_texts(slack, ts)),
    )
    delivered(bot.store)
    texts = thread_texts(slack, ts)
    assert not any(FLUX_GIT_TOKEN in t for t in texts)
    assert FLUX_GIT_TOKEN not in bot.store.get(record.id).model_dump_json()

    flux.wait_ready(namespace, "web", kind="GitRepository", revision=flux.revision(app.repo))
    question = resume_from_thread(bot, slack, record)
    assert "resuming keeps it" in question
    stays(app, GOOD, 4 * INTERVAL)
    status = app.kustomization()["status"]
    assert status["lastAppliedRevision"] == flux.revision(app.repo, committed)


def test_argo_cd_sync_policy_is_recorded_turned_off_and_restored_exactly(
    argocd: ArgoCd, make_bot, slack, workloads, namespace: str
) -> None:
    policy = {
        "automated": {"prune": False, "selfHeal": True, "allowEmpty": True},
        "syncOptions": ["CreateNamespace=true"],
        "retry": {"limit": 2},
    }
    argocd.create_application(
        namespace, "web", repo_url="http://127.0.0.1:1/apps.git", path="apps/web", policy=policy
    )
    track = {"argocd.argoproj.io/tracking-id": tracking_id("web", "Deployment", namespace, "web")}
    workloads.create("web", [GOOD, BAD], annotations=track)
    bot = make_bot(config(namespace))
    record = roll_back(bot, slack)
    assert record.state is S.SUCCEEDED, record.timeline
    (hold,) = record.holds
    assert json.loads(hold.previous or "") == {"automated": policy["automated"]}
    held = argocd.get_application(namespace, "web")["spec"]["syncPolicy"]
    assert held == {"syncOptions": ["CreateNamespace=true"], "retry": {"limit": 2}}

    resume_from_thread(bot, slack, record)
    assert argocd.get_application(namespace, "web")["spec"]["syncPolicy"] == policy


def test_policy_forbid_refuses_and_leaves_flux_alone(
    flux: Flux, make_bot, slack, namespace: str
) -> None:
    app = released_bad_version(flux, namespace)
    forbid = config(namespace).model_copy(
        update={
            "environments": RollbotConfig.model_validate(
                {"environments": {"prod": {"namespaces": [namespace], "gitops": "forbid"}}}
            ).environments
        }
    )
    bot = make_bot(forbid)
    SlackUser(bot.url, ALICE).command("web")
    record = wait_for(
        "the refusal", lambda: next((r for r in bot.store.recent(5) if r.state.terminal), None)
    )
    assert record.state is S.FAILED
    assert "policy in prod forbids rollbot to hold its reconciliation" in (record.error or "")
    assert app.kustomization()["spec"]["suspend"] is False
    assert app.image() == BAD


def test_a_missing_owner_is_refused_where_policy_requires_a_hold(
    kube: Kube, workloads, namespace: str
) -> None:
    workloads.create("web", [GOOD, BAD])
    workloads.patch(
        "web",
        {
            "metadata": {
                "labels": {
                    "kustomize.toolkit.fluxcd.io/name": "gone",
                    "kustomize.toolkit.fluxcd.io/namespace": namespace,
                }
            }
        },
    )
    required = RollbotConfig.model_validate(
        {"environments": {"prod": {"namespaces": [namespace], "gitops": "require"}}}
    )
    with pytest.raises(PermanentError, match=f"Kustomization {namespace}/gone.*does not exist"):
        plan_gitops(kube, required, namespace, [kube.get_deployment(namespace, "web")])
    # Under the default policy it is only said.
    said = plan_gitops(kube, RollbotConfig(), namespace, [kube.get_deployment(namespace, "web")])
    assert said.holds == () and "which does not exist" in said.facts[0]


def _kube_as(
    kube: Kube, control_plane: ControlPlane, namespace: str, rules: list[Any], tmp: Path
) -> Kube:
    """A Kube authenticated as a new ServiceAccount of `namespace` granted `rules` there."""
    rbac = client.RbacAuthorizationV1Api(kube.api_client)
    kube.core.create_namespaced_service_account(namespace, {"metadata": {"name": "rollbot"}})
    rbac.create_namespaced_role(namespace, {"metadata": {"name": "rollbot"}, "rules": rules})
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "rollbot"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "rollbot"},
            "subjects": [{"kind": "ServiceAccount", "name": "rollbot", "namespace": namespace}],
        },
    )
    token = kube.core.create_namespaced_service_account_token(
        "rollbot", namespace, {"spec": {"expirationSeconds": 600}}
    ).status.token
    config_file = yaml.safe_load(control_plane.kubeconfig.read_text())
    config_file["users"] = [{"name": "rollbot", "user": {"token": token}}]
    for context in config_file["contexts"]:
        context["context"]["user"] = "rollbot"
    path = tmp / "kubeconfig-rollbot"
    path.write_text(yaml.safe_dump(config_file))
    return Kube.from_kubeconfig(str(path))


def test_without_the_right_to_patch_the_kustomization_it_is_refused_before_approval(
    flux: Flux, kube: Kube, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    app = released_bad_version(flux, namespace)
    rules = [
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]},
        {
            "apiGroups": ["kustomize.toolkit.fluxcd.io"],
            "resources": ["kustomizations"],
            "verbs": ["get"],
        },
    ]
    limited = _kube_as(kube, control_plane, namespace, rules, tmp_path)
    workload = limited.get_deployment(namespace, "web")
    with pytest.raises(PermanentError, match="may not change it.*rbac.gitops"):
        plan_gitops(limited, RollbotConfig(), namespace, [workload])
    assert app.kustomization()["spec"]["suspend"] is False


def test_resume_by_command_is_declared_checked_and_asks_first(
    make_bot, slack, workloads, namespace: str
) -> None:
    """`/rollback resume ID`: refused to one who may not approve there; for one who
    may, the question in the thread first, and nothing resumed until it is answered."""
    workloads.create("web", [GOOD])
    policy = {"environments": {"prod": {"namespaces": [namespace], "approvers": [BOB]}}}
    bot = make_bot(RollbotConfig.model_validate(policy))
    record = requested(namespace, "web", ALICE, channel=CHANNEL)
    hold = ReconciliationHold(
        kind="Kustomization",
        namespace=namespace,
        name="web",
        previous=json.dumps({"suspend": None}),
        held_at=datetime.now(UTC),
    )
    record = bot.store.create(record.model_copy(update={"holds": (hold,)}))

    refused = SlackUser(bot.url, ALICE).command(f"resume {record.id}").json()["text"]
    assert "only those who may approve rollbacks in prod may resume" in refused
    answer = SlackUser(bot.url, BOB).command(f"resume {record.id}").json()["text"]
    assert "Reading what Git holds" in answer
    question = wait_for(
        "the question",
        lambda: next(
            (m for m in slack.messages(CHANNEL) if "Resume reconciliation held" in m.text), None
        ),
    )
    assert "does not exist any more" in json.dumps(question.blocks)
    assert bot.store.get(record.id).holding, "asking resumes nothing"
