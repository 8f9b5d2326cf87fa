"""Health checks, smoke tests and version checks against a real local HTTP service."""

from __future__ import annotations

import time

import pytest

from bot.checks import HttpCheck, run_checks, run_until_passing
from testbed.http_service import FakeService


@pytest.fixture
def service():
    with FakeService() as svc:
        yield svc


def health(svc, **extra):
    return HttpCheck(**{"name": "health", "url": f"{svc.url}/health", **extra})


def test_a_healthy_service_passes_health_smoke_and_version_checks(service):
    smoke = HttpCheck(
        name="chat",
        url=f"{service.url}/chat",
        method="POST",
        json_body={"message": "test", "user_id": "rollbot"},
        expect_field="response",
    )
    version = HttpCheck(
        name="version", url=f"{service.url}/api", expect_values={"version": "1.5.0"}
    )
    results = run_checks([health(service, expect_body="healthy"), smoke, version])
    assert [r.ok for r in results] == [True, True, True], [r.line() for r in results]


def test_failures_say_what_was_wrong(service):
    service.mode = "failing"
    [five_hundred] = run_checks([health(service)])
    assert not five_hundred.ok and five_hundred.detail == "HTTP 500, expected 200"
    service.mode = "healthy"
    service.version = "1.6.0"
    [wrong] = run_checks(
        [HttpCheck(name="v", url=f"{service.url}/api", expect_values={"version": "1.5.0"})]
    )
    assert wrong.detail == "version is '1.6.0', expected '1.5.0'"
    [missing] = run_checks([HttpCheck(name="c", url=f"{service.url}/api", expect_field="response")])
    assert missing.detail == "the answer has no 'response'"


def test_a_slow_service_times_out_and_checks_run_concurrently(service):
    service.mode, service.slow_seconds = "slow", 2
    started = time.monotonic()
    results = run_checks([health(service, timeout_seconds=0.5, name=f"h{i}") for i in range(4)])
    assert all(r.detail == "no answer within 0.5s" for r in results)
    assert time.monotonic() - started < 1.5, "four time-outs in parallel, not in a row"


def test_nothing_listening_is_unreachable():
    [result] = run_checks([HttpCheck(name="gone", url="http://127.0.0.1:1/health")])
    assert not result.ok and result.detail.startswith("unreachable")


def test_checks_are_retried_until_the_service_recovers(service):
    service.mode = "failing"
    naps: list[float] = []

    def nap(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 2:
            service.mode = "healthy"

    results, attempts = run_until_passing([health(service)], attempts=5, interval=10, sleep=nap)
    assert attempts == 3 and results[0].ok
    assert naps == [10, 10]
