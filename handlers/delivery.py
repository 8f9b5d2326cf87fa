"""The outbox's deliverer: posts the messages the pipeline queued (see
`bot/outbox.py`), in order, each once, waiting out Slack's outages.

One deliverer delivers at a time across every process (a lease in Redis);
the others stand by. A message that Slack refuses for good must not hold up
every message behind it, nor the rollback: it is dropped, and the person who
asked hears why (`handlers.unwelcome`). A confirmation that cannot be posted (a
private channel or a DM rollbot is not in, an archived channel) cancels its
rollback, which nobody could approve, and the requester is told what to do; a
deleted confirmation gets a new message for the thread to go on under; the
rest (rollbot removed mid-way, files in a public channel it never joined) is
said once, to the requester. With `join_public_channels` rollbot joins a
public channel before it asks there.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import RollbotError, TemporaryError
from bot.outbox import Message, Outbox
from bot.progress import Tone
from bot.records import RollbackRecord, RollbackState
from bot.store import RecordNotFound, RollbackStore
from handlers.mrkdwn import mention
from handlers.people import SlackPeople
from handlers.thread import SlackThreadSink, decorated
from handlers.unwelcome import (
    CHANNEL_CLOSED,
    ResponseUrls,
    cannot_post,
    files_not_attached,
    respond,
    slack_error,
    slack_is_away,
    thread_gone,
)

__all__ = ["OutboxDeliverer", "slack_is_away"]

log = logging.getLogger("rollbot.delivery")
#: A record still waiting for its confirmation to be answered.
_UNDECIDED = frozenset(
    {RollbackState.REQUESTED, RollbackState.ASSESSED, RollbackState.AWAITING_APPROVAL}
)


class _CallsOnce:
    """A WebClient for one message: a chat call it made before (for an earlier try
    of the same message) is not made again; its kept answer is returned."""

    def __init__(self, client: WebClient, outbox: Outbox, message_id: str) -> None:
        self._client, self._outbox, self._id = client, outbox, message_id
        self._index = 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def once(*args: Any, **kwargs: Any) -> Any:
            index, self._index = self._index, self._index + 1
            kept = self._outbox.call_answer(self._id, index)
            if kept is not None:
                return kept
            response = method(*args, **kwargs)
            self._outbox.save_call_answer(self._id, index, dict(response.data))
            return response

        return once


class OutboxDeliverer:
    def __init__(
        self,
        outbox: Outbox,
        store: RollbackStore,
        client: WebClient,
        lease_ttl: float = 10.0,
        max_wait: float = 30.0,
        protected: Callable[[str], str | None] = lambda namespace: None,
        *,
        join_channels: bool = False,
    ) -> None:
        self.outbox, self.store, self.client = outbox, store, client
        #: namespace → the environment whose Approve asks first (`bot.policy.protected_where`).
        self.protected = protected
        self.lease_ttl, self.max_wait = lease_ttl, max_wait
        self.holder = secrets.token_hex(6)
        #: Join a public channel rollbot was not invited to, to ask its question there.
        self.join_channels = join_channels
        self.response_urls = ResponseUrls(store)
        self.names_of = SlackPeople(client)

    def run(self, stop: threading.Event, beat: Callable[[], None] = lambda: None) -> None:
        wait = 0.0
        while not stop.is_set():
            beat()
            try:
                delivered = self.deliver_next()
                wait = 0.0
                if not delivered:
                    stop.wait(0.2)
            except Exception as err:
                away = slack_is_away(err) or isinstance(err, TemporaryError)
                wait = min(self.max_wait, max(0.5, wait * 2)) if away else 1.0
                if not away:
                    log.exception("outbox delivery")
                else:
                    log.warning("outbox: Slack or Redis away (%s); again in %gs", err, wait)
                stop.wait(wait)

    def deliver_next(self) -> bool:
        """Deliver the oldest message if this process leads; whether one was delivered."""
        if not self.outbox.lead(self.holder, self.lease_ttl):
            return False
        head = self.outbox.head()
        if head is None:
            return False
        message, raw = head
        try:
            self.deliver(message)
        except Exception as err:
            if slack_is_away(err) or isinstance(err, TemporaryError):
                raise  # not delivered: it stays at the head, tried again
            try:
                self.refused(message, err)
            except Exception as again:
                if slack_is_away(again) or isinstance(again, TemporaryError):
                    raise
                log.error("outbox: message %s dropped: %s", message.id, again)
        self.outbox.done(raw)
        return True

    def refused(self, message: Message, err: Exception) -> None:
        """Slack will never take `message` as it is: try what may still work, else
        drop it and make sure the person who asked hears why. Raises only when Slack
        went away meanwhile (the message then stays, and is tried again)."""
        error = slack_error(err)
        record = message.record
        log.error("outbox: message %s (%s) refused: %s", message.id, message.call, err)
        if record is None or error is None:
            if error in CHANNEL_CLOSED and message.call == "tell":
                args = message.args
                self._direct(args["user"], decorated(args["text"], Tone(args["tone"])))
            return
        record = self._current(record)
        if error == "message_not_found" and record.thread_ts:
            record = self._new_thread(record)
            try:
                self.deliver(message)
                return
            except SlackApiError as again:
                if slack_is_away(again):
                    raise
                error = slack_error(again)  # refused in its new thread too: said below
        if error not in CHANNEL_CLOSED:
            return  # blocks Slack will not take, and the like: logged, a bug to fix
        asking = message.call == "confirmation"
        if asking:
            self._cancel(record, error)
        if self.outbox.first_time(f"refused:{record.id}:{error}"):
            if message.call == "report" and error == "not_in_channel":
                text = files_not_attached(record.id)
            else:
                text = cannot_post(error, record.channel, record.id, asking=asking)
            self._tell_requester(record, decorated(text, Tone.WARNING))

    def _join(self, record: RollbackRecord) -> None:
        """Be a member of the channel a rollback is asked about, where the config
        allows it: a public channel can be joined (chat:write.public lets rollbot post
        there, but not share the report's files); a private one or a DM cannot, and
        its post then fails and the person is told to invite rollbot."""
        try:
            self.client.conversations_join(channel=record.channel)
        except SlackApiError as err:
            if slack_is_away(err):
                raise
            log.info("did not join %s: %s", record.channel, slack_error(err))

    def _cancel(self, record: RollbackRecord, error: str) -> None:
        """Nobody can answer a question that was never asked: the rollback ends here
        rather than hold its workload until it expires."""

        def cancelled(r: RollbackRecord) -> RollbackRecord:
            if r.state not in _UNDECIDED:
                return r
            return r.transition(
                RollbackState.CANCELLED,
                f"cancelled: the confirmation could not be posted in the channel ({error})",
            )

        try:
            self.store.update(record.id, cancelled)
        except RollbotError as err:
            log.warning("could not cancel %s: %s", record.id, err)

    def _new_thread(self, record: RollbackRecord) -> RollbackRecord:
        """The confirmation (the thread's root) was deleted: a new message in the
        channel says so and becomes the thread the rest goes to."""
        old = record.thread_ts
        current = self.store.get(record.id)
        if current.thread_ts != old:
            return current  # moved already, for a message before this one
        answer = self.client.chat_postMessage(
            channel=record.channel, text=decorated(thread_gone(record.id), Tone.WARNING)
        )
        new = str(answer["ts"])
        return self.store.update(
            record.id,
            lambda r: r.model_copy(update={"thread_ts": new}) if r.thread_ts == old else r,
        )

    def _tell_requester(self, record: RollbackRecord, text: str) -> None:
        """Through the command's response_url while Slack honours it, else in a DM."""
        url = self.response_urls.get(record.id)
        if url is not None and respond(url, text):
            return
        self._direct(record.requested_by, text)

    def _direct(self, user: str, text: str) -> None:
        if not mention(user).startswith("<@"):
            return  # not a Slack user (the CLI, an automatic rollback): the log has it
        try:
            self.client.chat_postMessage(channel=user, text=text)
        except SlackApiError as err:
            if slack_is_away(err):
                raise
            log.error("could not tell %s either: %s", user, slack_error(err))

    def _current(self, record: RollbackRecord) -> RollbackRecord:
        """The message's record with its thread as it is now: the question may have
        been delivered after this message was queued, or the thread moved since."""
        try:
            thread = self.store.get(record.id).thread_ts
        except RecordNotFound:
            return record  # queued for a record that is gone: as it was queued
        if thread and thread != record.thread_ts:
            return record.model_copy(update={"thread_ts": thread})
        return record

    def deliver(self, message: Message) -> None:
        sink = SlackThreadSink(
            _CallsOnce(self.client, self.outbox, message.id),  # type: ignore[arg-type]
            protected=self.protected,
            names_of=self.names_of,
        )
        args = message.args
        if message.call == "tell":
            sink.tell(args["channel"], args["user"], args["text"], Tone(args["tone"]))
            return
        if message.record is None:
            raise ValueError(f"a {message.call} message without its record")
        record = self._current(message.record)
        if message.call == "confirmation":
            if self.join_channels and not record.thread_ts:
                self._join(record)
            thread = sink.confirmation(record)
            if thread and not record.thread_ts:
                posted = self.store.update(
                    record.id,
                    lambda r: r if r.thread_ts else r.model_copy(update={"thread_ts": thread}),
                )
                if posted.state.terminal and not record.state.terminal:
                    # Ended (a cancel by command) while the question was on its way: the
                    # cancel found no message to edit, so the question says it here.
                    sink.finished(posted)
        elif message.call == "milestone":
            sink.milestone(record, args["text"], Tone(args["tone"]), args.get("alert"))
        elif message.call == "reassessed":
            sink.reassessed(record, args["text"], bool(args["offer_rollback"]))
        elif message.call == "finished":
            sink.finished(record)
        elif message.call == "report":
            sink.report(record, args["summary"], dict(args["files"]), args.get("announce_to"))
        elif message.call == "refused":
            sink.refused(record, args["text"])
        elif message.call == "resume_question":
            sink.resume_question(record, args["text"])
