"""The rollback form as people use it, end to end: signed requests to the running
Bolt app, the local Slack API holding the views (and Slack's rules for them), a
real redis-server and the real control plane.

/rollback → the form → a service chosen → its revisions listed → submitted →
confirmation (Approve asks first in a protected environment) → approved → the
rollback → the report → App Home.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from bot.config import RollbotConfig
from bot.records import RollbackState
from handlers.ids import DRY_RUN, PERMANENT, ActionId, BlockId
from testbed.slack_api import FakeSlackApi
from testbed.slack_user import SlackUser
from tests.integration.slack_helpers import (
    ALICE,
    BOB,
    CHANNEL,
    SECRET,
    confirmation,
    ephemerals,
    final,
    wait_for,
)

pytestmark = pytest.mark.cluster


def person(bot: Any, user: str, slack: FakeSlackApi) -> SlackUser:
    return SlackUser(bot.url, user, CHANNEL, SECRET, slack=slack)


def block(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


def opened_form(slack: FakeSlackApi) -> dict[str, Any]:
    views = wait_for("the form to open", slack.views)
    return dict(views[-1])


def prod(namespace: str, **policy: Any) -> RollbotConfig:
    return RollbotConfig.model_validate(
        {
            "environments": {"prod": {"namespaces": [namespace], **policy}},
            "services": {"web": {"namespace": namespace}},
        }
    )


def test_the_form_from_slash_command_to_report_and_home(make_bot, slack, workloads):
    workloads.create("web", ["app:v1", "app:v2", "app:v3-broken"])
    bot = make_bot(prod(workloads.namespace, protected=True, reason_required=True))
    alice, bob = person(bot, ALICE, slack), person(bot, BOB, slack)

    answer = alice.command("")
    assert answer.status_code == 200 and not answer.content, "the form, not the usage"
    form = opened_form(slack)
    service = block(form, BlockId.FORM_SERVICE)
    assert [o["value"] for o in service["element"]["options"]] == ["web"]
    assert block(form, BlockId.FORM_TARGET)["type"] == "context", "no service chosen yet"

    chosen = alice.choose(
        form, BlockId.FORM_SERVICE, ActionId.FORM_SERVICE, {"form_service": "web"}
    )
    assert chosen.status_code == 200

    def targets_listed() -> dict[str, Any] | None:
        view = slack.view(form["id"])
        target = block(view, BlockId.FORM_TARGET)
        return view if target["type"] == "input" else None

    form = wait_for("the targets", targets_listed)
    target = block(form, BlockId.FORM_TARGET)["element"]
    assert [o["value"] for o in target["options"]] == ["2", "1"], "newest first, not the current"
    assert target["initial_option"]["value"] == "2", "what rollbot would choose"
    assert "rollbot's choice" in target["initial_option"]["text"]["text"]
    assert "app:v1" in target["options"][1]["description"]["text"]
    assert re.search(r"· (just now|\d+[mhd] ago)$", target["options"][1]["description"]["text"])
    assert block(form, BlockId.FORM_REASON)["optional"] is False, "prod asks for a reason"

    refused = alice.submit(form, {"form_service": "web", "form_target": "1"})
    assert refused.json()["response_action"] == "errors"
    assert "must say why" in refused.json()["errors"][BlockId.FORM_REASON]
    assert bot.store.recent(5) == [], "a refused form writes nothing"

    submitted = alice.submit(
        form, {"form_service": "web", "form_target": "1", "form_reason": "500s & timeouts"}
    )
    assert submitted.status_code == 200 and not submitted.content, "the form closes"
    assert "Assessing" in wait_for("the answer", lambda: ephemerals(slack, ALICE))[-1]

    record_id, root_ts = confirmation(slack)
    root = slack.thread(CHANNEL, root_ts)[0]
    approve = next(
        e
        for b in root.blocks
        for e in b.get("elements", [])
        if e.get("action_id") == ActionId.APPROVE
    )
    assert approve["confirm"]["text"]["text"] == "Roll back web in prod to revision 1?"

    assert bob.click(ActionId.APPROVE, record_id, root_ts).status_code == 200
    record = final(bot.store, record_id)
    assert record.state is RollbackState.SUCCEEDED, record.timeline
    assert (record.requested_by, record.reason, record.requested_revision) == (
        ALICE,
        "500s & timeouts",
        1,
    )
    assert workloads.images_of("web") == ["app:v1"]
    files = wait_for("the report", lambda: len(slack.files()) >= 3 and slack.files())
    report = {f.filename: f.content.decode() for f in files}[f"{record_id}-incident-report.md"]
    assert "500s & timeouts" in report

    assert alice.open_home().status_code == 200
    home = wait_for("the Home tab", lambda: slack.home(ALICE))
    outcomes = json.dumps(block(home, BlockId.HOME_OUTCOMES))
    assert record_id in outcomes and "succeeded" in outcomes
    assert f"https://slack.com/archives/{CHANNEL}/p{root_ts.replace('.', '')}" in outcomes
    assert "No rollback is in progress" in json.dumps(block(home, BlockId.HOME_RUNNING))


def test_the_shortcut_asks_for_the_channel_and_a_dry_run_changes_nothing(
    make_bot, slack, workloads
):
    workloads.create("web", ["app:v1", "app:v2"])
    bot = make_bot(prod(workloads.namespace))
    alice = person(bot, ALICE, slack)

    assert alice.shortcut("rollback_form").status_code == 200
    form = opened_form(slack)
    assert block(form, BlockId.FORM_CHANNEL)["element"]["type"] == "conversations_select"
    answers = {"form_service": "web", "form_channel": CHANNEL, "form_options": [DRY_RUN]}
    assert alice.submit(form, answers).status_code == 200

    [opened] = wait_for("the record", lambda: bot.store.recent(5))
    record = final(bot.store, opened.id)
    assert record.dry_run and record.state is RollbackState.CANCELLED, record.timeline
    assert record.channel == CHANNEL and record.thread_ts
    assert workloads.images_of("web") == ["app:v2"], "a dry run changes nothing"
    root = slack.thread(CHANNEL, record.thread_ts)[0]
    shown = json.dumps(root.blocks)
    assert "dry run: nothing was changed" in shown and "Approve" not in shown


def test_a_rollout_chosen_in_the_form_can_be_asked_to_stay_aborted(make_bot, slack, workloads):
    shop = {"namespace": workloads.namespace, "strategy": "argo-rollouts", "rollout": "shop"}
    bot = make_bot(RollbotConfig.model_validate({"services": {"shop": shop}}))
    alice = person(bot, ALICE, slack)
    alice.command("")
    form = opened_form(slack)
    options = block(form, BlockId.FORM_OPTIONS)["element"]["options"]
    assert [o["value"] for o in options] == [DRY_RUN], "no service chosen: nothing to abort"

    alice.choose(form, BlockId.FORM_SERVICE, ActionId.FORM_SERVICE, {"form_service": "shop"})

    def offered() -> dict[str, Any] | None:
        view = slack.view(form["id"])
        values = [o["value"] for o in block(view, BlockId.FORM_OPTIONS)["element"]["options"]]
        return view if PERMANENT in values else None

    form = wait_for("the permanent abort offered", offered)
    answers = {"form_service": "shop", "form_reason": "canary 5xx", "form_options": [PERMANENT]}
    submitted = alice.submit(form, answers)
    assert submitted.status_code == 200 and not submitted.content, "the form closes"
    [record] = wait_for("the record", lambda: bot.store.recent(5))
    assert (record.workload, record.strategy, record.options) == (
        "shop",
        "argo-rollouts",
        {"permanent": "true"},
    )


def test_a_form_opened_after_its_trigger_expired_is_refused_by_slack(make_bot, slack, workloads):
    """The local Slack holds the bot to Slack's rule: a trigger is good once."""
    bot = make_bot(prod(workloads.namespace))
    alice = person(bot, ALICE, slack)
    trigger = slack.issue_trigger()
    alice.command("", trigger_id=trigger)
    opened_form(slack)
    alice.command("", trigger_id=trigger)  # Slack never re-sends a used trigger: a replay
    wait_for("the second views.open", lambda: len(slack.calls("views.open")) >= 2)
    assert slack.calls("views.open")[-1].error == "exchanged_trigger_id"
    assert len(slack.views()) == 1
