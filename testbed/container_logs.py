"""What the test bed's containers "print": log lines made up from the pod itself.

Nothing runs, so a container's log is a pure function of its pod and the clock:
the same pod read twice gives the same lines, and a log grows as time passes.
The fake kubelet (`testbed.kubelet`) serves it as the real kubelet serves
`/containerLogs`, so `kubectl logs` and rollbot's `Kube.pod_log` read it through
the apiserver.

* A running container logs a start-up preamble (its image, its port, "ready")
  from `state.running.startedAt`, then one access-log line per request:

      INFO  10.244.7.31 "GET /api/orders/4127 HTTP/1.1" 200 23ms
      ERROR 10.244.2.9 "POST /api/checkout HTTP/1.1" 503 2004ms: upstream timed out after 2s

* A crash-looping container (a "broken" image) logs, for its last attempt, a
  start, an `ERROR startup failed: …` line and a Python traceback; `previous`
  gives the attempt before.
* A container that runs to completion (a Job's pod) logs its start and what it
  runs; once it has ended, `done` or, with a non-zero exit code, an error and a
  traceback, then the code. (A pod run locally logs its process's real output:
  the kubelet serves that, not these.)
* Init containers log two lines; a container not started yet has no log (the
  kubelet answers 400, as the real one does).

Tests steer it from the pod template, so a rollback changes it too:

* `testbed.rollbot.dev/log-errors` (pod annotation) or `TESTBED_LOG_ERRORS`
  (container env, wins over the annotation): the fraction of request lines that
  are ERROR 5xx lines, 0 to 1 (default 0). It is exact over any run of lines,
  give or take one: "0.3" makes 3 of every 10 requests fail.
* `testbed.rollbot.dev/log-rate` or `TESTBED_LOG_RATE`: request lines per
  second (default 2).
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Body = dict[str, Any]

LOG_ERRORS_ANNOTATION = "testbed.rollbot.dev/log-errors"
LOG_RATE_ANNOTATION = "testbed.rollbot.dev/log-rate"
LOG_ERRORS_ENV = "TESTBED_LOG_ERRORS"
LOG_RATE_ENV = "TESTBED_LOG_RATE"
DEFAULT_RATE = 2.0
#: The kubelet rotates container logs; a long-lived container's oldest lines are gone.
MAX_LINES = 10_000

SECOND = 1_000_000_000  # the log works in integer nanoseconds, as the kubelet's timestamps do
PREAMBLE_STEP = 10_000_000
FIRST_REQUEST_AFTER = SECOND

ROUTES = (
    ("GET", "/api/orders", 200),
    ("GET", "/api/orders/{n}", 200),
    ("POST", "/api/orders", 201),
    ("GET", "/api/items?page={page}", 200),
    ("GET", "/api/cart", 200),
    ("POST", "/api/checkout", 200),
    ("GET", "/health", 200),
    ("GET", "/metrics", 200),
)
FAILURES = (
    (500, "unhandled exception in request handler"),
    (502, "bad gateway: payments answered 502"),
    (503, "upstream timed out after 2s"),
    (504, "gateway timeout waiting for inventory"),
)
CRASHES = (
    (
        "loading settings from the environment",
        "required setting DATABASE_URL is not set",
        [
            ("/app/server.py", 97, "main", "settings = Settings.from_env()"),
            ("/app/settings.py", 41, "from_env", "raise KeyError(name)"),
        ],
        "KeyError: 'DATABASE_URL'",
    ),
    (
        "connecting to postgres at db:5432",
        "could not connect to the database",
        [
            ("/app/server.py", 101, "main", "pool = connect(settings.database_url)"),
            ("/app/db.py", 28, "connect", "return Pool(url, timeout=5)"),
        ],
        "ConnectionRefusedError: [Errno 111] Connection refused",
    ),
    (
        "running migrations",
        "migration 0042_add_memory_store failed",
        [
            ("/app/server.py", 104, "main", "migrate.run(settings)"),
            ("/app/migrate.py", 63, "run", "step = import_module(name)"),
        ],
        "ModuleNotFoundError: No module named 'memory_store'",
    ),
)


class NoLog(LookupError):
    """There is no such log (yet); the kubelet answers 400 with this message."""


@dataclass(frozen=True)
class LogLine:
    at: int  # nanoseconds since the epoch
    text: str

    def render(self, timestamps: bool) -> str:
        if not timestamps:
            return self.text
        seconds, nanos = divmod(self.at, SECOND)
        stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{stamp}.{nanos:09d}Z {self.text}"  # the kubelet's fixed-width RFC 3339


@dataclass(frozen=True)
class LogQuery:
    """The kubelet's `/containerLogs` parameters (`follow` answers what is there)."""

    tail_lines: int | None = None
    since: int | None = None  # nanoseconds since the epoch
    previous: bool = False
    timestamps: bool = False
    limit_bytes: int | None = None


def nanos(stamp: str) -> int:
    """An RFC 3339 time as nanoseconds since the epoch."""
    return int(datetime.fromisoformat(stamp).timestamp()) * SECOND


def _draw(*key: object) -> int:
    """A deterministic 64-bit number for `key`: the log's only source of variety."""
    digest = hashlib.blake2b(":".join(map(str, key)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _setting(pod: Body, container: Body, env: str, annotation: str, default: float) -> float:
    values = {e.get("name"): e.get("value") for e in container.get("env") or []}
    raw = values.get(env)
    if raw is None:
        raw = (pod["metadata"].get("annotations") or {}).get(annotation)
    try:
        value = float(raw) if raw is not None else default
    except ValueError:
        return default
    return value if math.isfinite(value) else default


def error_fraction(pod: Body, container: Body) -> float:
    fraction = _setting(pod, container, LOG_ERRORS_ENV, LOG_ERRORS_ANNOTATION, 0.0)
    return min(max(fraction, 0.0), 1.0)


def request_rate(pod: Body, container: Body) -> float:
    rate = _setting(pod, container, LOG_RATE_ENV, LOG_RATE_ANNOTATION, DEFAULT_RATE)
    return min(max(rate, 0.01), 1000.0) if rate > 0 else DEFAULT_RATE


@dataclass(frozen=True)
class Timeline:
    """A log as `count` lines in time order, each made on demand: a day-old
    container's log is never built whole just to return its last 200 lines."""

    count: int
    line: Callable[[int], LogLine]

    @classmethod
    def of(cls, lines: list[LogLine]) -> Timeline:
        return cls(len(lines), lambda i: lines[i])

    def select(self, query: LogQuery) -> list[LogLine]:
        # As the kubelet does: the tail first, then the lines since a time.
        start = max(0, self.count - MAX_LINES)
        if query.tail_lines is not None and query.tail_lines >= 0:
            start = max(start, self.count - query.tail_lines)
        if query.since is not None:
            indexes = range(start, self.count)
            start += bisect.bisect_left(indexes, query.since, key=lambda i: self.line(i).at)
        return [self.line(i) for i in range(start, self.count)]


class RequestLog:
    """A serving container: the preamble, then `rate` request lines a second."""

    def __init__(self, pod: Body, container: Body, started: int, now: int) -> None:
        self.seed = f"{pod['metadata'].get('uid', '')}/{container['name']}"
        self.fraction = error_fraction(pod, container)
        self.period = max(1, round(SECOND / request_rate(pod, container)))
        self.jitter = min(self.period // 2, SECOND // 4) + 1  # under a period: lines stay in order
        self.phase = _draw(self.seed, "phase") % 1_000_000 / 1_000_000
        ports = container.get("ports") or [{}]
        image = container.get("image", "")
        self.preamble = [
            f"INFO  starting {container['name']} {image} (pid 1)",
            f"INFO  loaded {len(container.get('env') or [])} settings from the environment",
            f"INFO  listening on 0.0.0.0:{ports[0].get('containerPort', 8080)}",
            "INFO  ready to serve requests",
        ]
        self.started = started
        self.first_request = started + FIRST_REQUEST_AFTER
        preamble = sum(1 for i in range(len(self.preamble)) if self._preamble_at(i) <= now)
        served = (now - self.first_request) // self.period + 1 if now >= self.first_request else 0
        if served and self._line(preamble + served - 1).at > now:
            served -= 1  # its jitter puts the newest request a moment in the future
        self.timeline = Timeline(preamble + served, self._line)

    def _preamble_at(self, index: int) -> int:
        return self.started + index * PREAMBLE_STEP

    def is_error(self, request: int) -> bool:
        # Evenly spread: exactly `fraction` of any run of requests, give or take one.
        before = math.floor(request * self.fraction + self.phase)
        return math.floor((request + 1) * self.fraction + self.phase) > before

    def _line(self, index: int) -> LogLine:
        if index < len(self.preamble):
            return LogLine(self._preamble_at(index), self.preamble[index])
        request = index - len(self.preamble)
        draw = _draw(self.seed, request)
        at = self.first_request + request * self.period + draw % self.jitter
        method, path, status = ROUTES[draw % len(ROUTES)]
        path = path.format(n=1000 + draw // 7 % 9000, page=1 + draw // 11 % 20)
        client = f"10.244.{draw // 13 % 250 + 1}.{draw // 17 % 250 + 1}"
        head = f'{client} "{method} {path} HTTP/1.1"'
        if self.is_error(request):
            code, reason = FAILURES[draw // 19 % len(FAILURES)]
            took = 200 + draw // 23 % 2800
            return LogLine(at, f"ERROR {head} {code} {took}ms: {reason}")
        if method == "GET" and path.startswith("/api/orders/") and draw // 29 % 25 == 0:
            return LogLine(at, f"WARN  {head} 404 {2 + draw // 31 % 10}ms: no such order")
        return LogLine(at, f"INFO  {head} {status} {2 + draw // 31 % 80}ms")


def _failure_texts(pod: Body, container: Body, what: str) -> list[str]:
    """What a failing start-up or job prints: the step, the error, a Python traceback."""
    seed = f"{pod['metadata'].get('uid', '')}/{container['name']}"
    step, failure, frames, last = CRASHES[_draw(seed, "crash") % len(CRASHES)]
    texts = [
        f"INFO  {step}",
        f"ERROR {what} failed: {failure}",
        "Traceback (most recent call last):",
        '  File "/app/server.py", line 112, in <module>',
        "    main()",
    ]
    for path, line, function, code in frames:
        texts += [f'  File "{path}", line {line}, in {function}', f"    {code}"]
    texts.append(last)
    return texts


def crash_attempt(pod: Body, container: Body, ended: int) -> list[LogLine]:
    """One crash-looping attempt: it starts, fails its start-up, prints a traceback."""
    texts = [f"INFO  starting {container['name']} {container.get('image', '')} (pid 1)"]
    texts += _failure_texts(pod, container, "startup")
    first = ended - len(texts) * PREAMBLE_STEP
    return [LogLine(first + i * PREAMBLE_STEP, text) for i, text in enumerate(texts)]


def runs_to_completion(pod: Body) -> bool:
    """Pods whose containers exit for good: restartPolicy Never or OnFailure (a Job's)."""
    return pod.get("spec", {}).get("restartPolicy") in ("Never", "OnFailure")


def job_attempt(
    pod: Body, container: Body, started: int, ended: int | None, exit_code: int = 0
) -> list[LogLine]:
    """One run of a container that runs to completion: it starts, and (once `ended`)
    says it is done, or fails with a traceback."""
    argv = [*(container.get("command") or []), *(container.get("args") or [])]
    texts = [
        f"INFO  starting {container['name']} {container.get('image', '')} (pid 1)",
        f"INFO  running {' '.join(argv) or 'the image entrypoint'}",
    ]
    lines = [LogLine(started + i * PREAMBLE_STEP, text) for i, text in enumerate(texts)]
    if ended is None:
        return lines
    ending = ["INFO  done"] if exit_code == 0 else _failure_texts(pod, container, "job")
    ending.append(f"{'INFO ' if exit_code == 0 else 'ERROR'} exiting with code {exit_code}")
    first = max(ended - len(ending) * PREAMBLE_STEP, lines[-1].at + PREAMBLE_STEP)
    return lines + [LogLine(first + i * PREAMBLE_STEP, text) for i, text in enumerate(ending)]


def _completion_timeline(
    pod: Body, container: Body, current: Body, now: int, previous: bool, where: str
) -> Timeline:
    state = current.get("state") or {}
    if previous or "waiting" in state:  # waiting: backing off after the attempt in lastState
        state = current.get("lastState") or {}
        if previous and "terminated" not in state:
            raise NoLog(f"previous terminated {where} not found")
    if "running" in state:
        started = nanos(state["running"].get("startedAt") or pod["status"]["startTime"])
        return Timeline.of(job_attempt(pod, container, started, None))
    ended = state.get("terminated") or {}
    started = nanos(ended.get("startedAt") or pod["status"]["startTime"])
    finished = nanos(ended["finishedAt"]) if ended.get("finishedAt") else now
    return Timeline.of(
        job_attempt(pod, container, started, finished, int(ended.get("exitCode") or 0))
    )


def container_timeline(
    pod: Body, name: str, now: int, previous: bool = False, restart_every: float = 5.0
) -> Timeline:
    """The log of container `name` as the pod's reported status has it run so far."""
    meta, spec, status = pod["metadata"], pod.get("spec", {}), pod.get("status", {})
    where = f'container "{name}" in pod "{meta["name"]}"'
    init = {c["name"]: c for c in spec.get("initContainers") or []}
    containers = {c["name"]: c for c in spec.get("containers") or []}
    container = containers.get(name) or init.get(name)
    if container is None:
        raise NoLog(f"{where} is not valid")
    statuses = (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or [])
    current = next((s for s in statuses if s.get("name") == name), None)
    state = (current or {}).get("state") or {}
    if current is None or ("waiting" in state and not current.get("lastState")):
        reason = (state.get("waiting") or {}).get("reason", "ContainerCreating")
        raise NoLog(f"{where} is waiting to start: {reason}")
    if name not in init and runs_to_completion(pod):
        return _completion_timeline(pod, container, current, now, previous, where)
    restarts = int(current.get("restartCount") or 0)
    if previous and restarts < 2:
        raise NoLog(f"previous terminated {where} not found")
    if name in init:
        finished = nanos(state.get("terminated", {}).get("finishedAt") or status["startTime"])
        return Timeline.of(
            [
                LogLine(finished - PREAMBLE_STEP, f"INFO  {name}: {container.get('image', '')}"),
                LogLine(finished, f"INFO  {name}: done"),
            ]
        )
    if "running" in state:
        started = nanos(state["running"].get("startedAt") or status["startTime"])
        return RequestLog(pod, container, started, now).timeline
    # Crash-looping: the last attempt is the one that left the log kubectl shows.
    terminated = (current.get("lastState") or state).get("terminated") or {}
    ended = nanos(terminated["finishedAt"]) if terminated.get("finishedAt") else now
    if previous:
        ended -= round(restart_every * SECOND)
    return Timeline.of(crash_attempt(pod, container, ended))


def read_log(pod: Body, name: str, query: LogQuery, now: int, restart_every: float = 5.0) -> bytes:
    """The body the kubelet answers `GET /containerLogs/{ns}/{pod}/{name}` with."""
    return render_log(container_timeline(pod, name, now, query.previous, restart_every), query)


def render_log(timeline: Timeline, query: LogQuery) -> bytes:
    """A log's lines as the kubelet sends them: selected, maybe stamped, maybe cut."""
    lines = timeline.select(query)
    text = "".join(line.render(query.timestamps) + "\n" for line in lines).encode()
    if query.limit_bytes is not None and query.limit_bytes >= 0:
        text = text[: query.limit_bytes]
    return text
