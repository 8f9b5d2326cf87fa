"""The error rate, as the runbook measures it (`kubectl logs --since=10m | grep
-i error`) or as Prometheus already knows it: a share of failing requests, or
"unknown" with the reason, never a guess.

The pods' logs are read a few at a time from a sample of the pods, within the
assessment's deadline; the matching lines are kept (redacted: they are quoted
to people) as evidence.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import httpx

from bot.checks import http_client
from bot.errors import RollbotError
from bot.redaction import redact
from bot.signals import PrometheusQuery

Body = dict[str, Any]
#: A workload with more pods has this many of them sampled (and says so).
MAX_LOG_PODS = 8
#: Pod logs read at once: enough to hide the apiserver's latency, few enough to spare it.
LOG_READERS = 4
#: The newest lines read of each pod's log within the window; a share needs no more.
LOG_TAIL_LINES = 300


def percent(rate: float) -> str:
    """12 %, 4.8 %, 0.05 %: two significant digits, and never 100 % for less."""
    value = rate * 100
    if value >= 10:
        shown = f"{value:.0f}"
        return f"{value:.1f} %" if shown == "100" and value < 100 else f"{shown} %"
    return f"{value:.2g} %"


@dataclass(frozen=True)
class ErrorRateReading:
    """One source's error rate; `rate` None means unknown and `note` says why."""

    origin: Literal["logs", "Prometheus"]
    rate: float | None
    note: str = ""
    #: From the logs: how far back they were read, the lines read, those matching.
    window_minutes: float | None = None
    lines: int = 0
    matching: int = 0

    def line(self) -> str:
        source: str = self.origin
        if self.window_minutes is not None:
            source += f", last {self.window_minutes:g} min"
        value = "unknown" if self.rate is None else percent(self.rate)
        return f"Error rate ({source}): {value}" + (f" ({self.note})" if self.note else "")


@dataclass(frozen=True)
class LineCount:
    lines: int
    matching: tuple[str, ...]


def count_lines(text: str, pattern: re.Pattern[str]) -> LineCount:
    """The non-empty lines of a log, and those that match `pattern`."""
    lines = [line for line in text.splitlines() if line.strip()]
    return LineCount(len(lines), tuple(line for line in lines if pattern.search(line)))


class UnusableAnswer(ValueError):
    """Prometheus answered, but not with one error ratio; the message says why."""


def prometheus_value(payload: Any) -> float:
    """The ratio in a `/api/v1/query` answer: a scalar or a one-element vector."""
    if not isinstance(payload, dict):
        raise UnusableAnswer("the answer is not a Prometheus query result")
    if payload.get("status") != "success":
        said = redact(str(payload.get("error") or payload.get("status")))
        raise UnusableAnswer(f"Prometheus says: {said}")
    data = payload.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    sample: Any
    if kind == "scalar":
        sample = result
    elif kind == "vector" and isinstance(result, list):
        if not result:
            raise UnusableAnswer("the query returned no series (no traffic, or a wrong label?)")
        if len(result) > 1:
            raise UnusableAnswer(f"the query returned {len(result)} series, not one: sum() them")
        sample = result[0].get("value") if isinstance(result[0], dict) else None
    else:
        raise UnusableAnswer(f"the query returned a {kind}, not a scalar or a vector")
    try:
        value = float(sample[1])
    except (TypeError, IndexError, KeyError, ValueError) as err:
        raise UnusableAnswer(f"the answer holds no number ({err})") from err
    if math.isnan(value):
        raise UnusableAnswer("the query gave NaN (no requests in its range?)")
    if not 0 <= value <= 1:
        raise UnusableAnswer(f"the query gave {value:g}, not a ratio between 0 and 1")
    return value


def prometheus_error_rate(query: PrometheusQuery) -> ErrorRateReading:
    """Ask Prometheus; every way it can fail is an unknown reading with its reason."""

    def unknown(reason: str) -> ErrorRateReading:
        return ErrorRateReading("Prometheus", None, reason)

    try:
        response = http_client().get(
            f"{query.url.rstrip('/')}/api/v1/query",
            params={"query": query.query},
            timeout=query.timeout_seconds,
        )
    except httpx.TimeoutException:
        return unknown(f"no answer within {query.timeout_seconds:g}s")
    except httpx.HTTPError as err:
        return unknown(f"unreachable: {redact(str(err))}")
    if response.status_code != 200:
        return unknown(f"HTTP {response.status_code}" + _said(response))
    try:
        payload = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return unknown("the answer is not JSON")
    try:
        return ErrorRateReading("Prometheus", prometheus_value(payload))
    except UnusableAnswer as err:
        return unknown(str(err))


def _said(response: httpx.Response) -> str:
    """Prometheus' own error message, when its error answer carries one."""
    try:
        said = response.json().get("error")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return ""
    return f": {redact(str(said))}" if said else ""


class LogSource(Protocol):
    def pod_log(
        self, namespace: str, pod: str, since_seconds: int, tail: int, container: str | None = None
    ) -> str: ...


@dataclass(frozen=True)
class LogLine:
    """A log line that matched the error pattern, redacted, and the pod that logged it."""

    pod: str
    text: str

    def line(self) -> str:
        return f"{self.pod}: {self.text}"


def sample_pods(names: Sequence[str], size: int) -> list[str]:
    """At most `size` pods, spread evenly over the name order. Pod names start with
    their ReplicaSet's hash, so mid-rollout each revision gets its share."""
    ordered = sorted(names)
    if len(ordered) <= size:
        return ordered
    return [ordered[i * len(ordered) // size] for i in range(size)]


@dataclass(frozen=True)
class LogScan:
    """What the sampled pods' logs held, and what could not be read."""

    pods: int  # the workload's pods
    sampled: int  # those whose logs were asked for
    read: int
    late: int  # asked, but no answer before the budget ran out
    unreadable: tuple[str, ...]  # "pod: reason"
    lines: int
    error_lines: tuple[LogLine, ...]
    capped: bool  # some pod logged more than LOG_TAIL_LINES within the window

    @property
    def answered(self) -> bool:
        """Whether the logs can be called read at all (not one late answer only)."""
        return self.read > 0 or not self.late

    def reading(self, window_minutes: float) -> ErrorRateReading:
        def unknown(reason: str) -> ErrorRateReading:
            return ErrorRateReading("logs", None, reason, window_minutes)

        if not self.pods:
            return unknown("no pods")
        if not self.answered:
            return unknown("no answer in time")
        if not self.read:
            return unknown(f"no pod's log readable; {self.unreadable[0]}")
        if not self.lines:
            return unknown("no log lines in the window")
        matching = len(self.error_lines)
        notes = [f"{matching} of {self.lines} lines"]
        if self.sampled < self.pods:
            notes.append(f"a sample of {self.sampled} of {self.pods} pods")
        if self.capped:
            notes.append(f"at most the newest {LOG_TAIL_LINES} lines of each pod")
        if self.late:
            notes.append(f"{self.late} pods' logs did not answer in time")
        if self.unreadable:
            notes.append(f"{len(self.unreadable)} pods' logs not readable")
        return ErrorRateReading(
            "logs",
            matching / self.lines,
            "; ".join(notes),
            window_minutes,
            self.lines,
            matching,
        )


def read_logs(
    source: LogSource,
    namespace: str,
    pods: list[Body],
    pattern: re.Pattern[str],
    since_seconds: int,
    deadline: float,
) -> LogScan:
    """The sampled pods' logs, a few at a time, until `deadline` (time.monotonic())."""
    names = sample_pods([p["metadata"]["name"] for p in pods], MAX_LOG_PODS)
    if not names:
        return LogScan(0, 0, 0, 0, (), 0, (), False)
    # The first container is the application's; a sidecar's log would only dilute it.
    main_container = {
        p["metadata"]["name"]: ((p.get("spec") or {}).get("containers") or [{}])[0].get("name")
        for p in pods
    }

    def one(pod: str) -> tuple[int, tuple[LogLine, ...], bool] | str:
        try:
            text = source.pod_log(
                namespace, pod, since_seconds, LOG_TAIL_LINES, main_container.get(pod)
            )
        except RollbotError as err:  # e.g. a container that has not started: no log yet
            return f"{pod}: {redact(str(err))}"
        count = count_lines(text, pattern)
        capped = len(text.splitlines()) >= LOG_TAIL_LINES
        return (
            count.lines,
            tuple(LogLine(pod, redact(line.strip())) for line in count.matching),
            capped,
        )

    pool = ThreadPoolExecutor(max_workers=min(LOG_READERS, len(names)))
    futures = [pool.submit(one, name) for name in names]
    done, late = wait(futures, timeout=max(0.0, deadline - time.monotonic()))
    pool.shutdown(wait=False, cancel_futures=True)
    lines, read, capped = 0, 0, False
    found: list[LogLine] = []
    unreadable: list[str] = []
    for future in futures:  # in name order, whatever order they finished in
        if future not in done:
            continue
        result = future.result()
        if isinstance(result, str):
            unreadable.append(result)
            continue
        read += 1
        lines += result[0]
        found += result[1]
        capped = capped or result[2]
    return LogScan(
        len(pods), len(names), read, len(late), tuple(unreadable), lines, tuple(found), capped
    )
