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

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.errors import InvalidInput
from bot.records import RollbackRecord, RollbackState

S = RollbackState

#: Records in these states ran (or tried to run) a rollback; cancelled and expired
#: confirmations are counted apart, dry runs not at all.
RAN = frozenset({S.SUCCEEDED, S.FAILED})

_WINDOW = re.compile(r"^\s*(\d{1,4})\s*([hdw])\s*$")
_UNIT = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def parse_window(text: str) -> timedelta:
    """`30d`, `12h`, `8w` → the window; anything else is refused with the forms allowed."""
    match = _WINDOW.match(text)
    if not match or int(match.group(1)) == 0:
        raise InvalidInput(f"--since takes a number and h, d or w (e.g. 30d), not {text!r}")
    return int(match.group(1)) * _UNIT[match.group(2)]


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


TRIGGERS = {"manual": "person (Slack)", "cli": "person (terminal)", "automatic": "automatic"}


def trigger_of(record: RollbackRecord) -> str:
    return TRIGGERS.get(record.trigger, record.trigger)


def _row(service: str, environment: str, records: Sequence[RollbackRecord]) -> Row:
    ran = [r for r in records if r.state in RAN]
    return Row(
        service=service,
        environment=environment,
        rollbacks=len(ran),
        succeeded=sum(r.state is S.SUCCEEDED for r in ran),
        failed=sum(r.state is S.FAILED for r in ran),
        not_run=sum(r.state in (S.CANCELLED, S.EXPIRED) for r in records),
        time_to_restore=Durations.of(_measured(ran, time_to_restore)),
        time_to_detection=Durations.of(_measured(ran, time_to_detection)),
        approval_wait=Durations.of(_measured(records, approval_wait)),
        by_strategy=dict(Counter(r.strategy for r in ran).most_common()),
        by_trigger=dict(Counter(trigger_of(r) for r in ran).most_common()),
    )


def _measured(
    records: Iterable[RollbackRecord], measure: Callable[[RollbackRecord], float | None]
) -> list[float]:
    return [v for v in map(measure, records) if v is not None]


def compute(
    records: Iterable[RollbackRecord],
    environment_of: Callable[[str], str | None],
    *,
    since: datetime,
    until: datetime | None = None,
    service: str | None = None,
) -> Stats:
    """The stats of the records created in [since, until), of one service or all;
    dry runs and rollbacks still under way are left out of the figures."""
    until = until or datetime.now(UTC)
    chosen = [
        r
        for r in records
        if since <= r.created_at < until
        and not r.dry_run
        and r.state.terminal
        and (service is None or r.workload == service)
    ]
    groups: dict[tuple[str, str], list[RollbackRecord]] = {}
    for record in chosen:
        key = (record.workload, environment_of(record.namespace) or record.namespace)
        groups.setdefault(key, []).append(record)
    rows = tuple(_row(s, e, rs) for (s, e), rs in sorted(groups.items()))
    period = timedelta(days=1) if until - since <= timedelta(days=31) else timedelta(weeks=1)
    return Stats(
        since=since,
        until=until,
        rows=rows,
        total=_row("all", "all", chosen),
        trend=_trend(chosen, since, until, period),
        period="day" if period == timedelta(days=1) else "week",
    )


def _trend(
    records: Sequence[RollbackRecord], since: datetime, until: datetime, period: timedelta
) -> tuple[TrendPoint, ...]:
    count = max(1, math.ceil((until - since) / period))
    buckets: list[list[RollbackRecord]] = [[] for _ in range(count)]
    for record in records:
        if record.state in RAN:
            buckets[min(count - 1, int((record.created_at - since) / period))].append(record)
    points = []
    for i, bucket in enumerate(buckets):
        restore = Durations.of(_measured(bucket, time_to_restore))
        points.append(TrendPoint(since + i * period, len(bucket), restore.median))
    return tuple(points)
