"""`/metrics`, written by the official Prometheus client.

Nothing is counted in the process: every figure comes from the store at scrape
time, so every replica reports the same numbers whichever of them handled a
rollback (aggregate with `max`, not `sum`, across replicas).

* `rollbot_rollbacks_total{service,namespace,environment,strategy,outcome,trigger}`
  and the histograms `rollbot_time_to_restore_seconds`,
  `rollbot_time_to_detection_seconds`, `rollbot_approval_wait_seconds`
  {service,namespace,environment,trigger}: counters in Redis that each finished
  rollback adds to once, in the write that ends it (bot/stats.increments), so
  they only grow, across restarts and replicas alike;
* `rollbot_rollbacks{state}`, `rollbot_dry_runs` and
  `rollbot_rollback_duration_seconds{outcome}`: gauges over the most recent
  records (what is under way now);
* `rollbot_store_up`: whether Redis answered this scrape.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from bot.records import RollbackRecord, RollbackState
from bot.stats import BUCKETS

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: How many of the most recent records the gauges are computed from.
WINDOW = 1000
#: The outcomes a duration is reported for: a rollback that ran to its end.
OUTCOMES = (RollbackState.SUCCEEDED, RollbackState.FAILED)
HISTOGRAMS = {
    "time_to_restore": "From the request to the service verified healthy.",
    "time_to_detection": "From the bad revision's rollout to the rollback request.",
    "approval_wait": "From the confirmation to its (last) approval.",
}


def duration_seconds(record: RollbackRecord) -> float | None:
    """From the request to the terminal state (the time to restore), if it ended."""
    finished = next((e.at for e in record.timeline if e.state.terminal), None)
    if finished is None:
        return None
    return max(0.0, (finished - record.created_at).total_seconds())


class _Scrape(Collector):
    def __init__(
        self,
        records: Sequence[RollbackRecord] | None,
        counters: Mapping[str, float] | None,
        environment_of: Callable[[str], str | None],
    ) -> None:
        self.records, self.counters, self.environment_of = records, counters, environment_of

    def collect(self) -> Iterator[Metric]:
        up = self.records is not None and self.counters is not None
        yield GaugeMetricFamily(
            "rollbot_store_up", "Whether the store (Redis) answered this scrape.", int(up)
        )
        if self.counters is not None:
            yield from self._counters(self.counters)
        if self.records is not None:
            yield from self._recent(self.records)

    def _environment(self, namespace: str) -> str:
        return self.environment_of(namespace) or ""

    def _counters(self, counters: Mapping[str, float]) -> Iterator[Metric]:
        total = CounterMetricFamily(
            "rollbot_rollbacks",
            "Finished rollbacks (dry runs aside), by how they ended.",
            labels=["service", "namespace", "environment", "strategy", "outcome", "trigger"],
        )
        series: dict[str, dict[tuple[str, str, str], dict[str, float]]] = defaultdict(
            lambda: defaultdict(dict)
        )
        for field, value in sorted(counters.items()):
            try:
                parts = [str(p) for p in json.loads(field)]
            except ValueError:
                continue  # not one of ours
            if parts[0] == "total" and len(parts) == 6:
                service, namespace, strategy, outcome, trigger = parts[1:]
                labels = [service, namespace, self._environment(namespace)]
                total.add_metric([*labels, strategy, outcome, trigger], value)
            elif parts[0] in HISTOGRAMS and len(parts) == 5:
                series[parts[0]][(parts[1], parts[2], parts[3])][parts[4]] = value
            elif parts[0] in HISTOGRAMS and len(parts) == 4:  # kept before the trigger was
                series[parts[0]][(parts[1], parts[2], "")][parts[3]] = value
        yield total
        for measure, documentation in HISTOGRAMS.items():
            histogram = HistogramMetricFamily(
                f"rollbot_{measure}_seconds",
                documentation,
                labels=["service", "namespace", "environment", "trigger"],
            )
            for (service, namespace, trigger), values in sorted(series[measure].items()):
                # Each rollback added 1 to every bucket its duration fits: cumulative.
                buckets = [(str(b), values.get(str(b), 0.0)) for b in BUCKETS]
                buckets.append(("+Inf", values.get("+Inf", 0.0)))
                histogram.add_metric(
                    [service, namespace, self._environment(namespace), trigger],
                    buckets,
                    values.get("sum", 0.0),
                )
            yield histogram

    def _recent(self, records: Sequence[RollbackRecord]) -> Iterator[Metric]:
        rollbacks = [r for r in records if not r.dry_run]
        by_state = Counter(r.state for r in rollbacks)
        gauge = GaugeMetricFamily(
            "rollbot_rollbacks",
            f"Rollbacks by state among the {WINDOW} most recent requests (dry runs aside).",
            labels=["state"],
        )
        for state in RollbackState:
            gauge.add_metric([state.value], by_state[state])
        yield gauge
        yield GaugeMetricFamily(
            "rollbot_dry_runs",
            "Dry runs among the most recent requests.",
            len(records) - len(rollbacks),
        )
        summary = SummaryMetricFamily(
            "rollbot_rollback_duration_seconds",
            "Request to outcome, of the finished rollbacks among the most recent requests.",
            labels=["outcome"],
        )
        for outcome in OUTCOMES:
            durations = [
                d
                for r in rollbacks
                if r.state is outcome and (d := duration_seconds(r)) is not None
            ]
            summary.add_metric([outcome.value], len(durations), float(sum(durations)))
        yield summary


def render(
    records: Sequence[RollbackRecord] | None,
    counters: Mapping[str, float] | None = None,
    environment_of: Callable[[str], str | None] = lambda _: None,
) -> str:
    """The exposition text; `records` or `counters` None: the store could not be read."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Scrape(records, counters, environment_of))
    return generate_latest(registry).decode()
