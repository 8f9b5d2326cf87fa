"""The outbox's deliverer: posts the messages the pipeline queued (see
`bot/outbox.py`), in order, each once, waiting out Slack's outages.

One deliverer delivers at a time across every process (a lease in Redis);
the others stand by. A message that Slack refuses for good (a channel that
is gone, blocks it will never take) is logged and dropped: it must not hold
up every message behind it.
"""

from __future__ import annotations

import http.client
import logging
import secrets
import threading
import urllib.error
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import TemporaryError
from bot.outbox import Message, Outbox
from bot.progress import Tone
from bot.records import RollbackRecord
from bot.store import RollbackStore
from handlers.thread import SlackThreadSink

log = logging.getLogger("rollbot.delivery")
#: Slack's own answers that mean "try again later".
_TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


def slack_is_away(err: BaseException) -> bool:
    """Whether `err` says Slack is down or busy (try again), not that it refused."""
    if isinstance(err, SlackApiError):
        status = getattr(err.response, "status_code", 200)
        return status == 429 or status >= 500 or err.response.get("error") in _TRANSIENT_ERRORS
    return isinstance(err, OSError | urllib.error.URLError | http.client.HTTPException)


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
    ) -> None:
        self.outbox, self.store, self.client = outbox, store, client
        #: namespace → the environment whose Approve asks first (`bot.policy.protected_where`).
        self.protected = protected
        self.lease_ttl, self.max_wait = lease_ttl, max_wait
        self.holder = secrets.token_hex(6)

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
            log.error("outbox: message %s (%s) dropped: %s", message.id, message.call, err)
        self.outbox.done(raw)
        return True

    def _current(self, record: RollbackRecord) -> RollbackRecord:
        """The message's record, with its thread if it has one by now (the question
        may have been delivered after this message was queued)."""
        if record.thread_ts:
            return record
        thread = self.store.get(record.id).thread_ts
        return record.model_copy(update={"thread_ts": thread}) if thread else record

    def deliver(self, message: Message) -> None:
        calls = _CallsOnce(self.client, self.outbox, message.id)
        sink = SlackThreadSink(calls, protected=self.protected)  # type: ignore[arg-type]
        args = message.args
        if message.call == "tell":
            sink.tell(args["channel"], args["user"], args["text"], Tone(args["tone"]))
            return
        if message.record is None:
            raise ValueError(f"a {message.call} message without its record")
        record = self._current(message.record)
        if message.call == "confirmation":
            thread = sink.confirmation(record)
            if thread and not record.thread_ts:
                self.store.update(
                    record.id,
                    lambda r: r if r.thread_ts else r.model_copy(update={"thread_ts": thread}),
                )
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
