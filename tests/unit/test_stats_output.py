"""The stats written out: the headline and table people read, the CSV a
spreadsheet opens."""

from __future__ import annotations

from datetime import timedelta

from bot.records import RollbackRecord, RollbackState
from bot.stats import Stats, compute
from bot.stats_output import headline, table_lines
from tests.unit.test_stats import T0, environments, record

S = RollbackState


def figures(*records: RollbackRecord) -> Stats:
    day = timedelta(days=1)
    return compute(records, environments, since=T0 - day, until=T0 + day)


def test_the_headline_says_one_rollback_in_the_singular() -> None:
    one = figures(record(), record(end=S.CANCELLED))
    assert headline(one).startswith("1 rollback from 2026-10-31 to 2026-11-02: 100% succeeded")
    assert headline(one).endswith(", 1 asked for and not run")
    two = figures(record(), record(end=S.FAILED))
    assert headline(two).startswith("2 rollbacks from ")


def test_one_drill_step_is_said_in_the_singular() -> None:
    lines = table_lines(figures(record(), record(trigger="drill")))
    assert any(line.startswith("Drills (not counted above): 1 step, ") for line in lines)
