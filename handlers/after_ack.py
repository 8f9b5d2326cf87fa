"""What a listener says in Slack after its ack: the request was answered and acted
on by then, so Slack not taking the message (the user left the channel, the message
was deleted, Slack down past the client's retries) is one line in the log — not an
exception out of the listener, which would log a traceback and tell no one more."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from handlers.unwelcome import tell_ephemeral

log = logging.getLogger("rollbot.slack")


def _why(err: Exception) -> str:
    if isinstance(err, SlackApiError):
        return str(err.response.get("error") or err.response.status_code)
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def tell(
    client: WebClient, channel: str, user: str, text: str, response_url: str | None = None
) -> None:
    """`text` to `user` alone, in `channel` (or through the request's `response_url`
    where rollbot cannot post: see `handlers/unwelcome.py`)."""
    try:
        tell_ephemeral(client, channel, user, text, response_url)
    except (SlackClientError, OSError) as err:
        log.warning("could not tell %s in %s: %s", user, channel, _why(err))


def update(client: WebClient, channel: str, ts: str, text: str, blocks: list[Any]) -> bool:
    """Message `ts` rewritten; whether Slack took it."""
    try:
        client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
    except (SlackClientError, OSError) as err:
        log.warning("could not update message %s in %s: %s", ts, channel, _why(err))
        return False
    return True
