"""The job runner: every kind of job has a stage, failures end or retry the
record, and nothing a job raises stops the worker."""

from __future__ import annotations

import time
import typing

import pytest

from bot.errors import PermanentError, TemporaryError
from bot.pipeline import Worker, runner
from bot.store import Job
from tests.unit.pipeline.conftest import RecordingSink, S, stored, web_request


def test_every_kind_of_job_has_a_stage() -> None:
    kinds = set(typing.get_args(Job.model_fields["kind"].annotation))
    assert kinds == set(runner.STAGES)


def _run_with(worker: Worker, monkeypatch: pytest.MonkeyPatch, error: Exception) -> Job:
    def failing(_p: object, _job: Job) -> None:
        raise error

    monkeypatch.setitem(runner.STAGES, "assess", failing)
    record = stored(worker.pipeline, web_request())
    job = Job(kind="assess", record_id=record.id)
    worker.queue.enqueue(job)
    assert worker.run_once(timeout=1)
    return job


def test_a_temporary_error_queues_the_job_again_later_and_notes_why(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = _run_with(worker, monkeypatch, TemporaryError("the API answered 503"))
    [retry] = worker.queue.redis.zrange(worker.queue.DELAYED, 0, -1, withscores=True)
    again = Job.model_validate_json(retry[0])
    assert (again.id, again.attempt) == (job.id, 1)
    assert retry[1] == pytest.approx(time.time() + runner.retry_delay(0), abs=2)
    record = worker.store.get(job.record_id)
    assert record.state is S.REQUESTED
    assert record.timeline[-1].message == "the API answered 503; retrying in 1s"
    assert worker.queue.redis.llen(worker.queue.processing) == 0  # acked


def test_the_last_attempt_of_a_temporary_error_fails_the_record(
    worker: Worker, monkeypatch: pytest.MonkeyPatch, sink: RecordingSink
) -> None:
    def failing(_p: object, _job: Job) -> None:
        raise TemporaryError("the API answered 503")

    monkeypatch.setitem(runner.STAGES, "assess", failing)
    record = stored(worker.pipeline, web_request())
    worker.queue.enqueue(Job(kind="assess", record_id=record.id, attempt=runner.MAX_ATTEMPTS - 1))
    worker.run_once(timeout=1)
    failed = worker.store.get(record.id)
    assert failed.state is S.FAILED
    assert failed.error == f"gave up after {runner.MAX_ATTEMPTS} attempts: the API answered 503"
    assert sink.of("finished") == [S.FAILED]
    assert worker.queue.redis.zcard(worker.queue.DELAYED) == 0


def test_a_permanent_error_fails_the_record_once(
    worker: Worker, monkeypatch: pytest.MonkeyPatch, sink: RecordingSink
) -> None:
    job = _run_with(worker, monkeypatch, PermanentError("deployment web is paused"))
    assert worker.store.get(job.record_id).error == "deployment web is paused"
    assert sink.of("report") == []  # never approved: nothing to report


def test_a_bug_in_a_stage_fails_the_record_and_the_worker_goes_on(
    worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = _run_with(worker, monkeypatch, KeyError("spec"))
    assert worker.store.get(job.record_id).error == "internal error: KeyError: 'spec'"
    assert worker.run_once(timeout=1) is False  # still taking jobs; none left


def test_an_unknown_kind_of_job_is_dropped(worker: Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(runner.STAGES, "history")
    worker.queue.enqueue(Job(kind="history", args={"user": "U1"}))
    assert worker.run_once(timeout=1)
    assert worker.queue.redis.llen(worker.queue.processing) == 0


def test_retry_delays_grow_and_are_capped() -> None:
    assert [runner.retry_delay(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
