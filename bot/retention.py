"""The records over time: those created in a window, the outcomes the stats
read, and the records past the retention, deleted with their backups (and
outcomes) by the worker's upkeep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import redis

from bot.records import RollbackRecord
from bot.stats import Outcome, counted, increments
from bot.store import COUNTERS, OUTCOMES, PREFIX, RollbackStore

RECORDS = f"{PREFIX}records"  # a sorted set: record id → created_at as a timestamp
#: Set once the outcomes of records written before outcomes were kept are filled in.
BACKFILLED = f"{PREFIX}outcomes:backfilled"


def created_between(
    store: RollbackStore, since: datetime, until: datetime | None = None
) -> list[RollbackRecord]:
    """The records created in [since, until), oldest first."""
    high = f"({until.timestamp()}" if until else "+inf"
    ids = store.redis.zrangebyscore(RECORDS, since.timestamp(), high)
    return store.many([str(i) for i in ids])


def outcomes_between(
    store: RollbackStore, since: datetime, until: datetime | None = None
) -> list[Outcome]:
    """The outcomes of the rollbacks created in [since, until) that have ended."""
    high = f"({until.timestamp()}" if until else "+inf"
    return [
        Outcome.from_json(str(m))
        for m in store.redis.zrangebyscore(OUTCOMES, since.timestamp(), high)
    ]


def backfill_outcomes(store: RollbackStore, chunk: int = 500) -> int:
    """Once per store: the outcomes (and counters) of finished records written before
    rollbot kept them; a record ending later writes its own. How many were added."""
    if store.redis.get(BACKFILLED):
        return 0
    ids = [str(i) for i in store.redis.zrange(RECORDS, 0, -1)]
    added = 0
    for start in range(0, len(ids), chunk):
        added += _backfill(store, ids[start : start + chunk])
    store.redis.set(BACKFILLED, "1")
    return added


def _backfill(store: RollbackStore, ids: list[str]) -> int:
    """One chunk, in a transaction that a record ending meanwhile (it writes its
    own outcome) makes start again: no rollback is counted twice."""
    while True:
        with store.redis.pipeline() as pipe:
            try:
                pipe.watch(OUTCOMES)  # type: ignore[no-untyped-call]
                known = {Outcome.from_json(str(m)).record_id for m in pipe.zrange(OUTCOMES, 0, -1)}
                todo = [i for i in ids if i not in known]
                outcomes = [Outcome.of(r) for r in store.many(todo) if counted(r)]
                pipe.multi()
                if outcomes:
                    pipe.zadd(OUTCOMES, {o.to_json(): o.created_at for o in outcomes})
                for outcome in outcomes:
                    for field, amount in increments(outcome).items():
                        pipe.hincrbyfloat(COUNTERS, field, amount)
                pipe.execute()
                return len(outcomes)
            except redis.WatchError:
                continue


def prune(store: RollbackStore, keep: timedelta, now: datetime | None = None) -> int:
    """Delete the finished records created more than `keep` ago; how many went.
    One still under way stays whatever its age (it has its own expiry)."""
    before = (now or datetime.now(UTC)) - keep
    ids = [str(i) for i in store.redis.zrangebyscore(RECORDS, "-inf", f"({before.timestamp()}")]
    records = store.many(ids)
    finished = [r.id for r in records if r.state.terminal]
    for record_id in finished:
        store.forget(record_id)
    # Only finished records have an outcome: every one older than the retention goes.
    store.redis.zremrangebyscore(OUTCOMES, "-inf", f"({before.timestamp()}")
    # Ids whose record is gone already (deleted by hand) leave the index too.
    missing = set(ids) - {r.id for r in records}
    if missing:
        store.redis.zrem(RECORDS, *missing)
    return len(finished)
