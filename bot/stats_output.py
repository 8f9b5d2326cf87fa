"""The stats written out: plain-text lines (the terminal's table, and what Slack
quotes), JSON and CSV for other tools, and a PNG chart of the trend."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict
from datetime import datetime
from typing import Any

from bot.records import DRILL_TRIGGERS
from bot.stats import TRIGGERS, Durations, Row, Stats
from bot.strategies import NAMES as STRATEGIES

COLUMNS = ("service", "environment", "rollbacks", "success", "MTTR", "p90", "detect", "approve")


def human(seconds: float | None) -> str:
    """45s, 12m, 3h05m, 2d04h: short enough for a table cell; "-" when unknown."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def _rate(row: Row) -> str:
    return "-" if row.success_rate is None else f"{row.success_rate:.0%}"


def _cells(row: Row) -> tuple[str, ...]:
    return (
        row.service,
        row.environment,
        str(row.rollbacks),
        _rate(row),
        human(row.time_to_restore.median),
        human(row.time_to_restore.p90),
        human(row.time_to_detection.median),
        human(row.approval_wait.median),
    )


def headline(stats: Stats) -> str:
    total = stats.total
    window = f"{stats.since:%Y-%m-%d} to {stats.until:%Y-%m-%d}"
    if not total.rollbacks and not total.not_run:
        return f"No rollbacks from {window}."
    return (
        f"{_plural(total.rollbacks, 'rollback')} from {window}: {_rate(total)} succeeded, "
        f"MTTR {human(total.time_to_restore.median)} (p90 {human(total.time_to_restore.p90)}), "
        f"{total.not_run} asked for and not run"
    )


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def table_lines(stats: Stats) -> list[str]:
    """The headline, then one aligned row per service and environment, then the
    strategies and triggers: plain text, for a terminal or a code block."""
    lines = [headline(stats)]
    if not stats.rows:
        return lines + _drill_line(stats)
    rows = [COLUMNS, *(_cells(r) for r in stats.rows)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines.append("")
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    lines.append("")
    lines.append("By strategy: " + _counts(stats.total.by_strategy))
    lines += _per_row(stats.rows, lambda row: row.by_strategy)
    lines.append("By trigger: " + _counts(stats.total.by_trigger))
    lines += _per_row(stats.rows, lambda row: row.by_trigger)
    lines += _drill_line(stats)
    lines.append(
        "MTTR: request to healthy; detect: bad rollout to request; approve: wait for a click"
    )
    return lines


def _per_row(rows: tuple[Row, ...], counts: Callable[[Row], dict[str, int]]) -> list[str]:
    """Under a total, each row's own counts, one indented line per row (as extra
    columns they would make the table too wide for Slack); none for one row."""
    if len(rows) < 2:
        return []
    names = [f"{row.service} {row.environment}" for row in rows]
    width = max(len(name) for name in names)
    return [
        f"  {name.ljust(width)}  {_counts(counts(row))}"
        for name, row in zip(names, rows, strict=True)
    ]


def _drill_line(stats: Stats) -> list[str]:
    drills = stats.drills
    if not drills.rollbacks:
        return []
    return [
        f"Drills (not counted above): {_plural(drills.rollbacks, 'step')}, "
        f"{_rate(drills)} succeeded, "
        f"time to restore {human(drills.time_to_restore.median)}"
    ]


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items()) or "-"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def as_json(stats: Stats) -> str:
    body = _plain(asdict(stats))
    for row in [body["total"], *body["rows"]]:
        row["success_rate"] = None if not row["rollbacks"] else row["succeeded"] / row["rollbacks"]
    return json.dumps(body, indent=2)


#: The triggers a row's rollbacks can have (drills are counted apart), by name.
ROW_TRIGGERS = tuple(t for t in TRIGGERS if t not in DRILL_TRIGGERS)


def as_csv(stats: Stats) -> str:
    """One line per service and environment, the durations in seconds, then a
    count column per strategy and per trigger: numbers a spreadsheet sums and
    pivots, where "undo=3;helm=1" cells would need parsing first. Every strategy
    and trigger rollbot has gets its column, used or not, so lines written on
    different days (the runbooks append them to a log) line up; one it no longer
    has, still in old records, is added at the end."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    measures = ("time_to_restore", "time_to_detection", "approval_wait")
    strategies = _columns(STRATEGIES, (s for row in stats.rows for s in row.by_strategy))
    labels = {label: name for name, label in TRIGGERS.items()}
    by_trigger = [{labels.get(k, k): n for k, n in row.by_trigger.items()} for row in stats.rows]
    triggers = _columns(ROW_TRIGGERS, (t for counts in by_trigger for t in counts))
    writer.writerow(
        [
            "service",
            "environment",
            "rollbacks",
            "succeeded",
            "failed",
            "not_run",
            "success_rate",
            *(f"{m}_{part}" for m in measures for part in ("median", "p90")),
            *(f"strategy_{name}" for name in strategies),
            *(f"trigger_{name}" for name in triggers),
        ]
    )
    for row, row_triggers in zip(stats.rows, by_trigger, strict=True):
        durations: list[Durations] = [getattr(row, m) for m in measures]
        writer.writerow(
            [
                row.service,
                row.environment,
                row.rollbacks,
                row.succeeded,
                row.failed,
                row.not_run,
                "" if row.success_rate is None else f"{row.success_rate:.4f}",
                *(_seconds(v) for d in durations for v in (d.median, d.p90)),
                *(row.by_strategy.get(name, 0) for name in strategies),
                *(row_triggers.get(name, 0) for name in triggers),
            ]
        )
    return out.getvalue()


def _columns(known: Iterable[str], seen: Iterable[str]) -> list[str]:
    """The known names in their order, then any other seen, sorted."""
    columns = list(known)
    return columns + sorted(set(seen) - set(columns))


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def chart_png(stats: Stats, title: str = "Rollbacks") -> bytes:
    """The trend: rollbacks per period (bars) and their median time to restore
    (a line, in minutes), as a PNG. matplotlib is imported here: only this needs it."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.dates import date2num
    from matplotlib.figure import Figure

    starts = [float(date2num(p.start)) for p in stats.trend]  # type: ignore[no-untyped-call]
    figure = Figure(figsize=(8, 4.5), dpi=100)
    counts = figure.add_subplot(2, 1, 1)
    width = 0.8 if stats.period == "day" else 5.6
    counts.bar(
        starts, [p.rollbacks for p in stats.trend], width=width, align="edge", color="#4a7bd0"
    )
    counts.set_ylabel("rollbacks")
    counts.set_title(
        f"{title} per {stats.period}, {stats.since:%Y-%m-%d} to {stats.until:%Y-%m-%d}"
    )
    restore = figure.add_subplot(2, 1, 2, sharex=counts)
    points = [
        (x, p.median_restore / 60)
        for x, p in zip(starts, stats.trend, strict=True)
        if p.median_restore is not None
    ]
    if points:
        xs, ys = zip(*points, strict=True)
        restore.plot(xs, ys, marker="o", color="#d0584a")
    restore.set_ylabel("MTTR (min)")
    restore.set_ylim(bottom=0)
    restore.xaxis_date()
    figure.autofmt_xdate()
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
