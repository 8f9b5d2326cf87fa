"""Slack as people really use it, end to end: signed requests to the running Bolt
app, a local Slack that refuses what Slack refuses (channels rollbot is not in,
archived ones, deleted messages), the real control plane and redis-server.

The text of a command as a phone sends it; a rollback asked where rollbot is not
welcome; an Enterprise Grid workspace."""

from __future__ import annotations

import json

import pytest

from bot.config import RollbotConfig
from bot.records import RollbackRecord, RollbackState
from handlers.ids import ActionId
from testbed.slack_api import FakeSlackApi
from testbed.slack_user import SlackUser
from tests.integration.slack_helpers import ALICE, BOB, CHANNEL, SECRET, final, wait_for

pytestmark = pytest.mark.cluster


def person(bot_url: str, user: str, channel: str = CHANNEL) -> SlackUser:
    return SlackUser(bot_url, user, channel, SECRET)


def question(slack: FakeSlackApi, channel: str = CHANNEL) -> tuple[str, str]:
    """(record id, ts) of the confirmation with its Approve button, once posted."""

    def find() -> tuple[str, str] | None:
        for message in slack.messages(channel):
            for block in message.blocks:
                for element in block.get("elements", []):
                    if element.get("action_id") == ActionId.APPROVE and not message.deleted:
                        return str(element["value"]), message.ts
        return None

    found: tuple[str, str] = wait_for(f"the confirmation in {channel}", find)
    return found


def only_record(bot) -> RollbackRecord:  # noqa: ANN001 (the fixture's server)
    records = wait_for("the record", lambda: bot.store.recent())
    assert len(records) == 1
    return records[0]


def told(slack: FakeSlackApi, user: str) -> list[str]:
    """What `user` read from rollbot outside a thread: ephemeral, or in its DM."""
    return [m.text for m in slack.messages() if m.ephemeral_user == user or m.channel == f"D{user}"]


# -- text as Slack delivers it ------------------------------------------------------------


def test_a_command_from_a_phone_reads_as_typed_and_its_reason_names_people(
    make_bot, slack, workloads
):
    workloads.create("web", ["app:v1", "app:v2"])
    slack.add_user("U0CAROL", name="carol", real_name="Carol Danvers")
    bot = make_bot()
    # Autocorrected dashes and quotes, & < > (Slack sends them escaped), a person and a
    # channel picked from the list.
    typed = (
        f"web –n {workloads.namespace} —reason “5xx & timeouts <50%>, "
        "paged <@U0CAROL|carol> in <#C0OPS|ops>”"
    )
    answer = person(bot.url, ALICE).command(typed)
    assert "Assessing" in answer.json()["text"], answer.json()
    record_id, ts = question(slack)
    assert bot.store.get(record_id).reason == "5xx & timeouts <50%>, paged @U0CAROL in #ops"
    root = json.dumps(slack.thread(CHANNEL, ts)[0].blocks, ensure_ascii=False)
    assert "5xx &amp; timeouts &lt;50%&gt;, paged <@U0CAROL> in #ops" in root

    person(bot.url, BOB).click(ActionId.APPROVE, record_id, ts)
    assert final(bot.store, record_id).state is RollbackState.SUCCEEDED
    files = wait_for("the report files", lambda: len(slack.files()) >= 3 and slack.files())
    report = {f.filename: f.content.decode() for f in files}[f"{record_id}-incident-report.md"]
    assert "paged @Carol Danvers in #ops" in report
    assert "&amp;" not in report and "5xx & timeouts <50%>" in report


def test_an_enterprise_grid_workspace_with_w_ids_in_a_shared_channel(make_bot, slack, workloads):
    workloads.create("web", ["app:v1", "app:v2"])
    shared = "C0SHAREDOPS"
    slack.add_channel(shared, "shared-incidents", shared=True)
    bot = make_bot()
    grid = {"enterprise_id": "E0GRID", "enterprise_name": "Grid", "is_enterprise_install": "false"}
    answer = person(bot.url, "W0ALICE", shared).command(f"web -n {workloads.namespace}", form=grid)
    assert "Assessing" in answer.json()["text"], answer.json()
    record_id, ts = question(slack, shared)
    assert "Requested by <@W0ALICE>" in json.dumps(slack.thread(shared, ts)[0].blocks)
    person(bot.url, "W0BOB", shared).click(ActionId.APPROVE, record_id, ts)
    record = final(bot.store, record_id)
    assert record.state is RollbackState.SUCCEEDED, record.timeline
    assert (record.requested_by, record.approved_by) == ("W0ALICE", "W0BOB")
    assert workloads.images_of("web") == ["app:v1"]


# -- where rollbot is not (yet) welcome ------------------------------------------------------


def test_a_rollback_asked_in_a_private_channel_rollbot_is_not_in_says_to_invite_it(
    make_bot, slack, workloads
):
    workloads.create("web", ["app:v1", "app:v2"])
    private = "G0SECRETOPS"
    slack.add_channel(private, "secret-ops", is_private=True, member=False)
    bot = make_bot()
    url = slack.response_url(private, ALICE)
    answer = person(bot.url, ALICE, private).command(
        f"web -n {workloads.namespace}", response_url=url
    )
    assert "Assessing" in answer.json()["text"], answer.json()
    [text] = wait_for("the answer through the response_url", lambda: told(slack, ALICE))
    assert "/invite @rollbot" in text and "private channel" in text
    assert slack.calls("response_url")[0].status == 200
    record = final(bot.store, only_record(bot).id)
    assert record.state is RollbackState.CANCELLED
    assert "could not be posted" in record.timeline[-1].message
    assert workloads.images_of("web") == ["app:v2"], "nothing was rolled back"
    assert [m for m in slack.messages(private) if m.ephemeral_user is None] == []


def test_rollbot_joins_a_public_channel_when_allowed_and_its_report_lands_there(
    make_bot, slack, workloads
):
    workloads.create("web", ["app:v1", "app:v2"])
    room = "C0NEWROOM"
    slack.add_channel(room, "new-room", member=False)
    slack.scopes.add("channels:join")  # the manifest's line uncommented
    bot = make_bot(RollbotConfig(join_public_channels=True))
    person(bot.url, ALICE, room).command(f"web -n {workloads.namespace}")
    record_id, ts = question(slack, room)
    assert slack.is_member(room) and slack.calls("conversations.join")
    person(bot.url, BOB, room).click(ActionId.APPROVE, record_id, ts)
    assert final(bot.store, record_id).state is RollbackState.SUCCEEDED
    files = wait_for("the report files", lambda: len(slack.files()) >= 3 and slack.files())
    assert {(f.channel, f.thread_ts) for f in files} == {(room, ts)}
    assert told(slack, ALICE) == []


def test_an_incidents_channel_that_does_not_exist_is_said_in_the_thread(make_bot, slack, workloads):
    workloads.create("web", ["app:v1", "app:v2"])
    slack.delete_channel("C0NOWHERE")
    bot = make_bot(RollbotConfig(incidents_channel="C0NOWHERE"))
    person(bot.url, ALICE).command(f"web -n {workloads.namespace}")
    record_id, ts = question(slack)
    person(bot.url, BOB).click(ActionId.APPROVE, record_id, ts)
    assert final(bot.store, record_id).state is RollbackState.SUCCEEDED
    said = wait_for(
        "the warning in the thread",
        lambda: [m.text for m in slack.thread(CHANNEL, ts) if "C0NOWHERE" in m.text],
    )
    assert "does not exist" in said[0] and "incidents_channel" in said[0]
    files = wait_for("the report files", lambda: len(slack.files()) >= 3 and slack.files())
    assert {f.thread_ts for f in files} == {ts}


def test_a_channel_archived_mid_rollback_is_said_once_and_the_rollback_finishes(
    make_bot, slack, workloads
):
    workloads.create("web", ["app:v1", "app:v2"])
    bot = make_bot()
    url = slack.response_url(CHANNEL, ALICE)
    person(bot.url, ALICE).command(f"web -n {workloads.namespace}", response_url=url)
    record_id, ts = question(slack)
    slack.archive_channel(CHANNEL)
    person(bot.url, BOB).click(ActionId.APPROVE, record_id, ts)
    assert final(bot.store, record_id).state is RollbackState.SUCCEEDED
    assert workloads.images_of("web") == ["app:v1"]
    [text] = wait_for("the requester told", lambda: told(slack, ALICE))
    assert "archived" in text and f"/rollback status {record_id}" in text


def test_a_deleted_confirmation_gets_a_new_message_and_the_thread_goes_on(
    make_bot, slack, workloads
):
    workloads.create("web", ["app:v1", "app:v2"])
    bot = make_bot()
    person(bot.url, ALICE).command(f"web -n {workloads.namespace}")
    record_id, ts = question(slack)
    person(bot.url, BOB).click(ActionId.APPROVE, record_id, ts)
    bot.app.client.chat_delete(channel=CHANNEL, ts=ts)  # someone tidies the channel up
    record = final(bot.store, record_id)
    assert record.state is RollbackState.SUCCEEDED
    assert record.thread_ts is not None and record.thread_ts != ts
    said = [str(c.args.get("text")) for c in slack.calls("chat.postMessage")]
    assert any("was deleted" in text for text in said), said
    # The new message is the rollback's now: it shows the outcome, the thread the rest.
    thread = slack.thread(CHANNEL, record.thread_ts)
    assert thread[0].text == "Roll back web: succeeded"
    assert any(m.text.startswith(f"Rollback {record_id} succeeded") for m in thread[1:])
    wait_for("the report", lambda: len(slack.files()) >= 3)
    assert {f.thread_ts for f in slack.files()} == {record.thread_ts}


def test_in_a_public_channel_rollbot_never_joined_clicks_and_files_are_still_answered(
    make_bot, slack, workloads
):
    """chat:write.public lets rollbot ask there, but not answer a click ephemerally
    nor share files: the clicker hears through the click's response_url, the
    requester about the files."""
    workloads.create("web", ["app:v1", "app:v2"])
    room = "C0OPENROOM"
    slack.add_channel(room, "open-room", member=False)
    bot = make_bot()
    person(bot.url, ALICE, room).command(
        f"web -n {workloads.namespace}", response_url=slack.response_url(room, ALICE)
    )
    record_id, ts = question(slack, room)
    person(bot.url, ALICE, room).click(
        ActionId.APPROVE, record_id, ts, response_url=slack.response_url(room, ALICE)
    )
    refusal = wait_for("the refusal of the self-approval", lambda: told(slack, ALICE))
    assert "someone else to approve" in refusal[0]
    person(bot.url, BOB, room).click(ActionId.APPROVE, record_id, ts)
    assert final(bot.store, record_id).state is RollbackState.SUCCEEDED
    assert workloads.images_of("web") == ["app:v1"]
    files_said = wait_for("the files explained", lambda: told(slack, ALICE)[1:])
    assert "report files" in files_said[0] and "/invite @rollbot" in files_said[0]
    assert slack.files() == [] and not slack.is_member(room)
