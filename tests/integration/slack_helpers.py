"""What the Slack-facing tests share: the people, the channel, signed requests,
and waiting for what the bot posts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bot.outbox import PREFIX as OUTBOX_PREFIX
from bot.outbox import Outbox
from bot.records import RollbackRecord
from bot.store import RollbackStore
from handlers.ids import ActionId
from testbed.slack_api import FakeSlackApi
from testbed.slack_user import SlackUser as _SlackUser

SECRET = "test-signing-secret"
CHANNEL = "C0INCIDENT"
ALICE, BOB, MALLORY = "U0ALICE", "U0BOB", "U0MALLORY"


def SlackUser(url: str, user: str, secret: str = SECRET) -> _SlackUser:  # noqa: N802
    return _SlackUser(url, user, CHANNEL, secret)


def wait_for(what: str, test: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = test()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last seen: {value!r})")


def confirmation(slack: FakeSlackApi, channel: str = CHANNEL) -> tuple[str, str]:
    """(record id, message ts) of the confirmation with buttons, once it is posted."""

    def find() -> tuple[str, str] | None:
        for message in slack.messages(channel):
            for block in message.blocks:
                for element in block.get("elements", []):
                    if element.get("action_id") == ActionId.APPROVE:
                        return str(element["value"]), message.ts
        return None

    found: tuple[str, str] = wait_for("the confirmation", find)
    return found


def final(store: RollbackStore, record_id: str, timeout: float = 90) -> RollbackRecord:
    """The record once it ended and every message it queued reached Slack.

    The worker writes the end first and queues its messages after (the outcome, then
    the report, rendered with people's names looked up in Slack): an empty outbox
    right after the end may only mean they are not queued yet. So this waits for
    them to be queued (`ending_queued`), then for the outbox to deliver them."""
    ended: RollbackRecord = wait_for(
        "the rollback to finish", lambda: (r := store.get(record_id)).state.terminal and r, timeout
    )
    waited = time.monotonic()
    while not ending_queued(store, ended) and time.monotonic() - waited < ENDING_GRACE_S:
        time.sleep(0.05)
        ended = store.get(record_id)
    delivered(store)
    return store.get(record_id)  # as it is now: the deliverer may have added its thread


#: How long `final` waits for an ended record's messages to be queued. Some ends
#: queue none (a cancel by command edits the confirmation itself): those wait it out.
ENDING_GRACE_S = 5.0


def ending_queued(store: RollbackStore, record: RollbackRecord) -> bool:
    """Whether the messages that end `record` are in the outbox (or delivered): a
    refusal; or the outcome and, for a rollback that was approved, the report."""
    seen = f"{OUTBOX_PREFIX}:seen:{record.id}:"
    kinds = {
        (key.decode() if isinstance(key, bytes) else str(key))[len(seen) :].split(":")[0]
        for key in store.redis.scan_iter(match=seen + "*", count=1000)
    }
    if "refused" in kinds:
        return True
    return "finished" in kinds and (not record.approved_by or "report" in kinds)


def delivered(store: RollbackStore, timeout: float = 30) -> None:
    """Wait until the outbox has delivered everything queued so far."""
    wait_for("the outbox to deliver", lambda: Outbox(store.redis).depth() == 0, timeout)


def ephemerals(slack: FakeSlackApi, user: str) -> list[str]:
    return [m.text for m in slack.messages(CHANNEL) if m.ephemeral_user == user]
