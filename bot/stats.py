"""The numbers the runbooks track, computed from the rollback records.

Per service and environment over a window: how many rollbacks ran, how many
succeeded, the time to restore (from the request to the service verified
healthy), the time to detection (from the bad revision's rollout to the
request), the time a confirmation waited for its approval, and the counts by
strategy and by trigger. A trend (per day, or per week over long windows)
feeds the chart. Pure functions of the records: the store selects the window,
the CLI and Slack format the answer.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.durations import parse_window as parse_window  # the CLI's and Slack's --since
from bot.records import DRILL_TRIGGERS, RollbackRecord, RollbackState

S = RollbackState

#: Records in these states ran (or tried to run) a rollback; cancelled and expired
#: confirmations are counted apart, dry runs not at all.
RAN = frozenset({S.SUCCEEDED.value, S.FAILED.value})


@dataclass(frozen=True)
class Durations:
    """Seconds: how many were measured, their median and 90th percentile."""

    count: int = 0
    median: float | None = None
    p90: float | None = None

    @classmethod
    def of(cls, values: Iterable[float]) -> Durations:
        ordered = sorted(values)
        if not ordered:
            return cls()
        return cls(len(ordered), percentile(ordered, 50), percentile(ordered, 90))


def percentile(ordered: Sequence[float], q: float) -> float:
    """The q-th percentile of sorted values, interpolated between the closest ranks."""
    if not ordered:
        raise ValueError("no values")
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Row:
    """One service in one environment (or everything, for the totals)."""

    service: str
    environment: str
    rollbacks: int = 0
    succeeded: int = 0
    failed: int = 0
    #: Confirmations cancelled or left to expire: asked for, never run.
    not_run: int = 0
    time_to_restore: Durations = field(default_factory=Durations)
    time_to_detection: Durations = field(default_factory=Durations)
    approval_wait: Durations = field(default_factory=Durations)
    by_strategy: dict[str, int] = field(default_factory=dict)
    by_trigger: dict[str, int] = field(default_factory=dict)

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.rollbacks if self.rollbacks else None


@dataclass(frozen=True)
class TrendPoint:
    start: datetime
    rollbacks: int
    #: Median time to restore of the rollbacks that succeeded in this period.
    median_restore: float | None


@dataclass(frozen=True)
class Stats:
    since: datetime
    until: datetime
    rows: tuple[Row, ...]
    total: Row
    trend: tuple[TrendPoint, ...]
    #: The trend's period: "day" or "week".
    period: str
    #: Rollback drills (and their forward steps), counted apart from the above.
    drills: Row = field(default_factory=lambda: Row("drills", "all"))


def entered(record: RollbackRecord, state: RollbackState) -> datetime | None:
    """When the record first entered `state`, from its timeline."""
    return next((e.at for e in record.timeline if e.state is state), None)


def time_to_restore(record: RollbackRecord) -> float | None:
    done = entered(record, S.SUCCEEDED) if record.state is S.SUCCEEDED else None
    return (done - record.created_at).total_seconds() if done else None


def time_to_detection(record: RollbackRecord) -> float | None:
    if record.bad_since is None:
        return None
    seconds = (record.created_at - record.bad_since).total_seconds()
    return seconds if seconds >= 0 else None


def approval_wait(record: RollbackRecord) -> float | None:
    asked = entered(record, S.AWAITING_APPROVAL)
    approved = entered(record, S.APPROVED)
    if asked is None or approved is None or approved < asked:
        return None
    return (approved - asked).total_seconds()


#: Every trigger a record has (bot/records.py), with how the stats name it.
TRIGGERS = {
    "manual": "person (Slack)",
    "cli": "person (terminal)",
    "automatic": "automatic",
    "follow-up": "follow-up",
    "drill": "drill",
    "drill-forward": "drill, forward step",
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the stats need of one finished rollback: a few fields, measured once
    when the record ends and kept beside it (reading 10 000 whole records would
    take seconds; these take milliseconds)."""

    record_id: str
    created_at: float  # a UNIX timestamp
    service: str
    namespace: str
    state: str
    strategy: str
    trigger: str
    time_to_restore: float | None
    time_to_detection: float | None
    approval_wait: float | None

    @classmethod
    def of(cls, record: RollbackRecord) -> Outcome:
        return cls(
            record.id,
            record.created_at.timestamp(),
            record.workload,
            record.namespace,
            record.state.value,
            record.strategy,
            record.trigger,
            time_to_restore(record),
            time_to_detection(record),
            approval_wait(record),
        )

    def to_json(self) -> str:
        return json.dumps([getattr(self, f) for f in self.__slots__])

    @classmethod
    def from_json(cls, text: str) -> Outcome:
        return cls(*json.loads(text))

    @property
    def ran(self) -> bool:
        return self.state in RAN


#: The histograms' upper bounds, in seconds: 30 s to a day.
BUCKETS = (30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0)
#: The durations kept as histograms, by the name of their Outcome field.
MEASURES = ("time_to_restore", "time_to_detection", "approval_wait")
#: The one duration a confirmation that never ran still has: the wait for approvals.
OF_ANY_OUTCOME = frozenset({"approval_wait"})


def measured(outcome: Outcome, measure: str) -> float | None:
    """One of the MEASURES of an outcome, if the figures count it: the same rule for
    the stats and the histograms, so the dashboard agrees with /rollback stats."""
    if outcome.ran or measure in OF_ANY_OUTCOME:
        value: float | None = getattr(outcome, measure)
        return value
    return None


def increments(outcome: Outcome) -> dict[str, float]:
    """What one finished rollback adds to the counters /metrics exposes, by field:
    kept in Redis and only ever added to, so every replica shows the same
    monotonic figures. A field is a JSON list: the total's labels, or a
    histogram's measure, service, namespace, trigger and bucket ("sum", "+Inf" or
    a bound). The trigger lets a dashboard leave drills out, as the stats do."""
    labels = [outcome.service, outcome.namespace]
    added = {json.dumps(["total", *labels, outcome.strategy, outcome.state, outcome.trigger]): 1.0}
    for measure in MEASURES:
        value = measured(outcome, measure)
        if value is None:
            continue
        series = [measure, *labels, outcome.trigger]
        added[json.dumps([*series, "sum"])] = value
        for bound in [*(b for b in BUCKETS if value <= b), "+Inf"]:
            added[json.dumps([*series, str(bound)])] = 1.0
    return added


def counted(record: RollbackRecord) -> bool:
    """Whether a record's end is a figure: a finished rollback, not a dry run."""
    return record.state.terminal and not record.dry_run


def _row(service: str, environment: str, outcomes: Sequence[Outcome]) -> Row:
    ran = [o for o in outcomes if o.ran]
    return Row(
        service=service,
        environment=environment,
        rollbacks=len(ran),
        succeeded=sum(o.state == S.SUCCEEDED for o in ran),
        failed=sum(o.state == S.FAILED for o in ran),
        not_run=len(outcomes) - len(ran),
        time_to_restore=Durations.of(_measured(outcomes, "time_to_restore")),
        time_to_detection=Durations.of(_measured(outcomes, "time_to_detection")),
        approval_wait=Durations.of(_measured(outcomes, "approval_wait")),
        by_strategy=dict(Counter(o.strategy for o in ran).most_common()),
        by_trigger=dict(Counter(TRIGGERS.get(o.trigger, o.trigger) for o in ran).most_common()),
    )


def _measured(outcomes: Iterable[Outcome], measure: str) -> list[float]:
    return [v for o in outcomes if (v := measured(o, measure)) is not None]


def compute(
    outcomes: Iterable[Outcome | RollbackRecord],
    environment_of: Callable[[str], str | None],
    *,
    since: datetime,
    until: datetime | None = None,
    service: str | None = None,
) -> Stats:
    """The stats of the rollbacks created in [since, until), of one service or all;
    dry runs and rollbacks still under way are left out of the figures."""
    until = until or datetime.now(UTC)
    low, high = since.timestamp(), until.timestamp()
    chosen = [
        o
        for o in (x if isinstance(x, Outcome) else _outcome(x) for x in outcomes)
        if o is not None
        and low <= o.created_at < high
        and (service is None or o.service == service)
    ]
    drills = [o for o in chosen if o.trigger in DRILL_TRIGGERS]
    chosen = [o for o in chosen if o.trigger not in DRILL_TRIGGERS]
    groups: dict[tuple[str, str], list[Outcome]] = {}
    for outcome in chosen:
        key = (outcome.service, environment_of(outcome.namespace) or outcome.namespace)
        groups.setdefault(key, []).append(outcome)
    rows = tuple(_row(s, e, group) for (s, e), group in sorted(groups.items()))
    period = timedelta(days=1) if until - since <= timedelta(days=31) else timedelta(weeks=1)
    return Stats(
        since=since,
        until=until,
        rows=rows,
        total=_row("all", "all", chosen),
        trend=_trend(chosen, since, until, period),
        period="day" if period == timedelta(days=1) else "week",
        drills=_row("drills", "all", drills),
    )


def _outcome(record: RollbackRecord) -> Outcome | None:
    return Outcome.of(record) if counted(record) else None


def _trend(
    outcomes: Sequence[Outcome], since: datetime, until: datetime, period: timedelta
) -> tuple[TrendPoint, ...]:
    count = max(1, math.ceil((until - since) / period))
    buckets: list[list[Outcome]] = [[] for _ in range(count)]
    start, step = since.timestamp(), period.total_seconds()
    for outcome in outcomes:
        if outcome.ran:
            buckets[min(count - 1, int((outcome.created_at - start) // step))].append(outcome)
    points = []
    for i, bucket in enumerate(buckets):
        restore = Durations.of(_measured(bucket, "time_to_restore"))
        points.append(TrendPoint(since + i * period, len(bucket), restore.median))
    return tuple(points)
