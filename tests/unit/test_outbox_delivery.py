"""The outbox and its deliverer against the local Slack Web API: messages
arrive in order and once, through outages, and a refused one does not hold
up the rest."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bot.outbox import Outbox, OutboxSink
from bot.progress import Tone
from bot.records import RollbackRecord, RollbackState, requested
from bot.store import RollbackStore, connect
from handlers.app import slack_client
from handlers.delivery import OutboxDeliverer
from testbed.slack_api import FakeSlackApi

CHANNEL = "C0OPS"


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


def _deliverer(store: RollbackStore, slack: FakeSlackApi) -> OutboxDeliverer:
    return OutboxDeliverer(Outbox(store.redis), store, slack_client("xoxb-test", slack.base_url))


def _record(store: RollbackStore) -> RollbackRecord:
    return store.create(requested("prod", "web", "U0ALICE", channel=CHANNEL))


def _drain(deliverer: OutboxDeliverer, tries: int = 50) -> None:
    """Deliver until the outbox is empty, as the loop would, without its waits."""
    for _ in range(tries):
        if deliverer.outbox.depth() == 0:
            return
        try:
            deliverer.deliver_next()
        except Exception:  # Slack away: the loop would wait and try again
            continue
    raise AssertionError(f"{deliverer.outbox.depth()} message(s) still waiting")


def test_messages_are_delivered_in_order_into_the_thread_the_question_started(
    store: RollbackStore, slack: FakeSlackApi
) -> None:
    record = _record(store)
    sink = OutboxSink(Outbox(store.redis))
    assert sink.confirmation(record) is None  # nothing waits for Slack
    sink.milestone(record, "Backup saved: deployment/web")
    sink.milestone(record, "Rollback applied: revision 3 → 2", Tone.GOOD)
    assert slack.calls() == []
    _drain(_deliverer(store, slack))
    thread = store.get(record.id).thread_ts
    assert thread is not None
    replies = [m.text for m in slack.thread(CHANNEL, thread)[1:]]
    assert replies == [
        "Backup saved: deployment/web",
        ":white_check_mark: Rollback applied: revision 3 → 2",
    ]


def test_a_message_queued_again_by_a_job_that_ran_twice_is_delivered_once(
    store: RollbackStore, slack: FakeSlackApi
) -> None:
    record = _record(store)
    for _ in range(2):  # the same stage, re-run after a crash
        sink = OutboxSink(Outbox(store.redis))
        sink.confirmation(record)
        sink.milestone(record, "Backup saved: deployment/web")
    assert Outbox(store.redis).depth() == 2
    _drain(_deliverer(store, slack))
    assert len(slack.messages(CHANNEL)) == 2


def test_slack_answering_500_delays_messages_and_loses_or_repeats_none(
    store: RollbackStore, slack: FakeSlackApi
) -> None:
    record = _record(store)
    sink = OutboxSink(Outbox(store.redis))
    sink.confirmation(record)
    finished = record.model_copy(update={"state": RollbackState.CANCELLED})
    sink.finished(finished)  # two calls: the question edited, then a reply
    deliverer = _deliverer(store, slack)
    deliverer.deliver_next()  # the question is posted
    slack.fail_next("chat.postMessage", status=500, times=3)
    for _ in range(3):
        with pytest.raises(Exception, match="internal_error"):
            deliverer.deliver_next()  # the edit went through once; the reply fails
    _drain(deliverer)
    assert len(slack.calls("chat.update")) == 1, "a call that succeeded is not made again"
    thread = store.get(record.id).thread_ts or ""
    assert [m.text.split(":")[0] for m in slack.thread(CHANNEL, thread)[1:]] == [
        f"Rollback {record.id} cancelled"
    ]


def test_a_message_slack_refuses_for_good_is_dropped_and_the_next_delivered(
    store: RollbackStore, slack: FakeSlackApi
) -> None:
    outbox = Outbox(store.redis)
    OutboxSink(outbox).tell("#gone", "U0ALICE", "history of web")  # no such channel
    OutboxSink(outbox).tell(CHANNEL, "U0ALICE", "status: nothing running")
    slack.add_channel(CHANNEL, "ops")
    _drain(_deliverer(store, slack))
    assert [c.error for c in slack.calls("chat.postEphemeral")] == ["channel_not_found", None]


def test_only_one_process_delivers_at_a_time(store: RollbackStore, slack: FakeSlackApi) -> None:
    first, second = _deliverer(store, slack), _deliverer(store, slack)
    OutboxSink(first.outbox).confirmation(_record(store))
    assert first.deliver_next() is True
    OutboxSink(first.outbox).confirmation(_record(store))
    assert second.deliver_next() is False  # the first holds the lease
    assert first.outbox.depth() == 1


def test_the_loop_waits_out_an_outage_and_then_delivers(
    store: RollbackStore, slack: FakeSlackApi
) -> None:
    record = _record(store)
    OutboxSink(Outbox(store.redis)).confirmation(record)
    slack.fail_next("chat.postMessage", status=503, times=2)
    deliverer, stop = _deliverer(store, slack), threading.Event()
    deliverer.max_wait = 0.5
    loop = threading.Thread(target=deliverer.run, args=(stop,))
    loop.start()
    try:
        for _ in range(100):
            if store.get(record.id).thread_ts:
                break
            stop.wait(0.05)
    finally:
        stop.set()
        loop.join()
    assert store.get(record.id).thread_ts
    assert [c.status for c in slack.calls("chat.postMessage")] == [503, 503, 200]
