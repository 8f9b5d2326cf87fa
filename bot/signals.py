"""What a service's catalog entry says about telling trouble apart: the error rate
(a log pattern over the recent logs, or a Prometheus query), the decision
matrix's thresholds, and what makes an opted-in Deployment roll back on its own.

Defaults are the family-assistant runbook's matrix: API down → critical; more
than 50 % errors or answers slower than 10 s → high, roll back now; a lower
error rate → medium, monitor for 5–10 minutes and roll back if it gets worse.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_ERROR_PATTERN = r"\b(ERROR|FATAL|CRITICAL|Traceback|Exception|panic:)|\" 5\d\d "


class PrometheusQuery(BaseModel):
    """A PromQL query whose value is the error ratio (0–1), asked over HTTP."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    #: Prometheus' base URL, e.g. http://prometheus.monitoring:9090
    url: str
    #: e.g. sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))
    query: str
    timeout_seconds: float = Field(default=3, gt=0)


class ErrorRate(BaseModel):
    """How to measure the share of failing requests."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    #: A line of the pods' logs matching this counts as an error (Python regex).
    log_pattern: str = DEFAULT_ERROR_PATTERN
    #: How far back to read the logs.
    window_minutes: float = Field(default=10, gt=0)
    #: When given, the error rate comes from Prometheus rather than the logs.
    prometheus: PrometheusQuery | None = None

    @field_validator("log_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as err:
            raise ValueError(f"log_pattern is not a valid regular expression: {err}") from err
        return value


class Thresholds(BaseModel):
    """The numbers of the decision matrix."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    #: An error rate above this is high severity: roll back now.
    high_error_rate: float = Field(default=0.5, ge=0, le=1)
    #: A health check slower than this is high severity: roll back now.
    slow_response_seconds: float = Field(default=10, gt=0)
    #: For a "monitor" recommendation: when to assess again.
    monitor_minutes: float = Field(default=10, gt=0)


class AutoRollbackTriggers(BaseModel):
    """What counts as a fresh revision failing, for automatic rollback."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    #: The new revision missed its progress deadline.
    progress_deadline: bool = True
    #: A pod of the new revision restarted this many times (crash loop); None: ignore.
    crash_loop_restarts: int | None = Field(default=3, ge=1)
    #: The service's health checks failed for this long without a pause; None: ignore.
    failing_checks_seconds: float | None = Field(default=None, gt=0)
