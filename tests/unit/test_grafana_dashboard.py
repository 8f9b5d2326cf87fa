"""The Grafana dashboard the chart ships asks only for what rollbot's /metrics
exports: every metric and every label its queries name; and it counts what
/rollback stats counts: rollbacks that ran, drills apart."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import render
from bot.records import DRILL_TRIGGERS, RollbackState
from bot.stats import TRIGGERS, Outcome, increments

DASHBOARD = Path(__file__).resolve().parents[2] / "helm/rollbot/dashboards/rollbot.json"
METRIC = re.compile(r"\brollbot_[a-z_]+\b")
GROUPING = re.compile(r"\bby \(([^)]*)\)")
SELECTOR = re.compile(r"\{([^}]*)\}")
LABEL = re.compile(r"([a-z_]+)\s*(?:=~|!~|!=|=)")


def exported() -> dict[str, set[str]]:
    """Each sample name /metrics writes, with its label names, from a store that
    has seen a rollback of each outcome."""
    counters: dict[str, float] = {}
    for state in ("succeeded", "failed", "cancelled"):
        outcome = Outcome("rb-1", 0.0, "web", "prod", state, "undo", "manual", 120.0, 600.0, 30.0)
        for field, amount in increments(outcome).items():
            counters[field] = counters.get(field, 0.0) + amount
    text = render([], counters, {"prod": "production"}.get)
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def queries(node: Any) -> list[str]:
    """Every PromQL text in the dashboard: panel targets and variable queries."""
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k in ("expr", "definition") and isinstance(v, str)]
        return found + [q for v in node.values() for q in queries(v)]
    if isinstance(node, list):
        return [q for v in node for q in queries(v)]
    return []


DASHBOARD_QUERIES = queries(json.loads(DASHBOARD.read_text()))


def test_the_dashboard_has_panels_with_queries() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    assert len(panels) >= 6 and len(DASHBOARD_QUERIES) >= len(panels)


@pytest.mark.parametrize("query", DASHBOARD_QUERIES)
def test_every_query_names_metrics_and_labels_rollbot_exports(query: str) -> None:
    metrics = exported()
    named = set(METRIC.findall(query))
    assert named, f"no rollbot metric in {query!r}"
    missing = named - set(metrics)
    assert not missing, f"{query!r} asks for {missing}, not exported"
    labels = set().union(*(metrics[name] for name in named))
    used = {
        label.strip()
        for group in GROUPING.findall(query)
        for label in group.split(",")
        if label.strip()
    }
    used |= {label for selector in SELECTOR.findall(query) for label in LABEL.findall(selector)}
    used |= set(re.findall(r"label_values\([a-z_]+, ([a-z_]+)\)", query))
    assert used <= labels, f"{query!r} uses labels {used - labels} the metrics do not have"


def test_a_rollback_state_in_a_query_is_one_rollbot_has() -> None:
    states = {s.value for s in RollbackState}
    for query in DASHBOARD_QUERIES:
        for alternatives in re.findall(r'state=~"([^"]+)"', query):
            assert set(alternatives.split("|")) <= states, query


#: A metric and its selector, e.g. ("rollbot_rollbacks_total", 'service=~"$service", …').
SELECTED = re.compile(r"\b(rollbot_[a-z_]+)\{([^}]*)\}")
MATCHER = re.compile(r'([a-z_]+)\s*(=~|!~|!=|=)\s*"([^"]*)"')
#: The metrics a rollback adds to when it ends, each labelled with its trigger.
PER_ROLLBACK = re.compile(r"rollbot_(rollbacks_total|[a-z_]+_seconds_bucket)$")
RAN = {"succeeded", "failed"}


def panels() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(DASHBOARD.read_text())["panels"]
    return found


def selectors(panel: dict[str, Any]) -> list[tuple[str, str, dict[str, tuple[str, str]]]]:
    """Each per-rollback metric a panel asks for: (query, metric, {label: (op, value)})."""
    return [
        (query, metric, {label: (op, value) for label, op, value in MATCHER.findall(selector)})
        for query in queries(panel)
        for metric, selector in SELECTED.findall(query)
        if PER_ROLLBACK.match(metric)
    ]


def is_drills(panel: dict[str, Any]) -> bool:
    return bool(panel["title"].startswith("Drills"))


def test_the_drill_pattern_matches_the_drill_triggers_and_no_other() -> None:
    assert {t for t in TRIGGERS if re.fullmatch("drill.*", t)} == DRILL_TRIGGERS


def test_rollback_panels_leave_drills_out_as_the_stats_do() -> None:
    chosen = [s for p in panels() if not is_drills(p) for s in selectors(p)]
    assert len(chosen) >= 10
    for query, metric, matchers in chosen:
        assert matchers.get("trigger") == ("!~", "drill.*"), f"{metric} counts drills: {query!r}"


def test_rollbacks_counted_are_those_that_ran_unless_split_by_outcome() -> None:
    """/rollback stats counts a rollback that succeeded or failed; a confirmation
    cancelled or left to expire is no rollback, except where a panel shows each outcome."""
    for panel in panels():
        for query, metric, matchers in selectors(panel):
            if metric != "rollbot_rollbacks_total" or "by (outcome)" in query:
                continue
            op, value = matchers.get("outcome", ("", ""))
            assert op in ("=", "=~") and set(value.split("|")) <= RAN, (panel["title"], query)


def test_outcomes_named_are_states_a_rollback_ends_in() -> None:
    ends = {s.value for s in RollbackState if s.terminal}
    for panel in panels():
        for query, _, matchers in selectors(panel):
            if "outcome" in matchers:
                assert set(matchers["outcome"][1].split("|")) <= ends, query


def test_a_drills_panel_counts_drill_steps_apart() -> None:
    (drills,) = [p for p in panels() if is_drills(p)]
    chosen = selectors(drills)
    assert chosen
    for query, metric, matchers in chosen:
        assert metric == "rollbot_rollbacks_total", query
        assert matchers.get("trigger") == ("=~", "drill.*"), query
