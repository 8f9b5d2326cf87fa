"""Blue-green, feature flags, emergency scale, traffic diversion and config restore
asked for in Slack: the same confirmation, approval, backup and report as an undo."""

from __future__ import annotations

import json

import pytest

from bot.config import RollbotConfig
from bot.records import RollbackRecord, RollbackState
from handlers.ids import ActionId
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
from tests.integration.strategy_helpers import (
    create_deployment,
    create_service,
    deployment_body,
    ips_of,
    read,
    served_ips,
    wait_served,
)

pytestmark = pytest.mark.cluster
S = RollbackState


def ask_and_approve(bot, slack, text: str) -> tuple[RollbackRecord, str]:
    """(the finished record, what its confirmation showed)."""
    SlackUser(bot.url, ALICE).command(text)
    record_id, ts = confirmation(slack)
    shown = json.dumps(slack.thread(CHANNEL, ts)[0].blocks, ensure_ascii=False)
    SlackUser(bot.url, BOB).click(ActionId.APPROVE, record_id, ts)
    return final(bot.store, record_id), shown


def colour(workloads, name: str, tag: str, replicas: int) -> None:
    labels = {"app": "jarvis", "color": name}
    container = {"name": "api", "image": f"jarvis:{tag}", "ports": [{"containerPort": 8080}]}
    create_deployment(workloads, deployment_body(f"jarvis-{name}", labels, replicas, [container]))


def test_blue_green_from_slack_switches_colour_and_the_next_one_switches_back(
    make_bot, slack, workloads
):
    colour(workloads, "blue", "v1", 0)
    colour(workloads, "green", "v2", 2)
    create_service(workloads, "jarvis", {"app": "jarvis", "color": "green"})
    wait_served(workloads, "jarvis", "color=green", 2)
    config = RollbotConfig.model_validate(
        {"services": {"jarvis": {"namespace": workloads.namespace, "strategy": "blue-green"}}}
    )
    bot = make_bot(config)

    record, shown = ask_and_approve(bot, slack, "jarvis --reason 'v2 breaks logins'")
    assert "Roll back jarvis?" in shown and "(blue-green)" in shown
    assert "Current: green (jarvis-green)" in shown and "Target: blue (jarvis-blue)" in shown
    assert "scale deployment jarvis-blue 0 → 2" in shown
    assert record.state is S.SUCCEEDED, record.timeline
    assert read(workloads, "service", "jarvis")["spec"]["selector"]["color"] == "blue"
    assert served_ips(workloads, "jarvis") == ips_of(workloads, "color=blue")
    assert bot.store.get_backup(record.id)["deployment"]["metadata"]["name"] == "jarvis-blue"

    back, shown = ask_and_approve(bot, slack, "jarvis")
    assert "Target: green (jarvis-green)" in shown
    assert back.state is S.SUCCEEDED, back.timeline
    assert read(workloads, "service", "jarvis")["spec"]["selector"]["color"] == "green"


def test_a_feature_flag_is_turned_off_from_slack(make_bot, slack, workloads):
    workloads.create("web", ["app:v1"])
    bot = make_bot()
    record, shown = ask_and_approve(
        bot, slack, f"web -n {workloads.namespace} --flag FEATURE_NEW_DASHBOARD=false"
    )
    assert "Set a feature flag on web?" in shown
    assert record.state is S.SUCCEEDED, record.timeline
    env = workloads.get("web")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "FEATURE_NEW_DASHBOARD", "value": "false"} in env


def test_an_emergency_scale_to_zero_and_back_from_slack(make_bot, slack, workloads):
    workloads.create("web", ["app:v1"], replicas=2)
    bot = make_bot()
    down, shown = ask_and_approve(bot, slack, f"web -n {workloads.namespace} --scale 0")
    assert "Scale web?" in shown and "scale back with --scale 2" in shown
    assert down.state is S.SUCCEEDED, down.timeline
    assert down.verify_checks is False
    assert workloads.get("web")["spec"]["replicas"] == 0

    up, _ = ask_and_approve(bot, slack, f"web -n {workloads.namespace} --scale 2")
    assert up.state is S.SUCCEEDED, up.timeline
    assert workloads.get("web")["status"]["availableReplicas"] == 2


def test_traffic_is_diverted_away_and_back_from_slack(make_bot, slack, workloads):
    labels = {"app": "backend", "serving": "true"}
    container = {"name": "api", "image": "backend:v1", "ports": [{"containerPort": 8080}]}
    body = deployment_body("backend", labels, 2, [container], selector={"app": "backend"})
    create_deployment(workloads, body)
    create_service(workloads, "backend", labels)
    ips = wait_served(workloads, "backend", "app=backend", 2)
    bot = make_bot()

    off, shown = ask_and_approve(bot, slack, f"backend -n {workloads.namespace} --traffic off")
    assert "Divert traffic of backend?" in shown
    assert off.state is S.SUCCEEDED, off.timeline
    assert served_ips(workloads, "backend") == set()

    on, _ = ask_and_approve(bot, slack, f"backend -n {workloads.namespace} --traffic on")
    assert on.state is S.SUCCEEDED, on.timeline
    assert served_ips(workloads, "backend") == ips


def test_config_is_restored_from_the_latest_backup_from_slack(make_bot, slack, workloads):
    workloads.core.create_namespaced_config_map(
        workloads.namespace, {"metadata": {"name": "web-config"}, "data": {"MODE": "safe"}}
    )
    reads_config = [{"configMapRef": {"name": "web-config"}}]
    workloads.create(
        "web",
        [
            {"containers": [{"name": "app", "image": f"app:{tag}", "envFrom": reads_config}]}
            for tag in ("v1", "v2")
        ],
    )
    bot = make_bot()
    first, _ = ask_and_approve(bot, slack, f"web -n {workloads.namespace}")
    assert first.state is S.SUCCEEDED, first.timeline
    workloads.core.patch_namespaced_config_map(
        "web-config", workloads.namespace, {"data": {"MODE": "fast"}}
    )

    restored, shown = ask_and_approve(bot, slack, f"web -n {workloads.namespace} --config latest")
    assert "Restore web?" in shown and f"backup of rollback {first.id}" in shown
    assert "configmap web-config: MODE changed" in shown
    assert restored.state is S.SUCCEEDED, restored.timeline
    assert read(workloads, "config_map", "web-config")["data"] == {"MODE": "safe"}


def test_a_restore_with_no_backup_to_restore_from_is_refused_to_the_requester(
    make_bot, slack, workloads
):
    workloads.create("web", ["app:v1"])
    bot = make_bot()
    SlackUser(bot.url, ALICE).command(f"web -n {workloads.namespace} --config latest")
    refusal = wait_for(
        "the refusal",
        lambda: [t for t in ephemerals(slack, ALICE) if "saved a backup" in t],
    )
    assert f"no earlier rollback of {workloads.namespace}/web saved a backup" in refusal[0]
