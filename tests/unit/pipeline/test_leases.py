"""One owner per record: a job runs only under its record's lease, the lease
and heartbeat are kept while it runs, and a worker that lost its lease writes
nothing more."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from bot.leases import LeaseLost, RecordLeases
from bot.pipeline import Pipeline, Worker, runner
from bot.store import Job, JobQueue, RollbackStore, StoreUnavailable
from tests.unit.pipeline.conftest import S, stored, web_request


def test_a_fenced_write_after_the_lease_went_to_another_writes_nothing(
    redis_client: redis.Redis,
) -> None:
    store = RollbackStore(redis_client)
    leases = RecordLeases(redis_client, ttl=0.2)
    record = store.create(web_request())
    mine = leases.acquire(record.id)
    assert mine is not None and leases.acquire(record.id) is None
    time.sleep(0.3)  # stalled past the TTL...
    theirs = leases.acquire(record.id)  # ...and another worker took the record
    assert theirs is not None
    with pytest.raises(LeaseLost):
        store.fenced(mine).update(record.id, lambda r: r.note("late write"))
    with pytest.raises(LeaseLost):  # written by script, the fence is checked the same
        store.fenced(mine).update(record.id, lambda r: r.note("late"), seen=store.get(record.id))
    with pytest.raises(LeaseLost):
        store.fenced(mine).save_backup(record.id, {"deployment": {}})
    assert store.get(record.id).timeline[-1].message.startswith("rollback of prod/web requested")
    assert store.get_backup(record.id) is None
    store.fenced(theirs).update(record.id, lambda r: r.note("the owner writes"))
    assert store.get(record.id).timeline[-1].message == "the owner writes"


def _slow_stage(seconds: float, runs: list[str]) -> runner.Stage:
    def stage(p: Pipeline, job: Job) -> None:
        runs.append(threading.current_thread().name)
        time.sleep(seconds)
        p.store.update(job.record_id, lambda r: r.note("stage done"))

    return stage


def test_a_job_running_longer_than_every_ttl_is_never_run_by_a_second_worker(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[str] = []
    monkeypatch.setitem(runner.STAGES, "execute", _slow_stage(1.5, runs))
    redis_client = pipeline.store.redis

    def worker(name: str) -> Worker:
        queue = JobQueue(redis_client, worker_id=name, heartbeat_ttl=0.3)
        return Worker(pipeline.store, queue, pipeline.kube, pipeline.config, pipeline.sink)

    first, second = worker("first"), worker("second")
    record = stored(pipeline, web_request(), S.ASSESSED, S.AWAITING_APPROVAL, S.APPROVED)
    job = Job(kind="execute", record_id=record.id)
    first.queue.enqueue(job)
    busy = threading.Thread(target=first.run_once, args=(1,), name="first")
    busy.start()
    time.sleep(0.7)  # past the heartbeat and lease TTLs: the first is still working
    assert second.queue.recover_orphans() == 0  # its heartbeat was kept: not an orphan
    second.queue.enqueue(job)  # and a re-delivered copy of its job...
    assert second.run_once(timeout=1)  # ...is put off, not run
    busy.join()
    assert runs == ["first"]
    notes = [e.message for e in pipeline.store.get(record.id).timeline]
    assert notes.count("stage done") == 1
    delayed = redis_client.zrange(second.queue.DELAYED, 0, -1)
    assert [Job.model_validate_json(j).id for j in delayed] == [job.id]


def test_a_job_whose_retry_could_not_be_written_is_put_back_when_redis_answers(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = stored(worker.pipeline, web_request())
    calls = 0

    def redis_away(_p: Pipeline, _job: Job) -> None:
        nonlocal calls
        calls += 1
        raise StoreUnavailable("Connection refused")

    monkeypatch.setitem(runner.STAGES, "assess", redis_away)
    monkeypatch.setattr(
        worker, "_retry_or_give_up", lambda *_a: (_ for _ in ()).throw(StoreUnavailable("down"))
    )
    worker.queue.enqueue(Job(kind="assess", record_id=record.id))
    assert worker.run_once(timeout=1)
    assert len(worker.queue.own_jobs()) == 1  # not acked, not lost
    worker._requeue_stranded()  # first sweep: suspected
    assert len(worker.queue.own_jobs()) == 1
    worker._requeue_stranded()  # second sweep: still idle, put back
    assert worker.queue.own_jobs() == []
    assert worker.queue.redis.llen(worker.queue.QUEUE) == 1
    assert calls == 1
