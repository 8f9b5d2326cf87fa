"""The stages, each on its own: what they do with a record in each state and
what the person watching is told."""

from __future__ import annotations

from datetime import timedelta

from bot.autorollback import FailedRelease
from bot.pipeline import Pipeline, aftercare, assess, autotrigger, execute
from bot.pipeline.verify import verify
from bot.progress import Tone
from bot.store import Job
from tests.unit.pipeline.conftest import DeploymentsOnly, RecordingSink, S, stored, web_request


def test_an_approved_rollback_whose_workload_is_held_is_refused_and_changes_nothing(
    pipeline: Pipeline, sink: RecordingSink
) -> None:
    assert pipeline.store.lock_workload("prod/web", "rb-other") is None
    record = stored(pipeline, web_request(), S.ASSESSED, S.AWAITING_APPROVAL, S.APPROVED)
    execute.on_execute(pipeline, Job(kind="execute", record_id=record.id))
    assert pipeline.store.get(record.id).state is S.FAILED
    assert sink.of("refused") == ["rollback rb-other of prod/web is in progress"]
    assert pipeline.store.lock_holder("prod/web") == "rb-other"


def test_an_execute_job_for_a_finished_record_does_nothing(
    pipeline: Pipeline, sink: RecordingSink
) -> None:
    record = stored(pipeline, web_request(), S.CANCELLED)
    execute.on_execute(pipeline, Job(kind="execute", record_id=record.id))
    assert sink.calls == []


def test_a_record_is_failed_once_and_its_report_posted_once(
    pipeline: Pipeline, sink: RecordingSink
) -> None:
    record = stored(pipeline, web_request(), S.ASSESSED, S.AWAITING_APPROVAL, S.APPROVED)
    assert pipeline.lock(record) is None
    execute.fail_record(pipeline, record.id, "the rollout timed out")
    execute.fail_record(pipeline, record.id, "the rollout timed out")
    assert pipeline.store.get(record.id).error == "the rollout timed out"
    assert sink.kinds() == ["finished", "report"]
    assert pipeline.store.lock_holder("prod/web") is None


def test_a_healthy_follow_up_says_so_and_the_last_one_closes_the_incident(
    pipeline: Pipeline, sink: RecordingSink, cluster: DeploymentsOnly
) -> None:
    cluster.put("prod", "web", desired=2, available=2)
    record = stored(
        pipeline, web_request(), S.ASSESSED, S.AWAITING_APPROVAL, S.APPROVED, S.BACKING_UP,
        S.ROLLING_BACK, S.VERIFYING, S.SUCCEEDED,
    )  # fmt: skip
    for index in (0, 1):
        aftercare.on_follow_up(pipeline, Job(kind="follow_up", record_id=record.id,
                                             args={"index": str(index)}))  # fmt: skip
    assert sink.of("milestone") == [
        ("Follow-up +5 min: healthy (2/2 available)", Tone.INFO, None),
        ("Follow-up +15 min: stable; the incident can be closed", Tone.GOOD, None),
    ]


def test_an_unhealthy_follow_up_warns_and_alerts_the_requester(
    pipeline: Pipeline, sink: RecordingSink, cluster: DeploymentsOnly
) -> None:
    cluster.put("prod", "web", desired=3, available=1)
    record = stored(
        pipeline, web_request(), S.ASSESSED, S.AWAITING_APPROVAL, S.APPROVED, S.BACKING_UP,
        S.ROLLING_BACK, S.VERIFYING, S.SUCCEEDED,
    )  # fmt: skip
    aftercare.follow_up(pipeline, record, 0)
    [(text, tone, alert)] = sink.of("milestone")
    assert text == "Follow-up +5 min: unhealthy again:\nweb: only 1/3 replicas available"
    assert (tone, alert) == (Tone.WARNING, "U0ALICE")
    assert pipeline.store.get(record.id).timeline[-1].message == "Follow-up +5 min: unhealthy again"


def test_a_confirmation_expires_only_once_its_time_is_up(
    pipeline: Pipeline, sink: RecordingSink
) -> None:
    fresh = stored(pipeline, web_request(), S.ASSESSED, S.AWAITING_APPROVAL)
    aftercare.on_expire(pipeline, Job(kind="expire", record_id=fresh.id))
    assert pipeline.store.get(fresh.id).state is S.AWAITING_APPROVAL
    # run early (another pod's clock): put off until the record's own expiry
    [(again, at)] = pipeline.queue.redis.zrange(pipeline.queue.DELAYED, 0, -1, withscores=True)
    assert Job.model_validate_json(again).kind == "expire"
    assert fresh.expires_at is not None and at == fresh.expires_at.timestamp()
    late = stored(pipeline, web_request(ttl=timedelta(seconds=-1)), S.ASSESSED, S.AWAITING_APPROVAL)
    aftercare.on_expire(pipeline, Job(kind="expire", record_id=late.id))
    assert pipeline.store.get(late.id).state is S.EXPIRED
    assert sink.of("finished") == [S.EXPIRED]


def test_an_assess_job_after_a_crash_posts_the_question_it_had_not_posted(
    pipeline: Pipeline, sink: RecordingSink
) -> None:
    record = stored(pipeline, web_request(), S.ASSESSED, S.AWAITING_APPROVAL)
    assess.on_assess(pipeline, Job(kind="assess", record_id=record.id))
    assert sink.kinds() == ["confirmation"]
    assert pipeline.store.get(record.id).thread_ts == "1700000000.000100"
    expiry = pipeline.queue.redis.zrange(pipeline.queue.DELAYED, 0, -1)
    assert [Job.model_validate_json(j).kind for j in expiry] == ["expire"]
    assess.on_assess(pipeline, Job(kind="assess", record_id=record.id))  # delivered again
    assert sink.kinds() == ["confirmation"]


def test_an_assessed_record_whose_worker_died_is_asked_about(
    pipeline: Pipeline, sink: RecordingSink
) -> None:
    record = stored(pipeline, web_request(dry_run=True), S.ASSESSED)
    assess.on_assess(pipeline, Job(kind="assess", record_id=record.id))
    assert sink.kinds() == ["confirmation", "finished"]
    assert pipeline.store.get(record.id).state is S.CANCELLED


class _Failing:
    def __init__(self, *failures: FailedRelease) -> None:
        self.failures = failures

    def find_failed_releases(self) -> list[FailedRelease]:
        return list(self.failures)


def test_a_failed_release_opens_one_automatic_rollback_with_its_job(pipeline: Pipeline) -> None:
    bad = FailedRelease("prod", "web", "web-7f9c", 4, "progress deadline exceeded", "C0OPS")
    watcher = _Failing(bad)
    [opened] = autotrigger.open_automatic_rollbacks(pipeline, watcher)  # type: ignore[arg-type]
    assert autotrigger.open_automatic_rollbacks(pipeline, watcher) == []  # type: ignore[arg-type]
    record = pipeline.store.get(opened)
    assert (record.trigger, record.reason) == ("automatic", "automatic: progress deadline exceeded")
    [job] = pipeline.queue.redis.lrange(pipeline.queue.QUEUE, 0, -1)
    assert Job.model_validate_json(job).record_id == opened


def test_no_automatic_rollback_while_another_rollback_holds_the_workload(
    pipeline: Pipeline,
) -> None:
    assert pipeline.store.lock_workload("prod/web", "rb-manual") is None
    bad = FailedRelease("prod", "web", "web-7f9c", 4, "crash loop", "C0OPS")
    assert autotrigger.open_automatic_rollbacks(pipeline, _Failing(bad)) == []  # type: ignore[arg-type]
    assert pipeline.store.recent(5) == []


def test_a_verified_rollback_succeeds_with_its_follow_ups_queued_in_the_same_write(
    pipeline: Pipeline, cluster: DeploymentsOnly
) -> None:
    cluster.put("prod", "web", desired=2, available=2)
    record = stored(
        pipeline, web_request(), S.ASSESSED, S.AWAITING_APPROVAL, S.APPROVED, S.BACKING_UP,
        S.ROLLING_BACK, S.VERIFYING,
    )  # fmt: skip
    done = verify(pipeline, record)
    assert done.state is S.SUCCEEDED
    finished = done.timeline[-1].at.timestamp()
    delayed = pipeline.queue.redis.zrange(pipeline.queue.DELAYED, 0, -1, withscores=True)
    assert sorted((Job.model_validate_json(j).args["index"], at) for j, at in delayed) == [
        ("0", finished + 5 * 60),
        ("1", finished + 15 * 60),
    ]


def test_an_execute_job_run_again_after_the_outcome_was_written_says_it_and_lets_go(
    pipeline: Pipeline, sink: RecordingSink
) -> None:
    record = stored(pipeline, web_request(), S.ASSESSED, S.AWAITING_APPROVAL, S.APPROVED)
    assert pipeline.lock(record) is None
    failed = pipeline.store.update(record.id, lambda r: r.transition(S.FAILED, "timed out"))
    execute.on_execute(pipeline, Job(kind="execute", record_id=failed.id))
    assert sink.kinds() == ["finished", "report"]
    assert pipeline.store.lock_holder("prod/web") is None
