"""A Helm release (todo-app) rolled back from Slack and from the CLI: the history
shown, the last good revision chosen over a failed one, `helm rollback --wait`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import RollbotConfig
from bot.records import RollbackState
from bot.strategies import HelmSettings
from handlers.ids import ActionId
from testbed import binaries
from tests.integration.slack_helpers import (
    ALICE,
    BOB,
    CHANNEL,
    SlackUser,
    confirmation,
    ephemerals,
    final,
    wait_for,
)

pytestmark = pytest.mark.cluster

CHART = Path(__file__).parent / "charts" / "todo-app"


class Helm:
    def __init__(self, kubeconfig: str, namespace: str) -> None:
        self.binary = str(binaries.testbed_binaries() / "helm")
        self.kubeconfig, self.namespace = kubeconfig, namespace

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.binary, *args, "-n", self.namespace, "--kubeconfig", self.kubeconfig],
            capture_output=True,
            text=True,
            timeout=180,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed: {result.stderr}")
        return result

    def deploy(self, tag: str, *, wait: str = "60s") -> subprocess.CompletedProcess[str]:
        return self.run(
            "upgrade",
            "--install",
            "todo-app",
            str(CHART),
            "--set",
            f"tag={tag}",
            "--wait",
            "--timeout",
            wait,
            check="broken" not in tag,
        )

    def history(self) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = json.loads(
            self.run("history", "todo-app", "-o", "json").stdout
        )
        return rows


@pytest.fixture
def helm(control_plane, namespace: str) -> Helm:
    """todo-app through 1.0.0, 1.1.0 and a failed 1.2.0-broken (revisions 1-3)."""
    tool = Helm(str(control_plane.kubeconfig), namespace)
    tool.deploy("1.0.0")
    tool.deploy("1.1.0")
    failed = tool.deploy("1.2.0-broken", wait="12s")
    assert failed.returncode != 0
    assert [row["status"] for row in tool.history()] == ["superseded", "deployed", "failed"]
    return tool


def todo_app(namespace: str) -> RollbotConfig:
    return RollbotConfig.model_validate(
        {"services": {"todo-app": {"namespace": namespace, "strategy": "helm"}}}
    )


def image(workloads) -> str:
    return str(workloads.images_of("todo-backend")[0]).rsplit(":", 1)[1]


def test_a_helm_release_rolls_back_from_slack_to_the_last_good_revision(
    make_bot, slack, helm, workloads
):
    bot = make_bot(todo_app(helm.namespace), helm=HelmSettings(helm.binary, helm.kubeconfig))
    SlackUser(bot.url, ALICE).command("history todo-app")
    history = wait_for("the history", lambda: ephemerals(slack, ALICE)[-1:])
    assert history[0].startswith(f"Helm release todo-app in {helm.namespace}")
    assert "• 2 deployed todo-app-0.1.0 (app 1.0.0)" in history[0]

    SlackUser(bot.url, ALICE).command("todo-app --reason 'login broken'")
    record_id, ts = confirmation(slack)
    shown = json.dumps(slack.thread(CHANNEL, ts)[0].blocks, ensure_ascii=False)
    assert "Current: helm revision 3 (failed)" in shown
    assert "Target: helm revision 2 (todo-app-0.1.0)" in shown
    assert "3 failed todo-app-0.1.0 (app 1.0.0)" in shown and "← target" in shown
    assert (
        "todo-backend: backend registry.example/todo-backend:1.2.0-broken → "
        "registry.example/todo-backend:1.1.0"
    ) in shown
    assert "values differ: tag" in shown

    SlackUser(bot.url, BOB).click(ActionId.APPROVE, record_id, ts)
    record = final(bot.store, record_id, timeout=150)
    assert record.state is RollbackState.SUCCEEDED, record.timeline
    assert record.strategy == "helm" and record.pins["target"] == "2"
    newest = helm.history()[-1]
    assert (newest["revision"], newest["status"], newest["description"]) == (
        4,
        "deployed",
        "Rollback to 2",
    )
    assert image(workloads) == "1.1.0"
    transcript = [m.text for m in slack.messages(CHANNEL)]
    assert any(t.startswith("Running helm rollback todo-app 2 --wait") for t in transcript)
    assert any("rolled back to revision 2: now revision 4, deployed" in t for t in transcript)
    assert bot.store.get_backup(record_id)["deployment"]["metadata"]["name"] == "todo-backend"


def rollbot_cli(
    control_plane, *args: str, config: Path, helm: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KUBECONFIG": str(control_plane.kubeconfig),
        "ROLLBOT_ACTOR": "ci-job",
        "ROLLBOT_CONFIG": str(config),
    }
    env.pop("ROLLBOT_HELM", None)
    if helm is not None:
        env["ROLLBOT_HELM"] = helm
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=200,
    )


def test_a_helm_release_rolls_back_from_the_cli_and_a_dry_run_changes_nothing(
    control_plane, helm, workloads, tmp_path
):
    config = tmp_path / "rollbot.yaml"
    config.write_text(todo_app(helm.namespace).model_dump_json())
    helm_flag = ["--helm", helm.binary]

    history = rollbot_cli(control_plane, "history", "todo-app", config=config)
    assert history.returncode == 0, history.stderr
    assert f"Helm release todo-app in {helm.namespace}" in history.stdout
    assert "• 3 failed todo-app-0.1.0 (app 1.0.0) — Upgrade" in history.stdout

    dry = rollbot_cli(control_plane, "rollback", "todo-app", "--dry-run", *helm_flag, config=config)
    assert dry.returncode == 0, dry.stderr
    assert "helm release todo-app" in dry.stdout
    assert "target:  helm revision 2" in dry.stdout and "dry run: nothing was changed" in dry.stdout
    assert "Release history:" in dry.stdout
    assert "*" not in dry.stdout and "`" not in dry.stdout, "no Slack mrkdwn on a terminal"
    assert len(helm.history()) == 3

    missing = rollbot_cli(
        control_plane, "rollback", "todo-app", "--yes", config=config, helm="/nonexistent/helm"
    )
    assert missing.returncode == 2, missing.stdout + missing.stderr
    assert "cannot run the helm binary '/nonexistent/helm'" in missing.stderr
    assert "Running helm rollback" not in missing.stdout, "checked before saying it runs"
    assert len(helm.history()) == 3

    # As the README says: $ROLLBOT_HELM names the binary (no --helm needed).
    done = rollbot_cli(
        control_plane, "rollback", "todo-app", "--yes", config=config, helm=helm.binary
    )
    assert done.returncode == 0, done.stderr
    assert "rolled back to revision 2: now revision 4, deployed" in done.stdout
    assert image(workloads) == "1.1.0"

    refused = rollbot_cli(
        control_plane,
        "rollback",
        "todo-app",
        "--to-revision",
        "3",
        "--yes",
        *helm_flag,
        config=config,
    )
    assert refused.returncode == 2
    assert "failed" in refused.stderr
    assert len(helm.history()) == 4, "nothing was changed"
