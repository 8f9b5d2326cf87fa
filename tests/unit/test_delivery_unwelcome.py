"""Where Slack will not take rollbot's messages for good, the outbox still empties,
the rollback is not held up, and the person who asked hears why and what to do."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from slack_sdk import WebClient
from slack_sdk.web import SlackResponse

from bot.outbox import Outbox, OutboxSink
from bot.records import RollbackRecord, RollbackState, requested
from bot.store import RollbackStore, connect
from handlers.app import slack_client
from handlers.delivery import OutboxDeliverer
from handlers.unwelcome import ResponseUrls
from testbed.slack_api import FakeSlackApi

CHANNEL, ALICE = "C0OPS", "U0ALICE"


@pytest.fixture(scope="module")
def embedded_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[redis.Redis]:
    client = connect(data_dir=Path(tmp_path_factory.mktemp("redis")))
    yield client
    client.close()


@pytest.fixture
def store(embedded_redis: redis.Redis) -> RollbackStore:
    embedded_redis.flushdb()
    return RollbackStore(embedded_redis)


@pytest.fixture
def slack() -> Iterator[FakeSlackApi]:
    with FakeSlackApi() as api:
        yield api


def deliver_all(store: RollbackStore, slack: FakeSlackApi, *, join: bool = False) -> None:
    deliverer = OutboxDeliverer(
        Outbox(store.redis),
        store,
        slack_client("xoxb-test", slack.base_url),
        join_channels=join,
    )
    deliverer.holder = "the-tests-deliverer"  # one deliverer across the calls of a test
    for _ in range(50):
        if deliverer.outbox.depth() == 0:
            return
        deliverer.deliver_next()
    raise AssertionError("the outbox did not empty")


def asked(store: RollbackStore, channel: str = CHANNEL) -> RollbackRecord:
    record = store.create(requested("prod", "web", ALICE, channel=channel))
    record = store.update(record.id, lambda r: r.transition(RollbackState.ASSESSED, "assessed"))
    return store.update(record.id, lambda r: r.transition(RollbackState.AWAITING_APPROVAL, "asked"))


def told(slack: FakeSlackApi, user: str = ALICE) -> list[str]:
    """What `user` read from rollbot outside the thread: ephemeral or in its DM."""
    return [m.text for m in slack.messages() if m.ephemeral_user == user or m.channel == f"D{user}"]


def test_a_question_in_a_private_channel_rollbot_is_not_in_is_cancelled_and_explained(
    store: RollbackStore, slack: FakeSlackApi
) -> None:
    slack.add_channel("G0SECRET", "secret", is_private=True, member=False)
    record = asked(store, "G0SECRET")
    ResponseUrls(store).keep(record.id, slack.response_url("G0SECRET", ALICE))
    OutboxSink(Outbox(store.redis)).confirmation(record)
    deliver_all(store, slack)
    assert store.get(record.id).state is RollbackState.CANCELLED
    [text] = told(slack)
    assert "/invite @rollbot" in text and "cancelled" in text
    assert slack.calls("response_url"), "told through the command's response_url"


def test_without_a_response_url_the_requester_is_told_in_a_direct_message(
    store: RollbackStore, slack: FakeSlackApi
) -> None:
    slack.add_channel("D0ALICEBOB", "", member=False)
    record = asked(store, "D0ALICEBOB")
    OutboxSink(Outbox(store.redis)).confirmation(record)
    deliver_all(store, slack)
    [text] = told(slack)
    assert "direct message between people" in text
    assert [m.channel for m in slack.messages()] == [f"D{ALICE}"]


def test_an_expired_response_url_falls_back_to_a_direct_message(
    store: RollbackStore, slack: FakeSlackApi
) -> None:
    slack.add_channel("G0SECRET", "secret", is_private=True, member=False)
    record = asked(store, "G0SECRET")
    ResponseUrls(store).keep(record.id, slack.response_url("G0SECRET", ALICE))
    slack.expire_response_urls()
    OutboxSink(Outbox(store.redis)).confirmation(record)
    deliver_all(store, slack)
    assert [m.channel for m in slack.messages()] == [f"D{ALICE}"]


def test_with_joining_allowed_rollbot_joins_a_public_channel_before_it_asks(
    store: RollbackStore, slack: FakeSlackApi
) -> None:
    slack.add_channel(CHANNEL, "ops", member=False)
    slack.scopes.add("channels:join")
    record = asked(store)
    OutboxSink(Outbox(store.redis)).confirmation(record)
    deliver_all(store, slack, join=True)
    assert slack.is_member(CHANNEL)
    assert store.get(record.id).thread_ts is not None
    assert store.get(record.id).state is RollbackState.AWAITING_APPROVAL


def test_an_archived_channel_is_said_once_and_the_rest_is_dropped(
    store: RollbackStore, slack: FakeSlackApi
) -> None:
    record = asked(store)
    sink = OutboxSink(Outbox(store.redis))
    sink.confirmation(record)
    deliver_all(store, slack)
    slack.archive_channel(CHANNEL)
    record = store.get(record.id)
    sink.milestone(record, "Backup saved")
    sink.milestone(record, "Rollback applied")
    sink.report(record, "RESOLVED", {"r.md": "report"})
    deliver_all(store, slack)
    [text] = told(slack)
    assert "archived" in text and f"/rollback status {record.id}" in text


def test_a_deleted_question_gets_a_new_message_the_thread_goes_on_under(
    store: RollbackStore, slack: FakeSlackApi
) -> None:
    record = asked(store)
    sink = OutboxSink(Outbox(store.redis))
    sink.confirmation(record)
    deliver_all(store, slack)
    old = store.get(record.id).thread_ts
    assert old is not None
    slack_client("xoxb-test", slack.base_url).chat_delete(channel=CHANNEL, ts=old)
    record = store.get(record.id)
    sink.milestone(record, "Backup saved")
    sink.milestone(record, "Rollback applied")
    deliver_all(store, slack)
    new = store.get(record.id).thread_ts
    assert new is not None and new != old
    thread = [m.text for m in slack.thread(CHANNEL, new)]
    assert "was deleted" in thread[0]
    assert thread[1:] == ["Backup saved", "Rollback applied"]


def test_an_incidents_channel_that_does_not_exist_is_said_in_the_thread(
    store: RollbackStore, slack: FakeSlackApi
) -> None:
    slack.delete_channel("C0NOWHERE")
    record = asked(store)
    sink = OutboxSink(Outbox(store.redis))
    sink.confirmation(record)
    sink.report(record, "RESOLVED: web", {"r.md": "report"}, announce_to="C0NOWHERE")
    deliver_all(store, slack)
    thread = store.get(record.id).thread_ts
    assert thread is not None
    texts = [m.text for m in slack.thread(CHANNEL, thread)]
    assert texts[1] == "RESOLVED: web"
    assert "incidents channel C0NOWHERE" in texts[2] and "does not exist" in texts[2]
    assert [f.filename for f in slack.files()] == ["r.md"]


def test_files_in_a_public_channel_rollbot_never_joined_are_explained(
    store: RollbackStore, slack: FakeSlackApi
) -> None:
    slack.add_channel(CHANNEL, "ops", member=False)  # chat:write.public posts; files need more
    record = asked(store)
    sink = OutboxSink(Outbox(store.redis))
    sink.confirmation(record)
    sink.report(record, "RESOLVED: web", {"r.md": "report"})
    deliver_all(store, slack)
    assert store.get(record.id).state is RollbackState.AWAITING_APPROVAL
    [text] = told(slack)
    assert "report files" in text and "/invite @rollbot" in text


def test_a_thread_that_cannot_be_carried_on_is_dropped_not_retried_forever(
    store: RollbackStore, slack: FakeSlackApi
) -> None:
    record = asked(store)
    sink = OutboxSink(Outbox(store.redis))
    sink.confirmation(record)
    deliver_all(store, slack)
    old = store.get(record.id).thread_ts
    assert old is not None
    slack_client("xoxb-test", slack.base_url).chat_delete(channel=CHANNEL, ts=old)
    slack.archive_channel(CHANNEL)  # and the new message cannot be posted either
    sink.milestone(store.get(record.id), "Backup saved")
    sink.milestone(store.get(record.id), "Rollback applied")
    deliver_all(store, slack)
    assert store.get(record.id).thread_ts == old
    [text] = told(slack)
    assert "archived" in text


def test_a_report_carried_to_a_new_thread_whose_files_are_refused_is_explained(
    store: RollbackStore, slack: FakeSlackApi
) -> None:
    record = asked(store)
    sink = OutboxSink(Outbox(store.redis))
    sink.confirmation(record)
    deliver_all(store, slack)
    old = store.get(record.id).thread_ts
    assert old is not None
    slack_client("xoxb-test", slack.base_url).chat_delete(channel=CHANNEL, ts=old)
    slack.remove_bot(CHANNEL)  # chat:write.public still posts; files take membership
    sink.report(store.get(record.id), "RESOLVED: web", {"r.md": "report"})
    deliver_all(store, slack)
    new = store.get(record.id).thread_ts
    assert new is not None and new != old
    assert [m.text for m in slack.thread(CHANNEL, new)][1:] == ["RESOLVED: web"]
    [text] = told(slack)
    assert "report files" in text


def test_joining_cannot_open_a_private_channel_so_its_requester_is_told_to_invite(
    store: RollbackStore, slack: FakeSlackApi
) -> None:
    slack.add_channel("G0SECRET", "secret", is_private=True, member=False)
    slack.scopes.add("channels:join")
    record = asked(store, "G0SECRET")
    OutboxSink(Outbox(store.redis)).confirmation(record)
    deliver_all(store, slack, join=True)
    assert slack.calls("conversations.join")[0].error == "channel_not_found"
    assert store.get(record.id).state is RollbackState.CANCELLED
    [text] = told(slack)
    assert "/invite @rollbot" in text


def test_an_answer_for_a_channel_rollbot_is_not_in_reaches_the_person_directly(
    store: RollbackStore, slack: FakeSlackApi
) -> None:
    slack.add_channel("G0SECRET", "secret", is_private=True, member=False)
    OutboxSink(Outbox(store.redis)).tell("G0SECRET", ALICE, "History of web: …")
    deliver_all(store, slack)
    assert [(m.channel, m.text) for m in slack.messages()] == [(f"D{ALICE}", "History of web: …")]


class CancelledWhilePosting(WebClient):
    """Slack's answer to the question arrives after the requester cancelled by command
    (which found no message to edit yet)."""

    def __init__(self, store: RollbackStore, record_id: str, base_url: str) -> None:
        super().__init__(token="xoxb-test", base_url=base_url)
        self.store, self.record_id = store, record_id

    def chat_postMessage(self, **kwargs: Any) -> SlackResponse:  # noqa: N802 (Slack's name)
        answer = super().chat_postMessage(**kwargs)
        if self.store.get(self.record_id).state.terminal:
            return answer
        self.store.update(
            self.record_id,
            lambda r: r.transition(RollbackState.CANCELLED, f"cancelled by {ALICE}", actor=ALICE),
        )
        return answer


def test_a_question_cancelled_while_it_was_being_posted_loses_its_buttons(
    store: RollbackStore, slack: FakeSlackApi
) -> None:
    record = asked(store)
    OutboxSink(Outbox(store.redis)).confirmation(record)
    deliverer = OutboxDeliverer(
        Outbox(store.redis), store, CancelledWhilePosting(store, record.id, slack.base_url)
    )
    deliverer.deliver_next()
    ended = store.get(record.id)
    assert ended.state is RollbackState.CANCELLED and ended.thread_ts
    root = slack.versions(CHANNEL, ended.thread_ts)[-1]
    assert "Approve" not in json.dumps(root.blocks)
    assert f"cancelled by <@{ALICE}>" in json.dumps(root.blocks)
