"""HTTP health checks, smoke tests and version checks, as the runbooks run them
with curl: concurrent, with time-outs, and retried where a rollout needs time.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.deployments import pointer_value

if TYPE_CHECKING:  # imported when a check runs: the config (and so the CLI) needs none
    import httpx


class HttpCheck(BaseModel):
    """One request and what its answer must be (a health check or a smoke test)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    name: str
    url: str
    method: Literal["GET", "POST", "PUT", "HEAD"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    #: A JSON body to send (smoke tests: `POST /chat {"message": "test"}`).
    json_body: Any = None
    expect_status: int = 200
    #: A fragment the body must contain.
    expect_body: str | None = None
    #: A JSON field that must be present (e.g. "response"), as a dotted path.
    expect_field: str | None = None
    #: A JSON field and the value it must have (e.g. {"version": "1.5.0"}).
    expect_values: dict[str, Any] = Field(default_factory=dict)
    #: Compare expect_values as versions: "v1.2.3" and "1.2.3" are the same.
    versions: bool = False
    timeout_seconds: float = Field(default=5, gt=0)


def same_version(got: Any, wanted: Any) -> bool:
    return isinstance(got, str) and str(wanted).removeprefix("v") == got.removeprefix("v")


class VersionCheck(BaseModel):
    """After a rollback, the service must report the version it was rolled back to
    (jarvis-api: `GET /api` → `.version`). The expected value is the target image's
    tag, a leading "v" ignored on either side."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    url: str
    #: The JSON field holding the version, as a dotted path ("version", "build.version").
    json_path: str = "version"
    #: Which container's image tag is the version (default: the first container).
    container: str | None = None
    timeout_seconds: float = Field(default=5, gt=0)

    def expecting(self, version: str) -> HttpCheck:
        """The check as an HttpCheck that wants `version` at `json_path`."""
        return HttpCheck(
            name="version",
            url=self.url,
            expect_values={self.json_path: version},
            versions=True,
            timeout_seconds=self.timeout_seconds,
        )


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    status: int | None = None
    seconds: float = 0.0

    def line(self) -> str:
        mark = "✓" if self.ok else "✗"
        return f"{mark} {self.name}: {self.detail}"


def _field(data: Any, dotted: str) -> Any:
    return pointer_value(data, "/" + dotted.replace(".", "/"))


def run_check(check: HttpCheck, client: httpx.Client) -> CheckResult:
    import httpx

    started = time.monotonic()
    try:
        response = client.request(
            check.method,
            check.url,
            headers=check.headers,
            json=check.json_body,
            timeout=check.timeout_seconds,
        )
    except httpx.TimeoutException:
        return CheckResult(
            check.name,
            False,
            f"no answer within {check.timeout_seconds:g}s",
            seconds=time.monotonic() - started,
        )
    except httpx.HTTPError as err:
        return CheckResult(
            check.name, False, f"unreachable: {err}", seconds=time.monotonic() - started
        )
    seconds = time.monotonic() - started

    def result(ok: bool, detail: str) -> CheckResult:
        return CheckResult(check.name, ok, detail, response.status_code, seconds)

    if response.status_code != check.expect_status:
        return result(False, f"HTTP {response.status_code}, expected {check.expect_status}")
    if check.expect_body and check.expect_body not in response.text:
        return result(False, f"the answer lacks {check.expect_body!r}")
    if check.expect_field or check.expect_values:
        try:
            data = response.json()
        except (json.JSONDecodeError, ValueError):
            return result(False, "the answer is not JSON")
        if check.expect_field and _field(data, check.expect_field) is None:
            return result(False, f"the answer has no {check.expect_field!r}")
        for path, wanted in check.expect_values.items():
            got = _field(data, path)
            if got != wanted and not (check.versions and same_version(got, wanted)):
                return result(False, f"{path} is {got!r}, expected {wanted!r}")
    return result(True, f"HTTP {response.status_code} in {seconds * 1000:.0f} ms")


_client: httpx.Client | None = None
_client_lock = threading.Lock()


def http_client() -> httpx.Client:
    """One client for the process: building one loads the TLS trust store (~30 ms of
    CPU, a tenth of an assessment's budget); an httpx.Client is safe across threads."""
    import httpx

    global _client
    with _client_lock:
        if _client is None:
            _client = httpx.Client(follow_redirects=True)
        return _client


def run_checks(checks: Sequence[HttpCheck]) -> list[CheckResult]:
    """Every check at once; results in the order of `checks`."""
    if not checks:
        return []
    client = http_client()
    with ThreadPoolExecutor(max_workers=min(8, len(checks))) as pool:
        return list(pool.map(lambda c: run_check(c, client), checks))


def run_until_passing(
    checks: Sequence[HttpCheck], attempts: int, interval: float, sleep: Any = time.sleep
) -> tuple[list[CheckResult], int]:
    """Retry the whole set until all pass (the runbooks' 5 tries, 10 s apart)."""
    results: list[CheckResult] = []
    for attempt in range(1, attempts + 1):
        results = run_checks(checks)
        if all(r.ok for r in results):
            return results, attempt
        if attempt < attempts:
            sleep(interval)
    return results, attempts
