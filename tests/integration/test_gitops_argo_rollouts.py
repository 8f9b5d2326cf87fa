"""An Argo Rollout that Flux reconciles from Git, rolled back from Slack against
the real Argo Rollouts and Flux controllers: Flux marks the Rollout as it marks a
Deployment, so the same assessment line, hold step and Resume apply (and the
same refusal from a terminal) — and without the hold, Flux would put the bad
template back within an interval."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from bot.config import RollbotConfig
from bot.records import RollbackState
from handlers.ids import ActionId
from testbed.flux import Flux
from testbed.git_http import GitRepo
from tests.integration.rollouts import Rollouts, is_healthy, rollout
from tests.integration.slack_helpers import ALICE, BOB, CHANNEL, SlackUser, confirmation, final
from tests.integration.test_cli import rollbot
from tests.integration.test_cli_strategies import catalog
from tests.integration.test_gitops_rollback import resume_from_thread, thread_texts

pytestmark = pytest.mark.cluster
S = RollbackState
#: The Kustomization's interval, in seconds: short, so a test sees several.
INTERVAL = 5
GOOD, BAD = "registry.local/web:v1", "registry.local/web:v2"


def commit_rollout(repo: GitRepo, image: str) -> str:
    """The Rollout `web` (a canary without steps: a new template is promoted at once)
    committed to Git with `image`."""
    body = rollout("web", image, {"canary": {"steps": []}})
    return repo.commit({"apps/web/rollout.yaml": yaml.safe_dump(body)}, f"web: {image}")


def released_bad_rollout(flux: Flux, rollouts: Rollouts) -> GitRepo:
    """The Rollout deployed by Flux from Git at GOOD, then BAD committed and applied
    (and promoted by the controller)."""
    namespace = rollouts.namespace
    repo = flux.git.create_repo(f"{namespace}-web")
    commit_rollout(repo, GOOD)
    flux.create_git_repository(namespace, "web", repo, f"{INTERVAL}s")
    flux.create_kustomization(
        namespace, "web", source="web", path="apps/web", interval=f"{INTERVAL}s"
    )
    flux.wait_ready(namespace, "web", revision=flux.revision(repo))
    rollouts.wait_healthy("web")
    rollouts._after_last_revision("web")  # revisions a second apart (see Rollouts)
    commit_rollout(repo, BAD)
    flux.sync(namespace, "web", repo)
    rollouts.wait("web", lambda r: is_healthy(r) and rollouts.images_of("web") == [BAD], "promoted")
    return repo


def stays(rollouts: Rollouts, image: str, seconds: float) -> None:
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        assert rollouts.images_of("web") == [image], "Flux changed the Rollout's template"
        time.sleep(0.5)


def test_a_rollout_flux_reconciles_is_held_first_and_resumed_exactly(
    flux: Flux, rollouts: Rollouts, make_bot, slack, control_plane, tmp_path: Path
) -> None:
    released_bad_rollout(flux, rollouts)
    namespace = rollouts.namespace
    labels = rollouts.get("web")["metadata"]["labels"]
    assert labels["kustomize.toolkit.fluxcd.io/name"] == "web"
    bot = make_bot(
        RollbotConfig.model_validate(
            {
                "follow_up_minutes": [],
                "services": {"web": {"namespace": namespace, "strategy": "argo-rollouts"}},
            }
        )
    )

    # A terminal keeps no record to resume from: it names the owner and refuses.
    config = catalog(tmp_path, namespace, web={"strategy": "argo-rollouts"})
    refused = rollbot(control_plane, "--config", config, "rollback", "web", "--yes")
    assert refused.returncode == 2, refused.stdout
    assert f"Flux Kustomization {namespace}/web would revert this rollback" in refused.stderr
    assert rollouts.images_of("web") == [BAD]

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
    assert flux.get(namespace, "web")["spec"]["suspend"] is True
    steps = [e.message for e in record.timeline]
    held_at = next(i for i, m in enumerate(steps) if m.startswith("reconciliation held"))
    assert held_at < next(i for i, m in enumerate(steps) if m.startswith("applied"))
    assert rollouts.images_of("web") == [GOOD]
    assert any("Reconciliation held since" in t for t in thread_texts(slack, ts))
    stays(rollouts, GOOD, 3 * INTERVAL)  # several intervals: Flux leaves it alone

    question = resume_from_thread(bot, slack, record)
    assert "restores spec.suspend: false" in question
    assert f"Running now: app={GOOD}" in question  # read from the Rollout
    assert "resuming brings the bad version back" in question
    assert flux.get(namespace, "web")["spec"]["suspend"] is False  # exactly as recorded
    # And it was true: with Git unchanged, Flux puts the bad template back.
    rollouts.wait(
        "web", lambda r: rollouts.images_of("web") == [BAD], "reverted", 3 * INTERVAL + 30
    )
