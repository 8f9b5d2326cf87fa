"""The runbooks' numbers from rollback records: counts, success rate, MTTR, time to
detection, approval wait, by strategy and trigger, and the trend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import get_args

import pytest

from bot.errors import InvalidInput
from bot.incident import Trigger
from bot.records import RollbackRecord, RollbackState, TimelineEntry
from bot.stats import TRIGGERS, Durations, compute, parse_window, percentile

S = RollbackState
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
PATH = (S.ASSESSED, S.AWAITING_APPROVAL, S.APPROVED, S.BACKING_UP, S.ROLLING_BACK, S.VERIFYING)


def record(
    *,
    at: datetime = T0,
    end: RollbackState = S.SUCCEEDED,
    workload: str = "web",
    namespace: str = "prod",
    restore: float = 300,
    approval: float = 60,
    bad_since: datetime | None = None,
    strategy: str = "undo",
    trigger: str = "manual",
    dry_run: bool = False,
) -> RollbackRecord:
    """A record whose timeline says: asked at `at`, approved `approval` s after the
    question (10 s after the request), ended `restore` s after the request."""
    offsets = {S.ASSESSED: 5, S.AWAITING_APPROVAL: 10, S.APPROVED: 10 + approval}
    entries = [TimelineEntry(at=at, state=S.REQUESTED, message="requested", actor="U0ALICE")]
    stop = {S.CANCELLED: 2, S.EXPIRED: 2}.get(end, len(PATH))
    for state in PATH[:stop]:
        step = offsets.get(state, 10 + approval + 1)
        entries.append(TimelineEntry(at=at + timedelta(seconds=step), state=state, message="x"))
    entries.append(TimelineEntry(at=at + timedelta(seconds=restore), state=end, message="end"))
    return RollbackRecord(
        namespace=namespace,
        workload=workload,
        requested_by="U0ALICE",
        created_at=at,
        state=end,
        timeline=tuple(entries),
        bad_since=bad_since,
        strategy=strategy,
        trigger=trigger,
        dry_run=dry_run,
    )


def environments(namespace: str) -> str | None:
    return {"prod": "production", "stg": "staging"}.get(namespace)


def test_success_rate_counts_rollbacks_that_ran_not_cancelled_ones() -> None:
    records = [
        record(),
        record(end=S.SUCCEEDED),
        record(end=S.FAILED),
        record(end=S.CANCELLED),
        record(end=S.EXPIRED),
    ]
    stats = compute(records, environments, since=T0, until=T0 + timedelta(days=1))
    (row,) = stats.rows
    assert (row.service, row.environment) == ("web", "production")
    assert (row.rollbacks, row.succeeded, row.failed, row.not_run) == (3, 2, 1, 2)
    assert row.success_rate == pytest.approx(2 / 3)


def test_time_to_restore_is_request_to_success_median_and_p90() -> None:
    records = [record(restore=s) for s in (60, 120, 180, 240, 600)] + [record(end=S.FAILED)]
    stats = compute(records, environments, since=T0, until=T0 + timedelta(days=1))
    ttr = stats.total.time_to_restore
    assert ttr.count == 5  # the failed one restored nothing
    assert ttr.median == 180
    assert ttr.p90 == pytest.approx(456)  # 240 + 0.6 * (600 - 240)


def test_time_to_detection_runs_from_the_bad_rollout_to_the_request() -> None:
    records = [
        record(bad_since=T0 - timedelta(minutes=20)),
        record(bad_since=T0 - timedelta(minutes=40)),
        record(),  # unknown: not counted
        record(bad_since=T0 + timedelta(minutes=5)),  # after the request: clock skew, ignored
    ]
    ttd = compute(records, environments, since=T0, until=T0 + timedelta(days=1)).total
    assert ttd.time_to_detection == Durations(2, 1800, pytest.approx(2280))


def test_approval_wait_is_question_to_approval() -> None:
    records = [record(approval=30), record(approval=90), record(end=S.CANCELLED)]
    wait = compute(records, environments, since=T0, until=T0 + timedelta(days=1)).total
    assert wait.approval_wait.count == 2
    assert wait.approval_wait.median == 60


def test_rows_per_service_and_environment_with_strategy_and_trigger_counts() -> None:
    records = [
        record(workload="web", namespace="prod", strategy="helm", trigger="automatic"),
        record(workload="web", namespace="prod", trigger="cli"),
        record(workload="web", namespace="stg"),
        record(workload="api", namespace="team-x"),  # no environment: its namespace names it
    ]
    stats = compute(records, environments, since=T0, until=T0 + timedelta(days=1))
    assert [(r.service, r.environment, r.rollbacks) for r in stats.rows] == [
        ("api", "team-x", 1),
        ("web", "production", 2),
        ("web", "staging", 1),
    ]
    prod = stats.rows[1]
    assert prod.by_strategy == {"helm": 1, "undo": 1}
    assert prod.by_trigger == {"automatic": 1, "person (terminal)": 1}


def test_follow_ups_of_a_failed_rollback_count_as_their_own_trigger() -> None:
    records = [record(), record(trigger="follow-up"), record(trigger="follow-up", end=S.FAILED)]
    total = compute(records, environments, since=T0, until=T0 + timedelta(days=1)).total
    assert total.by_trigger == {"follow-up": 2, "person (Slack)": 1}


def test_every_trigger_the_stats_name_is_one_a_report_may_say() -> None:
    assert set(get_args(Trigger)) == set(TRIGGERS)


def test_one_service_dry_runs_and_records_outside_the_window_are_left_out() -> None:
    records = [
        record(workload="web"),
        record(workload="api"),
        record(workload="web", dry_run=True),
        record(workload="web", at=T0 - timedelta(days=3)),
        record(workload="web", at=T0 + timedelta(days=2)),
    ]
    stats = compute(
        records,
        environments,
        since=T0 - timedelta(hours=1),
        until=T0 + timedelta(days=1),
        service="web",
    )
    assert stats.total.rollbacks == 1
    assert [r.service for r in stats.rows] == ["web"]


def test_trend_is_daily_for_a_month_and_weekly_beyond() -> None:
    records = [record(at=T0 + timedelta(days=d), restore=60 * (d + 1)) for d in (0, 0, 2)]
    month = compute(records, environments, since=T0, until=T0 + timedelta(days=30))
    assert month.period == "day" and len(month.trend) == 30
    assert [p.rollbacks for p in month.trend[:3]] == [2, 0, 1]
    assert month.trend[0].median_restore == 60 and month.trend[1].median_restore is None
    year = compute(records, environments, since=T0, until=T0 + timedelta(days=365))
    assert year.period == "week" and len(year.trend) == 53
    assert year.trend[0].rollbacks == 3


def test_no_records_gives_empty_figures_not_errors() -> None:
    stats = compute([], environments, since=T0, until=T0 + timedelta(days=1))
    assert stats.rows == () and stats.total.rollbacks == 0
    assert stats.total.success_rate is None and stats.total.time_to_restore == Durations()


@pytest.mark.parametrize(("text", "days"), [("30d", 30), ("12h", 0.5), ("2w", 14), (" 7d ", 7)])
def test_window_forms(text: str, days: float) -> None:
    assert parse_window(text) == timedelta(days=days)


@pytest.mark.parametrize("text", ["", "30", "0d", "d", "30m", "-3d", "1e3d", "99999d"])
def test_window_refuses_other_forms(text: str) -> None:
    with pytest.raises(InvalidInput, match="--since"):
        parse_window(text)


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([1.0], 90) == 1.0
    assert percentile([0.0, 10.0], 50) == 5.0
    assert percentile([0.0, 10.0, 20.0, 30.0], 90) == pytest.approx(27.0)
