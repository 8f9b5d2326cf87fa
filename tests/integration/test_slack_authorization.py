"""Who may cancel, see and read what, and what quoted text looks like, as Slack
users meet it: signed requests to the running Bolt app, the local Slack Web API,
a real redis-server and the real control plane."""

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
    MALLORY,
    SlackUser,
    confirmation,
    ephemerals,
    final,
    wait_for,
)

pytestmark = pytest.mark.cluster
S = RollbackState


def guarded(namespace: str) -> RollbotConfig:
    """Alice may request in the namespace, Bob approve; Mallory neither."""
    return RollbotConfig.model_validate(
        {
            "environments": {
                "prod": {"namespaces": [namespace], "requesters": [ALICE], "approvers": [BOB]}
            }
        }
    )


def answer(bot, user: str, text: str) -> str:
    response = SlackUser(bot.url, user).command(text)
    assert response.status_code == 200
    return str(response.json()["text"])


def root_blocks(slack, ts: str) -> str:
    return json.dumps(slack.thread(CHANNEL, ts)[0].blocks, ensure_ascii=False)


def unchanged(bot, record: RollbackRecord) -> bool:
    return bot.store.get(record.id) == record


def test_status_lists_the_waiting_rollback_and_shows_one_by_id(make_bot, slack, workloads):
    workloads.create("web", ["app:v1", "app:v2"])
    bot = make_bot(guarded(workloads.namespace))
    SlackUser(bot.url, ALICE).command(f"web -n {workloads.namespace}")
    record_id, _ = confirmation(slack)
    listed = answer(bot, ALICE, "status")
    assert f"`{record_id}` {workloads.namespace}/web: *awaiting approval* — " in listed
    one = answer(bot, ALICE, f"status {record_id}")
    assert one.startswith(f"`{record_id}` {workloads.namespace}/web: *awaiting approval*")


def test_the_requester_cancels_by_command_and_the_confirmation_says_so(make_bot, slack, workloads):
    workloads.create("web", ["app:v1", "app:v2"])
    bot = make_bot(guarded(workloads.namespace))
    SlackUser(bot.url, ALICE).command(f"web -n {workloads.namespace}")
    record_id, ts = confirmation(slack)
    assert answer(bot, ALICE, f"cancel {record_id}") == f"Cancelled `{record_id}`."
    record = bot.store.get(record_id)
    assert record.state is S.CANCELLED
    assert record.timeline[-1].actor == ALICE
    wait_for("the buttons to go", lambda: "Approve" not in root_blocks(slack, ts))
    assert "cancelled by <@U0ALICE>" in root_blocks(slack, ts)
    assert workloads.images_of("web") == ["app:v2"]


def test_a_stranger_can_cancel_neither_by_command_nor_by_button(make_bot, slack, workloads):
    workloads.create("web", ["app:v1", "app:v2"])
    bot = make_bot(guarded(workloads.namespace))
    SlackUser(bot.url, ALICE).command(f"web -n {workloads.namespace}")
    record_id, ts = confirmation(slack)
    # The deliverer writes the thread onto the record just after posting the question.
    before = wait_for("the thread", lambda: (r := bot.store.get(record_id)).thread_ts and r)

    refused = answer(bot, MALLORY, f"cancel {record_id}")
    assert refused.startswith(":warning: only its requester and those who may approve")
    assert unchanged(bot, before)

    assert SlackUser(bot.url, MALLORY).click(ActionId.CANCEL, record_id, ts).status_code == 200
    told = wait_for("the refusal", lambda: ephemerals(slack, MALLORY))
    assert "may cancel" in told[-1]
    assert unchanged(bot, before)
    assert "Approve" in root_blocks(slack, ts), "the confirmation is still open"

    SlackUser(bot.url, BOB).click(ActionId.APPROVE, record_id, ts)
    assert final(bot.store, record_id).state is S.SUCCEEDED


def test_status_and_history_are_refused_outside_the_askers_namespaces(make_bot, slack, workloads):
    workloads.create("web", ["app:v1", "app:v2"])
    bot = make_bot(guarded(workloads.namespace))
    SlackUser(bot.url, ALICE).command(f"web -n {workloads.namespace}")
    record_id, _ = confirmation(slack)

    assert "shown only to people who may request a rollback" in answer(
        bot, MALLORY, f"status {record_id}"
    )
    listed = answer(bot, MALLORY, "status")
    assert record_id not in listed and listed.startswith("No rollbacks you may see")
    refused = answer(bot, MALLORY, f"history web -n {workloads.namespace}")
    assert f"history of namespace {workloads.namespace} is shown only" in refused

    assert "Reading the history" in answer(bot, ALICE, f"history web -n {workloads.namespace}")
    history = wait_for("alice's history", lambda: [t for t in ephemerals(slack, ALICE) if "•" in t])
    assert "app:v1" in history[-1]
    assert not [t for t in ephemerals(slack, MALLORY) if "•" in t], "no history job for mallory"


HOSTILE = "<!channel> <https://evil.example|Approved by SRE lead> & xoxb-1234-5678-abcdefgh"
ESCAPED = "&lt;!channel&gt; &lt;https://evil.example|Approved by SRE lead&gt; &amp; [redacted]"


# Markup Slack itself made (a real @channel, a link) is read as the person saw it: the
# link's address, not a label that could say anything.
AS_MARKUP = "@channel https://evil.example & [redacted]"
AS_MARKUP_ESCAPED = "@\u2060channel https://evil.example &amp; [redacted]"


@pytest.mark.parametrize(
    ("literal", "stored", "escaped"),
    [
        (False, AS_MARKUP, AS_MARKUP_ESCAPED),
        # Every < and > typed as a character: Slack sends them as entities, no markup.
        (True, HOSTILE.replace("xoxb-1234-5678-abcdefgh", "[redacted]"), ESCAPED),
    ],
    ids=["as-markup", "spelled-out"],
)
def test_a_hostile_reason_is_shown_escaped_in_the_confirmation(
    make_bot, slack, workloads, literal, stored, escaped
):
    workloads.create("web", ["app:v1", "app:v2"])
    bot = make_bot()
    SlackUser(bot.url, ALICE).command(
        f"web -n {workloads.namespace} --reason '{HOSTILE}'", literal=literal
    )
    record_id, ts = confirmation(slack)
    # Stored as the person typed it, but for the token, which is never stored.
    assert bot.store.get(record_id).reason == stored
    shown = root_blocks(slack, ts)
    assert f"Requested by <@U0ALICE>: {escaped}" in shown
    everything = json.dumps([(m.text, m.blocks) for m in slack.messages()], ensure_ascii=False)
    assert "<!channel>" not in everything and "<https://evil.example" not in everything
    assert "xoxb-1234" not in everything


def test_a_dry_run_from_slack_shows_the_plan_and_changes_nothing(make_bot, slack, workloads):
    workloads.create("web", ["app:v1", "app:v2"])
    bot = make_bot()
    assert "Assessing" in answer(bot, ALICE, f"web -n {workloads.namespace} --dry-run")
    record = final(bot.store, wait_for("the record", lambda: bot.store.recent())[0].id)
    assert record.state is S.CANCELLED and record.timeline[-1].message.startswith("dry run")
    assert record.thread_ts is not None
    shown = root_blocks(slack, record.thread_ts)
    assert "container app: image: app:v2 → app:v1" in shown
    assert "Approve" not in shown
    assert workloads.images_of("web") == ["app:v2"]
    assert sorted(workloads.revisions("web")) == [1, 2]


def test_a_typed_restore_puts_back_what_a_rollback_saved(make_bot, slack, workloads):
    workloads.create("web", ["app:v1", "app:v2"])
    bot = make_bot()
    SlackUser(bot.url, ALICE).command(f"web -n {workloads.namespace}")
    first_id, ts = confirmation(slack)
    SlackUser(bot.url, BOB).click(ActionId.APPROVE, first_id, ts)
    assert final(bot.store, first_id).state is S.SUCCEEDED
    assert workloads.images_of("web") == ["app:v1"]

    assert "(restore)" in answer(bot, ALICE, f"web -n {workloads.namespace} --restore {first_id}")
    restore_id, ts = confirmation(slack)
    assert restore_id != first_id
    assert "Restore web?" in root_blocks(slack, ts)
    SlackUser(bot.url, BOB).click(ActionId.APPROVE, restore_id, ts)
    restored = final(bot.store, restore_id)
    assert restored.state is S.SUCCEEDED, restored.timeline
    assert restored.strategy == "restore" and restored.options["backup"] == first_id
    assert workloads.images_of("web") == ["app:v2"]
