"""Records over time: the stats read a window of them, and finished ones past the
retention are deleted with their backups by the workers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.config import RollbotConfig
from bot.pipeline import Worker
from bot.pipeline.wiring import Pipeline
from bot.records import RollbackRecord
from bot.retention import RECORDS, backfill_outcomes, created_between, outcomes_between, prune
from bot.store import OUTCOMES, RecordNotFound
from tests.unit.pipeline.conftest import S, stored, web_request

NOW = datetime.now(UTC)


def aged(p: Pipeline, days: float, *states: S) -> RollbackRecord:
    """A stored record created `days` ago, moved through `states`."""
    return stored(
        p, web_request().model_copy(update={"created_at": NOW - timedelta(days=days)}), *states
    )


def test_created_between_reads_the_window_oldest_first(pipeline: Pipeline) -> None:
    old, mid, new = aged(pipeline, 40), aged(pipeline, 20), aged(pipeline, 1)
    found = created_between(pipeline.store, NOW - timedelta(days=30))
    assert [r.id for r in found] == [mid.id, new.id]
    found = created_between(pipeline.store, NOW - timedelta(days=50), NOW - timedelta(days=20))
    assert [r.id for r in found] == [old.id]  # `until` is excluded


def test_prune_deletes_finished_records_past_the_retention_and_their_backups(
    pipeline: Pipeline,
) -> None:
    store = pipeline.store
    gone = aged(pipeline, 500, S.CANCELLED)
    store.save_backup(gone.id, {"items": []})
    running = aged(pipeline, 500, S.ASSESSED)  # under way: its own expiry ends it
    kept = aged(pipeline, 10, S.CANCELLED)
    assert prune(store, timedelta(days=400)) == 1
    assert store.get_backup(gone.id) is None
    with pytest.raises(RecordNotFound):
        store.get(gone.id)
    assert store.get(running.id).state is S.ASSESSED
    assert store.get(kept.id).state is S.CANCELLED
    assert store.redis.zscore(RECORDS, gone.id) is None
    assert store.redis.zscore(RECORDS, running.id) is not None


def test_prune_drops_index_entries_whose_record_is_gone(pipeline: Pipeline) -> None:
    lost = aged(pipeline, 500)
    pipeline.store.redis.delete(f"rollbot:record:{lost.id}")
    assert prune(pipeline.store, timedelta(days=400)) == 0
    assert pipeline.store.redis.zscore(RECORDS, lost.id) is None


def test_the_worker_prunes_with_the_configured_retention(pipeline: Pipeline) -> None:
    old = aged(pipeline, 40, S.CANCELLED)
    worker = Worker(
        pipeline.store,
        pipeline.queue,
        pipeline.kube,
        RollbotConfig(record_retention_days=30),
        pipeline.sink,
    )
    assert worker.prune() == 1
    assert created_between(pipeline.store, NOW - timedelta(days=60)) == []
    assert old.id not in {r.id for r in pipeline.store.recent(10)}


def test_a_record_that_ends_writes_its_outcome_once_in_the_same_write(pipeline: Pipeline) -> None:
    store = pipeline.store
    saved = stored(pipeline, web_request(), S.ASSESSED, S.AWAITING_APPROVAL)
    assert store.redis.zcard(OUTCOMES) == 0  # under way: no figure yet
    store.update(saved.id, lambda r: r.transition(S.CANCELLED, "cancelled"))
    store.update(saved.id, lambda r: r.note("a note after the end"))
    [outcome] = outcomes_between(store, NOW - timedelta(days=1))
    assert (outcome.record_id, outcome.state, outcome.service) == (saved.id, "cancelled", "web")
    assert outcome.approval_wait is None and not outcome.ran


def test_a_dry_run_has_no_outcome(pipeline: Pipeline) -> None:
    dry = stored(pipeline, web_request(dry_run=True), S.ASSESSED)
    pipeline.store.update(dry.id, lambda r: r.transition(S.AWAITING_APPROVAL, "asked"))
    pipeline.store.update(dry.id, lambda r: r.transition(S.CANCELLED, "done"))
    assert outcomes_between(pipeline.store, NOW - timedelta(days=1)) == []


def test_outcomes_of_records_written_before_them_are_filled_in_once(pipeline: Pipeline) -> None:
    store = pipeline.store
    old = aged(pipeline, 3, S.CANCELLED)
    store.redis.delete(OUTCOMES)  # as a store from before outcomes were kept
    aged(pipeline, 2)  # still requested: nothing to count
    assert backfill_outcomes(store) == 1
    assert [o.record_id for o in outcomes_between(store, NOW - timedelta(days=5))] == [old.id]
    store.redis.delete(OUTCOMES)
    assert backfill_outcomes(store) == 0  # once per store


def test_prune_takes_the_outcomes_past_the_retention_too(pipeline: Pipeline) -> None:
    aged(pipeline, 500, S.CANCELLED)
    kept = aged(pipeline, 5, S.CANCELLED)
    prune(pipeline.store, timedelta(days=400))
    found = outcomes_between(pipeline.store, NOW - timedelta(days=1000))
    assert [o.record_id for o in found] == [kept.id]
