"""Where Slack will not take rollbot's message, and how the person still hears it.

Slack refuses a post for good when rollbot is not in the channel (`not_in_channel`
in a public one; `channel_not_found` in a private channel or a DM, which it cannot
even see), when the channel is archived (`is_archived`) or gone, and a reply or an
edit when the message was deleted (`message_not_found`). None of these must stop
a rollback, and none must leave the person who asked for it in the dark: they
hear it through the command's `response_url` (which Slack lets an app use for 30
minutes, member or not), or else in a direct message from rollbot.

Slack's own words are turned into what to do here, once, for every surface.
"""

from __future__ import annotations

import http.client
import logging
import urllib.error

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot.store import Beside, RollbackStore

log = logging.getLogger("rollbot.unwelcome")

#: Slack's own answers that mean "try again later".
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
#: Slack's answers that mean rollbot cannot write in the channel at all.
CHANNEL_CLOSED = frozenset({"not_in_channel", "channel_not_found", "is_archived"})
#: How long Slack honours a command's response_url.
RESPONSE_URL_SECONDS = 1800
_RESPONSE_URL_KEY = "rollbot:slack:response_url:"


def slack_is_away(err: BaseException) -> bool:
    """Whether `err` says Slack is down or busy (try again), not that it refused."""
    if isinstance(err, SlackApiError):
        status = getattr(err.response, "status_code", 200)
        return status == 429 or status >= 500 or err.response.get("error") in TRANSIENT_ERRORS
    return isinstance(err, OSError | urllib.error.URLError | http.client.HTTPException)


def slack_error(err: BaseException) -> str | None:
    """Slack's error code for a refusal (`not_in_channel`…), None for anything else."""
    if isinstance(err, SlackApiError):
        return str(err.response.get("error") or "") or None
    return None


# -- what the person reads (plain text: the caller escapes and decorates it) ------------


def cannot_post(error: str, channel: str, record_id: str, *, asking: bool) -> str:
    """Why rollbot's message is not in the channel, and what to do about it.
    `asking`: it was the confirmation, so nobody could approve the rollback."""
    dm = channel.startswith("D")
    if error == "is_archived":
        why = "this channel is archived"
        todo = "type the command in a channel that is open"
    elif dm:
        why = "rollbot cannot post in a direct message between people"
        todo = "type the command in a channel rollbot is in"
    elif error == "not_in_channel":
        why = "rollbot is not a member of this channel"
        todo = "invite it with /invite @rollbot"
    else:
        why = "rollbot is not a member of this private channel"
        todo = "invite it with /invite @rollbot"
    if asking:
        again = "" if todo.startswith("type") else ", then type the command again"
        return (
            f"Rollback {record_id} could not ask for approval here: {why}. "
            f"It was cancelled; {todo}{again}."
        )
    return (
        f"Rollback {record_id} goes on, but its thread cannot: {why}. "
        f"Follow it with /rollback status {record_id}"
        + ("." if todo.startswith("type") else f", or {todo} to see the rest here.")
    )


def files_not_attached(record_id: str) -> str:
    """chat:write.public let rollbot post in a public channel it is not in; files
    take membership."""
    return (
        f"The report files of rollback {record_id} could not be attached: rollbot is not "
        "a member of this channel. Invite it with /invite @rollbot (or set "
        "join_public_channels in rollbot's config) and the next ones will be."
    )


def not_announced(channel: str, error: str) -> str:
    """The summary could not go to the incidents channel: said in the thread."""
    if error == "channel_not_found":
        why = "it does not exist or rollbot cannot see it"
    elif error == "not_in_channel":
        why = "rollbot is not a member: invite it with /invite @rollbot"
    elif error == "is_archived":
        why = "it is archived"
    else:
        why = f"Slack answered {error}"
    return (
        f"The summary was not posted in the incidents channel {channel}: {why}. "
        "Check incidents_channel in rollbot's config."
    )


def chart_not_sent(error: str | None, needed: str | None = None) -> str:
    """The `/rollback stats` chart did not reach the asker's direct message."""
    if error == "missing_scope":
        why = (
            f"rollbot's Slack app lacks the {needed or 'im:write'} permission; "
            "reinstall it from slack-app-manifest.yaml"
        )
    elif error is None or error in TRANSIENT_ERRORS:
        why = "Slack did not take it; ask again in a minute"
    else:
        why = f"Slack answered {error}"
    return f"The chart could not be sent to your direct messages with rollbot: {why}."


def thread_gone(record_id: str) -> str:
    return (
        f"The confirmation of rollback {record_id} was deleted: "
        "its progress goes on in this thread."
    )


# -- reaching the person -------------------------------------------------------------


class ResponseUrls:
    """The response_url of the command that asked for each rollback, kept while Slack
    honours it (a Slack thing: kept beside the record, not in it)."""

    def __init__(self, store: RollbackStore) -> None:
        self.redis = store.redis

    def keep(self, record_id: str, url: str) -> None:
        if (kept := self.beside(record_id, url)) is not None:
            self.redis.set(kept.key, kept.value, ex=RESPONSE_URL_SECONDS)

    @staticmethod
    def beside(record_id: str, url: str) -> Beside | None:
        """The response_url as written with a new record (`RollbackStore.open`), if
        it is one."""
        if not url.startswith(("https://", "http://")):
            return None
        return Beside(_RESPONSE_URL_KEY + record_id, url, RESPONSE_URL_SECONDS)

    def get(self, record_id: str) -> str | None:
        url = self.redis.get(_RESPONSE_URL_KEY + record_id)
        return None if url is None else str(url)


def respond(url: str, text: str) -> bool:
    """Post `text` (mrkdwn) to a response_url, ephemeral; whether Slack took it."""
    try:
        answer = WebhookClient(url, timeout=10).send(text=text, response_type="ephemeral")
    except (OSError, urllib.error.URLError, http.client.HTTPException) as err:
        log.info("response_url not reached: %s", err)
        return False
    if answer.status_code != 200:
        log.info("response_url refused (%s): %s", answer.status_code, answer.body)
    return answer.status_code == 200


def tell_ephemeral(
    client: WebClient, channel: str, user: str, text: str, response_url: str | None
) -> None:
    """An answer (mrkdwn) to one person in a channel: ephemeral, which takes
    membership, so a click in a channel rollbot posts in without being a member
    (chat:write.public) is answered through the click's response_url instead."""
    try:
        client.chat_postEphemeral(channel=channel, user=user, text=text)
    except SlackApiError as err:
        if slack_error(err) not in CHANNEL_CLOSED or not response_url or slack_is_away(err):
            raise
        if not respond(response_url, text):
            raise
