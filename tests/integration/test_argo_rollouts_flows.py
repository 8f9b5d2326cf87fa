"""The eli-maor runbook's Argo Rollouts canary rolled back end to end against the
real controller: from Slack (confirmation with the Rollout's state and analysis,
approval, backup, live thread, report) and from the CLI (`rollbot rollback --yes`,
and `--permanent`: the abort made permanent)."""

from __future__ import annotations

import json

import pytest

from bot.config import RollbotConfig
from bot.records import RollbackState
from handlers.ids import ActionId
from tests.integration.rollouts import Rollouts, canary_steps
from tests.integration.slack_helpers import (
    ALICE,
    BOB,
    CHANNEL,
    SlackUser,
    confirmation,
    final,
    wait_for,
)
from tests.integration.test_cli import rollbot
from tests.integration.test_cli_strategies import catalog

pytestmark = pytest.mark.cluster

V1, V2 = "registry.local/eli-backend:1.0", "registry.local/eli-backend:1.1"


def canary_failed_by_its_analysis(rollouts: Rollouts) -> None:
    """The runbook's canary: 1.1's analysis measures 0.5 (it needs 0.95); the
    controller aborts, and the spec still holds 1.1."""
    rollouts.create_canary("eli-maor-backend", V1)
    rollouts.metric.set(rollouts.metric_key("eli-maor-backend"), 0.5)
    rollouts.set_image("eli-maor-backend", V2)
    rollouts.wait_phase("eli-maor-backend", "Degraded")


def test_an_aborted_canary_is_rolled_back_from_slack_with_its_analysis_in_the_confirmation(
    make_bot, slack, rollouts
):
    canary_failed_by_its_analysis(rollouts)
    entry = {"namespace": rollouts.namespace, "strategy": "argo-rollouts"}
    bot = make_bot(
        RollbotConfig.model_validate(
            {
                "services": {"eli-maor": {**entry, "rollout": "eli-maor-backend"}},
                "follow_up_minutes": [0.02],
            }
        )
    )

    SlackUser(bot.url, ALICE).command("eli-maor")
    record_id, ts = confirmation(slack)
    shown = json.dumps(slack.thread(CHANNEL, ts)[0].blocks, ensure_ascii=False)
    assert "the update was aborted; its analysis Failed (success-rate measured 0.5)" in shown
    assert "success-rate Failed, measured 0.5" in shown
    assert "Fast rollback: revision 1 is the stable one" in shown
    SlackUser(bot.url, BOB).click(ActionId.APPROVE, record_id, ts)
    record = final(bot.store, record_id)

    assert record.state is RollbackState.SUCCEEDED, record.timeline
    rollouts.wait_healthy("eli-maor-backend")
    assert rollouts.images_of("eli-maor-backend") == [V1]
    thread = "\n".join(m.text for m in slack.thread(CHANNEL, ts))
    assert "Backup saved: rollout/eli-maor-backend" in thread
    assert "undone to revision 1" in thread
    backup = bot.store.get_backup(record_id)
    assert backup is not None and backup["rollout"]["metadata"]["name"] == "eli-maor-backend"
    report = next(
        f.content.decode() for f in slack.files() if f.filename.endswith("incident-report.md")
    )
    assert "rollout/eli-maor-backend" in report and "deployment/" not in report
    follow_up = wait_for(
        "the follow-up",
        lambda: next((m.text for m in slack.thread(CHANNEL, ts) if "Follow-up" in m.text), None),
    )
    assert "Follow-up +0.02 min: stable" in follow_up


def test_a_canary_paused_mid_way_is_aborted_from_the_cli(control_plane, rollouts, tmp_path):
    name = "eli-maor-backend"
    rollouts.create_canary(name, V1, steps=canary_steps(None, weight=50, pause=""), analysis=False)
    rollouts.set_image(name, V2)
    rollouts.wait_phase(name, "Paused")
    config = catalog(
        tmp_path, rollouts.namespace, **{"eli-maor": {"strategy": "argo-rollouts", "rollout": name}}
    )

    history = rollbot(control_plane, "--config", config, "history", "eli-maor")
    assert history.returncode == 0, history.stderr
    assert f"Argo Rollout {rollouts.namespace}/{name}: Paused (CanaryPauseStep)" in history.stdout
    assert "2 (canary) eli-backend:1.1" in history.stdout
    dry = rollbot(control_plane, "--config", config, "rollback", "eli-maor", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "abort the update to revision 2: traffic back to the stable revision 1" in dry.stdout
    done = rollbot(control_plane, "--config", config, "rollback", "eli-maor", "--yes")

    assert done.returncode == 0, done.stderr
    assert "rollout eli-maor-backend aborted: traffic back to the stable revision" in done.stdout
    assert rollouts.get(name)["status"]["abort"] is True


def test_permanent_aborts_a_paused_canary_and_undoes_its_spec_from_the_cli(
    control_plane, rollouts, tmp_path
):
    name = "eli-maor-backend"
    rollouts.create_canary(name, V1, steps=canary_steps(None, weight=50, pause=""), analysis=False)
    rollouts.set_image(name, V2)
    rollouts.wait_phase(name, "Paused")
    config = catalog(
        tmp_path,
        rollouts.namespace,
        **{"eli-maor": {"strategy": "argo-rollouts", "rollout": name}, "web": {}},
    )
    refused = rollbot(control_plane, "--config", config, "rollback", "web", "--permanent")
    assert refused.returncode == 2
    assert "web rolls back with undo, which has no abort" in refused.stderr

    rollback = ("--config", config, "rollback", "eli-maor", "--permanent")
    dry = rollbot(control_plane, *rollback, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert (
        "then make the abort permanent (asked with --permanent): spec.template of rollout "
        f"{name} → revision 1"
    ) in dry.stdout
    done = rollbot(control_plane, *rollback, "--yes")

    assert done.returncode == 0, done.stderr
    assert f"rollout {name} aborted: traffic back to the stable revision, then undone" in (
        done.stdout
    )
    healthy = rollouts.wait_healthy(name)
    assert rollouts.images_of(name) == [V1]
    assert healthy["status"].get("abort") is not True  # not Degraded: the update is gone


def test_permanent_from_slack_is_in_the_confirmation_and_refused_for_a_deployment(
    make_bot, slack, rollouts
):
    name = "eli-maor-backend"
    rollouts.create_canary(name, V1, steps=canary_steps(None, weight=50, pause=""), analysis=False)
    rollouts.set_image(name, V2)
    rollouts.wait_phase(name, "Paused")
    entry = {"namespace": rollouts.namespace, "strategy": "argo-rollouts", "rollout": name}
    bot = make_bot(
        RollbotConfig.model_validate(
            {"services": {"eli-maor": entry, "web": {"namespace": rollouts.namespace}}}
        )
    )

    refused = SlackUser(bot.url, ALICE).command("web --permanent").json()["text"]
    assert "web rolls back with undo, which has no abort" in refused
    SlackUser(bot.url, ALICE).command("eli-maor --permanent")
    record_id, ts = confirmation(slack)
    shown = json.dumps(slack.thread(CHANNEL, ts)[0].blocks, ensure_ascii=False)
    assert "then make the abort permanent (asked with --permanent)" in shown
    SlackUser(bot.url, BOB).click(ActionId.APPROVE, record_id, ts)
    record = final(bot.store, record_id)

    assert record.state is RollbackState.SUCCEEDED, record.timeline
    assert record.options == {"permanent": "true"}
    rollouts.wait_healthy(name)
    assert rollouts.images_of(name) == [V1]
