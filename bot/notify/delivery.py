"""The change events' deliverer: the Redis list `rollbot:changes`, oldest first,
sent to every destination, each once.

One deliverer at a time across every process (a lease, as the outbox's); the
others stand by and take over within the lease's TTL when it dies. The head of
the list stays until every destination took it or refused it for good, so a
process that dies mid-delivery loses nothing; which destinations already took
it is kept in Redis beside it, so a webhook that is down does not make
PagerDuty receive the event twice. A destination that answers 429, 5xx or
nothing is tried again with a growing wait (its Retry-After if longer); one
that refuses the event (another 4xx) has it dropped, with a log line naming
the event, and the queue goes on.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Sequence

import redis

from bot import failpoints
from bot.change_events import CHANGES, ChangeEvent
from bot.config import RollbotConfig
from bot.errors import PermanentError, TemporaryError
from bot.leases import lead
from bot.notify.context import Destination, EventContext, thread_url
from bot.notify.sending import TryLater
from bot.store import RecordNotFound, RollbackStore

log = logging.getLogger("rollbot.notify")
LEASE = f"{CHANGES}:deliverer"
#: How long "these destinations took event X" is kept (the event is gone long before).
REMEMBER_SECONDS = 7 * 86400


def done_key(event_id: str) -> str:
    return f"{CHANGES}:done:{event_id}"


class ChangeDeliverer:
    def __init__(
        self,
        store: RollbackStore,
        config: RollbotConfig,
        destinations: Sequence[Destination],
        lease_ttl: float | None = None,
        max_wait: float = 60.0,
    ) -> None:
        self.store, self.redis = store, store.redis
        self.config, self.destinations = config, list(destinations)
        # Longer than two calls that time out: a live deliverer keeps its lease, renewed
        # before each destination, through the slowest of them.
        self.lease_ttl = lease_ttl or 2 * config.notify.timeout_seconds + 5
        self.max_wait = max_wait
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
            except (TemporaryError, redis.RedisError) as err:
                wait = min(self.max_wait, max(0.5, wait * 2))
                asked = err.after if isinstance(err, TryLater) and err.after is not None else 0.0
                pause = max(wait, asked)
                log.warning("change events: %s; again in %gs", err, pause)
                stop.wait(pause)

    def depth(self) -> int:
        return int(self.redis.llen(CHANGES))

    def deliver_next(self) -> bool:
        """Deliver the oldest event if this process leads; whether one was finished
        with. Raises TryLater (the event stays at the head) when a destination asked
        to be tried again; the destinations that took it are not sent it again."""
        if not self.destinations or not lead(self.redis, LEASE, self.holder, self.lease_ttl):
            return False
        raw = self.redis.lindex(CHANGES, 0)
        if raw is None:
            return False
        try:
            event = ChangeEvent.model_validate_json(raw)
        except ValueError as err:
            log.error("change events: an unreadable event dropped (%s): %.200s", err, raw)
            self._finish(str(raw), None)
            return True
        context = self._context(event)
        done = set(self.redis.smembers(done_key(event.id)))
        later: Exception | None = None
        for destination in self.destinations:
            if destination.name in done:
                continue
            if not lead(self.redis, LEASE, self.holder, self.lease_ttl):
                return False  # stalled past the lease: another process delivers now
            try:
                destination.deliver(event, context)
            except (TemporaryError, redis.RedisError) as err:
                later = later or err  # the others are still tried: one down holds none up
                continue
            except Exception as err:  # refused for good (4xx), or a bug: never retried
                log.error(
                    "change event %s (%s of %s/%s) dropped for %s: %s",
                    event.id, event.kind, event.namespace, event.service, destination.name, err,
                    exc_info=not isinstance(err, PermanentError),
                )  # fmt: skip
            self.redis.sadd(done_key(event.id), destination.name)
            self.redis.expire(done_key(event.id), REMEMBER_SECONDS)
            failpoints.reached("told_one_destination")
        if later is not None:
            raise later
        self._finish(str(raw), event.id)
        return True

    def _finish(self, raw: str, event_id: str | None) -> None:
        """Take `raw` off the head (if it still is the head) with its done-set."""
        with self.redis.pipeline() as pipe:
            try:
                pipe.watch(CHANGES)  # type: ignore[no-untyped-call]
                if pipe.lindex(CHANGES, 0) != raw:
                    return
                pipe.multi()
                pipe.lpop(CHANGES)
                if event_id is not None:
                    pipe.delete(done_key(event_id))
                pipe.execute()
            except redis.WatchError:
                return  # a new event was appended meanwhile: the next round pops it

    def _context(self, event: ChangeEvent) -> EventContext:
        try:
            record = self.store.get(event.record_id)
        except RecordNotFound:
            record = None
        config = self.config
        catalog_name = next(
            (
                name
                for name, entry in config.services.items()
                if (entry.deployment or name) == event.service
                and (entry.namespace or config.default_namespace) == event.namespace
            ),
            None,
        )
        return EventContext(
            environment=config.environment_of(event.namespace),
            thread_url=thread_url(config.notify.slack_workspace_url, record),
            record=record,
            catalog_name=catalog_name,
        )
