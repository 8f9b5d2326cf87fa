"""What the Slack-facing tests share: the people, the channel, signed requests,
and waiting for what the bot posts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

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
    """The record once it ended and every message it queued reached Slack (the
    outbox delivers them a moment after the record is written)."""
    wait_for(
        "the rollback to finish", lambda: (r := store.get(record_id)).state.terminal and r, timeout
    )
    delivered(store)
    return store.get(record_id)  # as it is now: the deliverer may have added its thread


def delivered(store: RollbackStore, timeout: float = 30) -> None:
    """Wait until the outbox has delivered everything queued so far."""
    wait_for("the outbox to deliver", lambda: Outbox(store.redis).depth() == 0, timeout)


def ephemerals(slack: FakeSlackApi, user: str) -> list[str]:
    return [m.text for m in slack.messages(CHANNEL) if m.ephemeral_user == user]
