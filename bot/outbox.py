"""Messages for people wait here until the chat answers.

The pipeline must not stop, fail or repeat a rollback because Slack is down
or slow. So the sink it talks to (`OutboxSink`) only writes each message to
a Redis list, in order, and returns; a deliverer (in `handlers/`, one at a
time across every process, by a lease) posts the list's head, and removes it
only once it was delivered, waiting and trying again as long as the chat
answers 429, 5xx or nothing.

Each message has an id; the messages that must be said once per record (the
question, the outcome, the report, a milestone's text) take theirs from what
they say, so a job that runs again after a crash queues nothing new. A
message may take several chat calls (an edit, a post, an upload): each call's
answer is kept under the message's id and its place, so a message tried
again after a failure makes only the calls it had not made.

Live rollout progress is the exception: it changes every second and only its
latest state matters, so it goes straight to the live sink, and is dropped
when the chat cannot take it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from typing import Any, Literal

import redis
from pydantic import BaseModel, Field

from bot.leases import lead
from bot.progress import ProgressSink, Tone
from bot.records import RollbackRecord
from bot.rollout import RolloutState

log = logging.getLogger("rollbot.outbox")
PREFIX = "rollbot:outbox"
#: How long a delivered message's id (and its calls' answers) are remembered.
REMEMBER_SECONDS = 7 * 86400

Call = Literal[
    "confirmation",
    "milestone",
    "reassessed",
    "finished",
    "report",
    "tell",
    "refused",
    "resume_question",
]

_PUT = """
if redis.call('set', KEYS[1], '1', 'NX', 'EX', ARGV[2]) then
  redis.call('rpush', KEYS[2], ARGV[1])
  return 1
end
return 0
"""
_DONE = """
if redis.call('lindex', KEYS[1], 0) == ARGV[1] then return redis.call('lpop', KEYS[1]) end
return false
"""


class Message(BaseModel):
    id: str
    call: Call
    record: RollbackRecord | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    queued_at: float = Field(default_factory=time.time)


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


class Outbox:
    LIST = f"{PREFIX}:messages"

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._put = client.register_script(_PUT)
        self._done = client.register_script(_DONE)

    def put(self, message: Message) -> bool:
        """Queue `message` unless one with its id was queued before; whether it was."""
        return bool(
            self._put(
                keys=[f"{PREFIX}:seen:{message.id}", self.LIST],
                args=[message.model_dump_json(), REMEMBER_SECONDS],
            )
        )

    def head(self) -> tuple[Message, str] | None:
        raw = self.redis.lindex(self.LIST, 0)
        return None if raw is None else (Message.model_validate_json(raw), str(raw))

    def done(self, raw: str) -> None:
        self._done(keys=[self.LIST], args=[raw])

    def depth(self) -> int:
        return int(self.redis.llen(self.LIST))

    def oldest_age(self, now: float | None = None) -> float:
        """Seconds the oldest undelivered message has waited (0: none waits)."""
        head = self.head()
        return 0.0 if head is None else max(0.0, (now or time.time()) - head[0].queued_at)

    def first_time(self, key: str) -> bool:
        """Whether `key` is seen for the first time (it is remembered from now on): for
        what the deliverer says once however many messages fail the same way."""
        return bool(self.redis.set(f"{PREFIX}:once:{key}", "1", nx=True, ex=REMEMBER_SECONDS))

    # -- a message's chat calls, each made once ----------------------------------------

    def call_answer(self, message_id: str, index: int) -> dict[str, Any] | None:
        raw = self.redis.hget(f"{PREFIX}:calls:{message_id}", str(index))
        return None if raw is None else dict(json.loads(raw))

    def save_call_answer(self, message_id: str, index: int, answer: dict[str, Any]) -> None:
        key = f"{PREFIX}:calls:{message_id}"
        self.redis.hset(key, str(index), json.dumps(answer))
        self.redis.expire(key, REMEMBER_SECONDS)

    # -- one deliverer at a time ---------------------------------------------------------

    def lead(self, holder: str, ttl: float) -> bool:
        """Take or keep the deliverer's lease for `holder`."""
        return lead(self.redis, f"{PREFIX}:deliverer", holder, ttl)


class OutboxSink:
    """The ProgressSink the pipeline talks to: every message into the outbox, but
    live rollout progress, which goes to `live` at once if it can."""

    def __init__(self, outbox: Outbox, live: ProgressSink | None = None) -> None:
        self.outbox, self.live = outbox, live

    def _put(self, call: Call, record: RollbackRecord | None, key: str | None, **args: Any) -> None:
        message_id = key or secrets.token_hex(8)
        self.outbox.put(Message(id=message_id, call=call, record=record, args=args))

    def confirmation(self, record: RollbackRecord) -> str | None:
        self._put("confirmation", record, f"{record.id}:confirmation")
        return None  # the deliverer stores the thread's id on the record

    def milestone(
        self, record: RollbackRecord, text: str, tone: Tone = Tone.INFO, alert: str | None = None
    ) -> None:
        key = f"{record.id}:milestone:{_digest(text, tone, alert)}"
        self._put("milestone", record, key, text=text, tone=tone.value, alert=alert)

    def rollout(
        self, record: RollbackRecord, state: RolloutState, workload: str | None = None
    ) -> None:
        if self.live is None or not record.thread_ts:
            return
        try:
            self.live.rollout(record, state, workload)
        except Exception as err:  # progress is best effort: the outcome is not
            log.info("live progress of %s not shown: %s", record.id, err)

    def reassessed(self, record: RollbackRecord, text: str, offer_rollback: bool) -> None:
        key = f"{record.id}:reassessed:{_digest(text)}"
        self._put("reassessed", record, key, text=text, offer_rollback=offer_rollback)

    def finished(self, record: RollbackRecord) -> None:
        self._put("finished", record, f"{record.id}:finished:{record.state.value}")

    def report(
        self,
        record: RollbackRecord,
        summary: str,
        files: dict[str, str],
        announce_to: str | None = None,
    ) -> None:
        key = f"{record.id}:report:{record.state.value}"
        self._put("report", record, key, summary=summary, files=files, announce_to=announce_to)

    def tell(self, channel: str, user: str, text: str, tone: Tone = Tone.INFO) -> None:
        self._put("tell", None, None, channel=channel, user=user, text=text, tone=tone.value)

    def resume_question(self, record: RollbackRecord, text: str) -> None:
        # Asked again later is posted again: each ask is a timeline entry of its own.
        key = f"{record.id}:resume_question:{len(record.timeline)}:{_digest(text)}"
        self._put("resume_question", record, key, text=text)

    def refused(self, record: RollbackRecord, text: str) -> None:
        self._put("refused", record, f"{record.id}:refused:{_digest(text)}", text=text)
