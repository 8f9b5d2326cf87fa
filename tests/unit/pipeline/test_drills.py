"""Rollback drills in the pipeline: only where marked, forward again once the
drill succeeded (once), marked as drills, told to the drill channel only, with
a drill report; and counted apart in the stats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.config import ConfigError, RollbotConfig, load_config
from bot.drills import drill_report, drill_request, drill_target
from bot.errors import InvalidInput
from bot.pipeline import Pipeline, drilling, execute
from bot.pipeline.verify import verify
from bot.policy import NotAllowed
from bot.records import RollbackRecord
from bot.stats import Outcome, compute
from bot.store import Job
from tests.unit.pipeline.conftest import DeploymentsOnly, RecordingSink, S, stored

DRILLS = {
    "environments": {
        "staging": {"namespaces": ["stg"], "drills": True},
        "prod": {"namespaces": ["prod"]},
    },
    "services": {
        "web": {"namespace": "prod", "drill": {"namespace": "stg", "channel": "C0DRILLS"}},
        "api": {"namespace": "stg", "drill": {"channel": "C0DRILLS", "approval": False}},
    },
    "incidents_channel": "C0INCIDENTS",
}


def config(**changes: Any) -> RollbotConfig:
    return RollbotConfig.model_validate({**DRILLS, **changes})


class ReportingSink(RecordingSink):
    def report(
        self,
        record: RollbackRecord,
        summary: str,
        files: dict[str, str],
        announce_to: str | None = None,
    ) -> None:
        self.calls.append(("report", (summary, files, announce_to)))


@pytest.fixture
def drills(pipeline: Pipeline) -> Pipeline:
    pipeline.config = config()
    pipeline.sink = ReportingSink()
    return pipeline


def test_a_drill_runs_in_its_drill_environment_and_channel() -> None:
    record = drill_request(config(), "web", "U0ALICE")
    assert (record.namespace, record.workload, record.channel) == ("stg", "web", "C0DRILLS")
    assert record.drill and record.trigger == "drill" and not record.emergency
    assert drill_request(config(), "api", "U0ALICE").emergency  # approval: false


def test_drills_are_refused_where_not_marked_or_not_configured(tmp_path: Path) -> None:
    file = tmp_path / "config.yaml"
    file.write_text(
        "environments: {prod: {namespaces: [prod]}}\n"
        "services: {web: {namespace: prod, drill: {channel: C0DRILLS}}}\n"
    )
    with pytest.raises(ConfigError, match="not in an environment marked for drills"):
        load_config(file)
    file.write_text(
        "environments: {stg: {namespaces: [stg], drills: true}}\n"
        "services: {web: {namespace: stg, drill: {channel: C0D, schedule: 'monthly'}}}\n"
    )
    with pytest.raises(ConfigError, match="not a crontab line"):
        load_config(file)
    with pytest.raises(InvalidInput, match="has no drill"):
        drill_target(config(), "other")
    unmarked = config().model_copy(update={"environments": {}})
    with pytest.raises(NotAllowed, match="never run anywhere else"):
        drill_target(unmarked, "web")


def run_drill(p: Pipeline, cluster: DeploymentsOnly) -> RollbackRecord:
    """A drill of web that rolled stg/web back from revision 3 and was verified."""
    cluster.put("stg", "web", desired=2, available=2)
    record = drill_request(p.config, "web", "U0ALICE").model_copy(update={"from_revision": 3})
    steps = (S.ASSESSED, S.AWAITING_APPROVAL, S.APPROVED, S.BACKING_UP, S.ROLLING_BACK)
    return verify(p, stored(p, record, *steps, S.VERIFYING))


def test_a_drill_that_succeeded_goes_forward_again_once_and_is_not_followed_up(
    drills: Pipeline, cluster: DeploymentsOnly
) -> None:
    done = run_drill(drills, cluster)
    assert done.state is S.SUCCEEDED
    [raw] = drills.queue.redis.lrange(drills.queue.QUEUE, 0, -1)
    assert Job.model_validate_json(raw).kind == "drill_forward"
    assert drills.queue.redis.zcard(drills.queue.DELAYED) == 0  # no follow-ups
    job = Job(kind="drill_forward", record_id=done.id)
    drilling.on_drill_forward(drills, job)
    drilling.on_drill_forward(drills, job)  # delivered twice: one forward step
    forwards = [r for r in drills.store.recent(10) if r.trigger == "drill-forward"]
    assert len(forwards) == 1
    forward = forwards[0]
    assert (forward.drill_of, forward.requested_revision) == (done.id, 3)
    assert forward.emergency and forward.channel == "C0DRILLS" and forward.namespace == "stg"


def test_the_forward_steps_end_posts_the_drill_report_to_the_drill_channel_only(
    drills: Pipeline, cluster: DeploymentsOnly
) -> None:
    done = run_drill(drills, cluster)
    drilling.on_drill_forward(drills, Job(kind="drill_forward", record_id=done.id))
    [forward] = [r for r in drills.store.recent(10) if r.trigger == "drill-forward"]
    steps = (S.ASSESSED, S.AWAITING_APPROVAL, S.APPROVED, S.BACKING_UP, S.ROLLING_BACK)
    for state in (*steps, S.VERIFYING, S.SUCCEEDED):
        drills.store.update(forward.id, lambda r, s=state: r.transition(s, f"to {s}"))
    execute.post_report(drills, drills.store.get(forward.id))
    [(summary, files, announce_to)] = drills.sink.of("report")  # type: ignore[attr-defined]
    assert announce_to is None  # not the incidents channel: a communication simulation
    assert summary.startswith("DRILL — ")
    report = files[f"{done.id}-drill-report.md"]
    assert report.startswith(f"# Rollback drill {done.id}: passed")
    assert "Forward again: " in report and "## What to improve" in report
    assert all(text.startswith("DRILL — ") for name, text in files.items() if "drill" not in name)


def test_a_failed_drill_reports_what_failed_and_what_to_improve() -> None:
    drill = drill_request(config(), "web", "U0ALICE")
    failed = drill.model_copy(update={"state": S.FAILED, "error": "rollout timed out"})
    report = drill_report(failed, None)
    assert report.startswith(f"# Rollback drill {drill.id}: FAILED")
    assert f"- {drill.id}: rollout timed out" in report
    assert "Forward again: not run" in report
    assert "fix what failed before a real incident needs it" in report


def test_a_scheduled_drill_opens_once_across_workers(drills: Pipeline) -> None:
    fired = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    first = drilling.run_scheduled_drill(drills, "web", fired)
    assert first is not None and drills.store.get(first).reason == "scheduled rollback drill"
    assert drilling.run_scheduled_drill(drills, "web", fired) is None  # the other worker
    assert [r.id for r in drills.store.recent(10)] == [first]


def test_drills_are_counted_apart_from_real_rollbacks() -> None:
    now = datetime.now(UTC)

    def outcome(trigger: str) -> Outcome:
        ts = (now - timedelta(hours=1)).timestamp()
        return Outcome("rb", ts, "web", "stg", "succeeded", "undo", trigger, 60.0, None, None)

    stats = compute(
        [outcome("manual"), outcome("drill"), outcome("drill-forward")],
        lambda _: None,
        since=now - timedelta(days=1),
    )
    assert stats.total.rollbacks == 1
    assert stats.drills.rollbacks == 2
