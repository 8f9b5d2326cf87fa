"""Records, locks, idempotency and the job queue on a real redis-server, and the
embedded Redis that one process uses when REDIS_URL is unset."""

from __future__ import annotations

import json
import threading
import time

import pytest
import redis

from bot.change_events import CHANGES
from bot.records import RollbackState, requested
from bot.store import (
    OUTCOMES,
    Beside,
    Job,
    JobQueue,
    RecordNotFound,
    RollbackStore,
    StoreUnavailable,
    connect,
)

S = RollbackState


def test_a_record_round_trips_with_its_timeline(redis_client):
    store = RollbackStore(redis_client)
    record = store.create(requested("prod", "web", "U1", reason="5xx"))
    assert store.get(record.id) == record
    assert store.recent() == [record]
    with pytest.raises(RecordNotFound, match="no rollback with id 'rb-nope'"):
        store.get("rb-nope")


def test_a_record_written_without_the_key_is_left_out_of_the_lists_not_fatal(redis_client, caplog):
    """A terminal without the key, or anyone with Redis alone: the lists (App Home,
    status, stats, /metrics) leave it out with a warning, and still list the rest."""
    sealed = RollbackStore(redis_client, key=b"the-bot-key")
    unsealed = RollbackStore(redis_client, key=None)
    kept = sealed.create(requested("prod", "web", "U1"))
    forged = unsealed.create(requested("prod", "api", "U2"))
    redis_client.zadd("rollbot:records", {"rb-gone": time.time()})  # its record removed
    with caplog.at_level("WARNING", logger="rollbot.store"):
        assert sealed.recent(10) == [kept]
    assert f"record {forged.id} left out" in caplog.text


def test_concurrent_updates_lose_nothing(redis_client):
    store = RollbackStore(redis_client)
    record = store.create(requested("prod", "web", "U1"))

    def add_notes(who: str) -> None:
        for i in range(20):
            store.update(record.id, lambda r, i=i: r.note(f"{who} {i}"))

    threads = [threading.Thread(target=add_notes, args=(w,)) for w in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = store.get(record.id)
    assert len(final.timeline) == 41
    assert final.version == 41


def test_a_transition_is_made_once_even_when_two_clicks_race(redis_client):
    store = RollbackStore(redis_client)
    record = store.create(requested("prod", "web", "U1"))
    store.update(record.id, lambda r: r.transition(RollbackState.ASSESSED, "ok"))
    results: list[str] = []

    def cancel(who: str) -> None:
        try:
            store.update(record.id, lambda r: r.transition(RollbackState.CANCELLED, who))
            results.append("done")
        except Exception as err:  # the loser's InvalidTransition
            results.append(type(err).__name__)

    threads = [threading.Thread(target=cancel, args=(w,)) for w in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["InvalidTransition", "done"]


def test_the_workload_lock_has_one_holder_and_only_it_releases(redis_client):
    store = RollbackStore(redis_client)
    assert store.lock_workload("prod/web", "rb-1") is None
    assert store.lock_workload("prod/web", "rb-1") is None  # re-entrant for its holder
    assert store.lock_workload("prod/web", "rb-2") == "rb-1"
    store.unlock_workload("prod/web", "rb-2")
    assert store.lock_holder("prod/web") == "rb-1"
    store.unlock_workload("prod/web", "rb-1")
    assert store.lock_workload("prod/web", "rb-2") is None


def test_an_idempotency_key_is_claimed_once(redis_client):
    store = RollbackStore(redis_client)
    assert store.claim_once("slack-retry:abc") is True
    assert store.claim_once("slack-retry:abc") is False


def test_a_dead_workers_jobs_go_back_to_the_queue(redis_client):
    dead = JobQueue(redis_client, worker_id="dead", heartbeat_ttl=0.2)
    dead.enqueue(Job(kind="execute", record_id="rb-1"))
    taken = dead.take(1)
    assert taken is not None and taken[0].record_id == "rb-1"
    # The worker dies without acking; its heartbeat lapses.
    alive = JobQueue(redis_client, worker_id="alive")
    redis_client.delete("rollbot:worker:dead")
    assert alive.recover_orphans() == 1
    again = alive.take(1)
    assert again is not None and again[0].record_id == "rb-1"
    alive.ack(again[1])
    assert alive.take(1) is None


def test_a_job_for_later_waits_its_turn_and_is_promoted_once(redis_client):
    queue = JobQueue(redis_client)
    queue.enqueue(Job(kind="expire", record_id="rb-1", not_before=time.time() + 60))
    assert queue.take(1) is None
    assert queue.promote_due() == 0
    promoters = [JobQueue(redis_client, worker_id=f"w{i}") for i in range(4)]
    threads = [threading.Thread(target=q.promote_due, args=(time.time() + 120,)) for q in promoters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert redis_client.llen(JobQueue.QUEUE) == 1, "four promoters, one job"
    taken = queue.take(1)
    assert taken is not None and taken[0].record_id == "rb-1"


def test_embedded_redis_keeps_history_across_restarts(tmp_path):
    first = connect(data_dir=tmp_path)
    record = RollbackStore(first).create(requested("prod", "web", "U1"))
    first.shutdown(save=True)
    second = connect(data_dir=tmp_path)
    assert RollbackStore(second).get(record.id).workload == "web"


def test_redis_down_is_a_clear_temporary_error():
    store = RollbackStore(redis.Redis(port=1, socket_connect_timeout=0.5))
    with pytest.raises(StoreUnavailable, match="store \\(Redis\\) is unavailable"):
        store.get("rb-1")


def test_a_service_rollback_holds_each_of_its_deployments_and_takes_all_or_none(redis_client):
    from bot.config import RollbotConfig
    from bot.pipeline import Pipeline

    store = RollbackStore(redis_client)
    worker = Pipeline(store, JobQueue(redis_client), object(), RollbotConfig(), object())
    service = requested("prod", "eli-maor", "U1").model_copy(
        update={"workloads": ("backend", "worker")}
    )
    assert service.lock_keys == ("prod/eli-maor", "prod/backend", "prod/worker")
    assert worker.lock(service) is None

    one = requested("prod", "backend", "U2")
    assert worker.lock(one) == f"rollback {service.id} of prod/backend is in progress"

    # A rollback that gets one lock but not the next gives back the one it got.
    other = requested("prod", "frontend-and-worker", "U3").model_copy(
        update={"workloads": ("frontend", "worker")}
    )
    assert worker.lock(other) == f"rollback {service.id} of prod/worker is in progress"
    assert store.lock_holder("prod/frontend-and-worker") is None
    assert store.lock_holder("prod/frontend") is None

    worker.unlock(service)
    assert worker.lock(one) is None


def test_a_request_is_opened_in_one_step_unless_its_workload_is_held_or_it_was_seen(
    redis_client,
):
    store, queue = RollbackStore(redis_client), JobQueue(redis_client)
    first = requested("prod", "web", "U1")
    job = Job(kind="assess", record_id=first.id)
    assert store.open(first, claim="command:t1", job=job, queue=queue.QUEUE) == (
        "created",
        first.id,
    )
    assert store.get(first.id).version == 1
    assert [r.id for r in store.recent()] == [first.id]
    taken = queue.take(1)
    assert taken is not None and taken[0].record_id == first.id

    again = requested("prod", "web", "U1")
    assert store.open(again, claim="command:t1", job=job, queue=queue.QUEUE) == ("duplicate", "")
    store.lock_workload("prod/web", first.id)
    held = requested("prod", "web", "U2")
    assert store.open(held, claim="command:t2", job=job, queue=queue.QUEUE) == ("held", first.id)
    with pytest.raises(RecordNotFound):
        store.get(again.id)  # neither refused request left a record behind
    assert queue.take(1) is None, "nor a job"


def test_what_is_kept_beside_a_request_is_written_with_it_and_only_when_it_is_opened(
    redis_client,
):
    store, queue = RollbackStore(redis_client), JobQueue(redis_client)
    first = requested("prod", "web", "U1")
    job = Job(kind="assess", record_id=first.id)
    url = Beside("test:url:first", "https://hooks.example/1", 60)
    assert store.open(first, claim="command:b1", job=job, queue=queue.QUEUE, beside=url)[0] == (
        "created"
    )
    assert redis_client.get("test:url:first") == "https://hooks.example/1"
    assert 0 < redis_client.pttl("test:url:first") <= 60_000

    again = requested("prod", "web", "U1")
    twice = Beside("test:url:again", "https://hooks.example/2", 60)
    assert store.open(again, claim="command:b1", job=job, queue=queue.QUEUE, beside=twice) == (
        "duplicate",
        "",
    )
    assert redis_client.get("test:url:again") is None


def test_an_update_queues_its_job_in_the_same_transaction(redis_client):
    store, queue = RollbackStore(redis_client), JobQueue(redis_client)
    record = store.create(requested("prod", "web", "U1"))

    def job_if_assessed(r):
        return Job(kind="execute", record_id=r.id) if r.state is RollbackState.ASSESSED else None

    store.update(
        record.id, lambda r: r.note("nothing yet"), then=job_if_assessed, queue=queue.QUEUE
    )
    assert queue.take(1) is None
    store.update(
        record.id,
        lambda r: r.transition(RollbackState.ASSESSED, "assessed"),
        then=job_if_assessed,
        queue=queue.QUEUE,
    )
    taken = queue.take(1)
    assert taken is not None and taken[0].kind == "execute"


def test_a_change_to_the_record_just_read_is_written_in_one_round_trip_with_its_writes(
    redis_client,
):
    store, queue = RollbackStore(redis_client), JobQueue(redis_client)
    by_script = store.create(requested("prod", "web", "U1"))
    by_transaction = store.create(requested("prod", "api", "U1"))
    path = [S.ASSESSED, S.AWAITING_APPROVAL, S.APPROVED, S.BACKING_UP, S.ROLLING_BACK]
    path += [S.VERIFYING, S.SUCCEEDED]

    def walk(record_id: str, read_first: bool) -> None:
        for state in path:
            seen = store.get(record_id) if read_first else None
            changed = store.update(
                record_id,
                lambda r, state=state: r.transition(state, f"now {state.value}", actor="U2"),
                then=lambda r: (
                    Job(kind="execute", record_id=r.id) if r.state is S.APPROVED else None
                ),
                queue=queue.QUEUE,
                seen=seen,
            )
            assert store.get(record_id) == changed
            assert seen is None or changed.version == seen.version + 1

    redis_client.config_resetstat()
    walk(by_script.id, read_first=True)
    used = redis_client.info("commandstats")
    assert not {"cmdstat_watch", "cmdstat_multi", "cmdstat_exec"} & set(used), "no transaction"
    taken = queue.take(1)
    assert taken is not None and taken[0].record_id == by_script.id
    script_counters = store.counters()
    assert script_counters, "the finished rollback is counted"

    # The same changes through the transaction write exactly what the script wrote.
    walk(by_transaction.id, read_first=False)
    taken = queue.take(1)
    assert taken is not None and taken[0].record_id == by_transaction.id
    expected = dict(script_counters)  # the same counters, for the other service
    for field, amount in script_counters.items():
        theirs = field.replace('"web"', '"api"')
        expected[theirs] = expected.get(theirs, 0) + amount
    counters = store.counters()
    assert set(counters) == set(expected)
    timed = {f for f in expected if f.endswith('"sum"]')}  # durations: their own
    assert {f: v for f, v in counters.items() if f not in timed} == {
        f: v for f, v in expected.items() if f not in timed
    }
    assert redis_client.zcard(OUTCOMES) == 2
    events = [json.loads(e) for e in redis_client.lrange(CHANGES, 0, -1)]
    assert [(e["record_id"], e["kind"]) for e in events] == [
        (by_script.id, "started"),
        (by_script.id, "finished"),
        (by_transaction.id, "started"),
        (by_transaction.id, "finished"),
    ]


def test_a_change_to_a_record_read_before_someone_else_wrote_it_is_made_on_the_new_one(
    redis_client,
):
    store = RollbackStore(redis_client)
    record = store.create(requested("prod", "web", "U1"))
    seen = store.get(record.id)
    store.update(record.id, lambda r: r.note("written meanwhile"))

    changed = store.update(record.id, lambda r: r.note("mine"), seen=seen)

    messages = [entry.message for entry in store.get(record.id).timeline]
    assert messages[-2:] == ["written meanwhile", "mine"], "nothing lost"
    assert changed.version == seen.version + 2
    with pytest.raises(RecordNotFound):
        store.update(
            "rb-gone", lambda r: r.note("x"), seen=seen.model_copy(update={"id": "rb-gone"})
        )
