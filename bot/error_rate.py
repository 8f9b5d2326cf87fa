"""The error rate, as the runbook measures it (`kubectl logs --since=10m | grep
-i error`) or as Prometheus already knows it: a share of failing requests, or
"unknown" with the reason, never a guess.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from bot.checks import http_client
from bot.signals import PrometheusQuery


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
        raise UnusableAnswer(f"Prometheus says: {payload.get('error') or payload.get('status')}")
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
        return unknown(f"unreachable: {err}")
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
    return f": {said}" if said else ""
