"""The stats written out: the headline and table people read, the CSV a
spreadsheet opens."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from bot.records import RollbackRecord, RollbackState
from bot.stats import Stats, compute
from bot.stats_output import as_csv, headline, table_lines
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


def spreadsheet(stats: Stats) -> dict[str, dict[str, str]]:
    return {row["service"]: row for row in csv.DictReader(io.StringIO(as_csv(stats)))}


def test_every_csv_row_counts_its_rollbacks_per_strategy_and_trigger() -> None:
    rows = spreadsheet(
        figures(
            record(workload="web", strategy="helm", trigger="automatic"),
            record(workload="web", trigger="follow-up"),
            record(workload="api", trigger="cli", end=S.FAILED),
            record(workload="api", end=S.CANCELLED),  # not run: in no count
        )
    )
    web, api = rows["web"], rows["api"]
    assert (web["strategy_helm"], web["strategy_undo"], web["strategy_blue-green"]) == (
        "1",
        "1",
        "0",
    )
    assert (web["trigger_automatic"], web["trigger_follow-up"], web["trigger_manual"]) == (
        "1",
        "1",
        "0",
    )
    assert (api["strategy_undo"], api["trigger_cli"], api["trigger_manual"]) == ("1", "1", "0")


def test_the_csv_columns_stay_the_same_whatever_the_window_holds() -> None:
    """Lines appended to a log (the runbooks' CSV) keep meaning the same columns."""
    empty = as_csv(figures()).splitlines()[0]
    full = as_csv(figures(record(strategy="helm"), record(trigger="cli"))).splitlines()[0]
    assert empty == full
    assert "trigger_drill" not in empty  # drills are no row's rollbacks


def test_a_strategy_rollbot_no_longer_knows_still_gets_its_column() -> None:
    rows = spreadsheet(figures(record(strategy="retired")))
    assert rows["web"]["strategy_retired"] == "1"


def test_the_table_breaks_strategies_and_triggers_down_per_row() -> None:
    lines = table_lines(
        figures(
            record(workload="web", strategy="helm", trigger="automatic"),
            record(workload="web"),
            record(workload="api", namespace="stg", trigger="cli"),
        )
    )
    at = lines.index("By strategy: undo 2, helm 1")
    assert lines[at + 1 : at + 3] == [
        "  api staging     undo 1",
        "  web production  helm 1, undo 1",
    ]
    at = lines.index("By trigger: automatic 1, person (Slack) 1, person (terminal) 1")
    assert lines[at + 1 : at + 3] == [
        "  api staging     person (terminal) 1",
        "  web production  automatic 1, person (Slack) 1",
    ]


def test_one_row_is_not_broken_down_again() -> None:
    lines = table_lines(figures(record(), record(strategy="helm")))
    at = lines.index("By strategy: undo 1, helm 1")
    assert not lines[at + 1].startswith("  ")
