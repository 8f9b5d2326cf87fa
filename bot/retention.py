"""The records over time: those created in a window (for the stats), and the
ones past the retention, deleted with their backups by the worker's upkeep."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.records import RollbackRecord
from bot.store import PREFIX, RollbackStore

RECORDS = f"{PREFIX}records"  # a sorted set: record id → created_at as a timestamp


def created_between(
    store: RollbackStore, since: datetime, until: datetime | None = None
) -> list[RollbackRecord]:
    """The records created in [since, until), oldest first."""
    high = f"({until.timestamp()}" if until else "+inf"
    ids = store.redis.zrangebyscore(RECORDS, since.timestamp(), high)
    return store.many([str(i) for i in ids])


def prune(store: RollbackStore, keep: timedelta, now: datetime | None = None) -> int:
    """Delete the finished records created more than `keep` ago; how many went.
    One still under way stays whatever its age (it has its own expiry)."""
    before = (now or datetime.now(UTC)) - keep
    ids = [str(i) for i in store.redis.zrangebyscore(RECORDS, "-inf", f"({before.timestamp()}")]
    records = store.many(ids)
    finished = [r.id for r in records if r.state.terminal]
    for record_id in finished:
        store.forget(record_id)
    # Ids whose record is gone already (deleted by hand) leave the index too.
    missing = set(ids) - {r.id for r in records}
    if missing:
        store.redis.zrem(RECORDS, *missing)
    return len(finished)
