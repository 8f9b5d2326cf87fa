"""The Grafana dashboard the chart ships asks only for what rollbot's /metrics
exports: every metric and every label its queries name."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import render
from bot.records import RollbackState
from bot.stats import Outcome, increments

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
