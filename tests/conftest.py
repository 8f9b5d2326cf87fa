"""Suite-wide rules.

Property-based tests (hypothesis) run with the profile below.

In CI (CI=true) a skipped test is a failed run: an integration test that could
not reach its control plane or Redis has proved nothing, and must say so loudly.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Property tests: no per-example deadline (a busy 2-core machine is not a bug in
# the code under test), and in CI a fixed set of examples, the same every run, so
# a red run is a finding to reproduce, not luck. `make faults` runs them random.
settings.register_profile("rollbot", deadline=None, derandomize=IN_CI, print_blob=True)
settings.load_profile("rollbot")
_skipped: list[str] = []


def unavailable(reason: str) -> None:
    """A real component could not start: fail in CI, skip (with the reason) elsewhere."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: a missing component fails the run)", pytrace=False)
    pytest.skip(reason)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    # A module that skips itself at import (pytest.skip(allow_module_level=True),
    # importorskip) is a collection report, never a test report: count it too.
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if IN_CI and _skipped and exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus: int) -> None:  # type: ignore[no-untyped-def]
    if IN_CI and _skipped:
        terminalreporter.write_line(
            f"CI=true and {len(_skipped)} test(s) skipped; a skipped test is not a pass:",
            red=True,
        )
        for nodeid in _skipped:
            terminalreporter.write_line(f"  {nodeid}", red=True)
