"""Every runbook's rollback from Slack: the same confirmation, approval, backup,
thread and report as a Deployment undo, and the ways out when one fails."""

from __future__ import annotations

import json
import time
from typing import Any

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

pytestmark = pytest.mark.cluster
S = RollbackState


def services(namespace: str, **entries: Any) -> RollbotConfig:
    return RollbotConfig.model_validate(
        {"services": {name: {"namespace": namespace, **entry} for name, entry in entries.items()}}
    )


def button(slack, ts: str, action: ActionId) -> dict[str, Any] | None:
    root = slack.thread(CHANNEL, ts)[0]
    for block in root.blocks:
        for element in block.get("elements", []):
            if element.get("action_id") == action:
                return dict(element)
    return None


def approve(bot, slack) -> RollbackRecord:
    record_id, ts = confirmation(slack)
    SlackUser(bot.url, BOB).click(ActionId.APPROVE, record_id, ts)
    return final(bot.store, record_id)


def test_a_service_of_several_deployments_rolls_back_as_one_from_slack(make_bot, slack, workloads):
    for name in ("backend", "worker", "beat"):
        workloads.create(name, [f"{name}:v1", f"{name}:v2"])
    bot = make_bot(
        services(
            workloads.namespace, **{"eli-maor": {"deployments": ["backend", "worker", "beat"]}}
        )
    )
    answer = SlackUser(bot.url, ALICE).command("eli-maor")
    assert "(components)" in answer.json()["text"]

    record_id, ts = confirmation(slack)
    shown = json.dumps(slack.thread(CHANNEL, ts)[0].blocks, ensure_ascii=False)
    assert "Current: backend r2, worker r2, beat r2" in shown
    assert "worker: container app: image: worker:v2 → worker:v1" in shown
    assert "backend: Rollout:" in shown and "beat: Pods:" in shown

    SlackUser(bot.url, BOB).click(ActionId.APPROVE, record_id, ts)
    record = final(bot.store, record_id)
    assert record.state is S.SUCCEEDED, record.timeline
    for name in ("backend", "worker", "beat"):
        assert workloads.images_of(name) == [f"{name}:v1"]
    # One live line per component, each ending rolled out (not one line they fight over).
    live = [m.text for m in slack.thread(CHANNEL, ts) if m.text.startswith(":arrows_")]
    assert sorted(t.split('"')[1] for t in live) == ["backend", "beat", "worker"]
    assert all("successfully rolled out" in t for t in live), live
    backup = bot.store.get_backup(record_id)
    assert set(backup["components"]) == {"backend", "worker", "beat"}
    report = wait_for(
        "the report",
        lambda: next(
            (
                f.content.decode()
                for f in slack.files()
                if f.filename.endswith("incident-report.md")
            ),
            None,
        ),
    )
    assert "deployment/backend, deployment/worker, deployment/beat" in report


def test_a_failed_component_offers_to_restore_the_pre_rollback_state(make_bot, slack, workloads):
    workloads.create("backend", ["backend:v1-broken", "backend:v2"], progress_deadline=4)
    workloads.create("worker", ["worker:v1", "worker:v2"])
    bot = make_bot(
        services(workloads.namespace, **{"eli-maor": {"deployments": ["backend", "worker"]}})
    )
    SlackUser(bot.url, ALICE).command("eli-maor")
    failed = approve(bot, slack)
    assert failed.state is S.FAILED
    assert (
        failed.error is not None
        and "backend:" in failed.error
        and "Rolled back: worker" in failed.error
    )
    assert workloads.images_of("worker") == ["worker:v1"]

    ts = failed.thread_ts
    assert ts is not None
    restore = wait_for("the restore button", lambda: button(slack, ts, ActionId.RESTORE))
    assert button(slack, ts, ActionId.ROLL_FURTHER) is None, "no revision to go further back to"
    SlackUser(bot.url, ALICE).click(ActionId.RESTORE, restore["value"], ts)
    assert any(
        "Assessing" in text for text in wait_for("the answer", lambda: ephemerals(slack, ALICE))
    )

    restored = approve(bot, slack)
    assert restored.state is S.SUCCEEDED, restored.timeline
    assert restored.strategy == "restore" and restored.options["backup"] == failed.id
    assert workloads.images_of("worker") == ["worker:v2"], "back to the state before the rollback"
    assert workloads.images_of("backend") == ["backend:v2"]


def test_an_unhealthy_result_offers_to_roll_back_further(make_bot, slack, workloads):
    from testbed.http_service import FakeService

    workloads.create("web", ["app:v1", "app:v2", "app:v3"])
    with FakeService(mode="failing") as service:
        config = services(
            workloads.namespace,
            web={
                "health_checks": [{"name": "health", "url": f"{service.url}/health"}],
                "verify_attempts": 1,
                "verify_interval_seconds": 0,
            },
        )
        bot = make_bot(config)
        SlackUser(bot.url, ALICE).command("web")
        unhealthy = approve(bot, slack)
        assert unhealthy.state is S.FAILED
        assert unhealthy.error is not None and unhealthy.error.startswith(
            "rolled back but unhealthy"
        )
        ts = unhealthy.thread_ts
        assert ts is not None
        further = wait_for("the further button", lambda: button(slack, ts, ActionId.ROLL_FURTHER))
        assert "before revision 2" in further["text"]["text"]

        SlackUser(bot.url, ALICE).click(ActionId.ROLL_FURTHER, unhealthy.id, ts)
        record_id, new_ts = confirmation(slack)
        shown = json.dumps(slack.thread(CHANNEL, new_ts)[0].blocks, ensure_ascii=False)
        assert "Target: revision 1" in shown
        service.mode = "healthy"
        SlackUser(bot.url, BOB).click(ActionId.APPROVE, record_id, new_ts)
        further_record = final(bot.store, record_id)
    assert further_record.state is S.SUCCEEDED, further_record.timeline
    assert workloads.images_of("web") == ["app:v1"]


def test_a_version_check_wants_the_target_images_version_after_the_rollback(
    make_bot, slack, workloads
):
    from testbed.http_service import FakeService

    workloads.create("web", ["app:1.4.0", "app:1.5.0"])
    with FakeService(version="1.5.0") as service:
        config = services(
            workloads.namespace,
            web={
                "version_check": {"url": f"{service.url}/api", "json_path": "version"},
                "verify_attempts": 1,
                "verify_interval_seconds": 0,
            },
        )
        bot = make_bot(config)
        SlackUser(bot.url, ALICE).command("web")
        stale = approve(bot, slack)
        assert stale.state is S.FAILED
        assert stale.error is not None
        assert "version is '1.5.0', expected '1.4.0'" in stale.error

        workloads.roll("web", "app:1.5.0")
        workloads.wait_complete("web")
        service.version = "v1.4.0"  # the old build answers, with a "v" in front
        SlackUser(bot.url, ALICE).command("web")
        good = approve(bot, slack)
    assert good.state is S.SUCCEEDED, good.timeline
    assert good.timeline[-1].message == "healthy: 2/2 replicas available, 1 checks passing"
    assert any("✓ version" in m.text for m in slack.messages(CHANNEL))


def test_a_monitor_recommendation_is_assessed_again_and_offers_the_rollback(
    make_bot, slack, workloads
):
    from testbed.container_logs import LOG_RATE_ENV

    def app(tag: str) -> dict[str, Any]:
        # Busy healthy pods: the crash-looping ones' error lines stay a small share of
        # the logs (a high share would make it "high: roll back now", not "monitor").
        env = [{"name": LOG_RATE_ENV, "value": "50"}]
        return {"containers": [{"name": "app", "image": f"app:{tag}", "env": env}]}

    workloads.create("web", [app("v1")], replicas=4)
    time.sleep(1)  # a second of access lines from each healthy pod
    workloads.roll("web", app("v2-broken"))
    workloads.wait_for(
        "web",
        lambda d: (d["status"].get("updatedReplicas") or 0) >= 2,
        "two new (crash-looping) pods",
    )
    config = services(workloads.namespace, web={"thresholds": {"monitor_minutes": 0.05}})
    bot = make_bot(config)
    SlackUser(bot.url, ALICE).command("web")
    record_id, ts = confirmation(slack)
    shown = json.dumps(slack.thread(CHANNEL, ts)[0].blocks, ensure_ascii=False)
    assert "Severity: *medium* — some failures: monitor" in shown
    SlackUser(bot.url, ALICE).click(ActionId.CANCEL, record_id, ts)  # they chose to watch

    def reassessed() -> Any:
        for message in slack.thread(CHANNEL, ts):
            if message.text.startswith("Re-assessed after 0.05 min: severity medium →"):
                return message
        return None

    message = wait_for("the re-assessment", reassessed, timeout=30)
    offer = message.blocks[-1]["elements"][0]
    assert offer["action_id"] == ActionId.REQUEST_AGAIN
    SlackUser(bot.url, BOB).click(ActionId.REQUEST_AGAIN, record_id, ts)
    again_id, _ = confirmation(slack)
    again = bot.store.get(again_id)
    assert again.id != record_id and again.requested_by == BOB
    assert again.reason.startswith(f"re-assessed after {record_id}")
