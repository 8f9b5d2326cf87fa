"""`rollbot serve` and `rollbot worker` as an operator starts them: real processes,
settings from the environment, a real redis-server, and HTTP clients that behave
well or badly. Kubernetes is a kubeconfig that points nowhere: nothing here needs
the cluster (readiness says so).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import redis

from bot.store import Job, JobQueue
from testbed.controlplane import free_port
from testbed.redis_server import RedisServer
from testbed.slack_api import FakeSlackApi
from testbed.socket_mode_server import FakeSocketModeServer
from tests.integration.faults.harness import NOWHERE_KUBECONFIG
from tests.integration.slack_helpers import ALICE, SECRET, SlackUser, wait_for
from tests.integration.test_socket_mode import APP_TOKEN, slash_command

ROLLBOT = [sys.executable, "-c", "from handlers.main import main; main()"]


@pytest.fixture
def environment(tmp_path: Path, redis_server: RedisServer, slack: FakeSlackApi) -> dict[str, str]:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(NOWHERE_KUBECONFIG)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLACK_", "ROLLBOT_", "KUBERNETES_"))
    }
    return {
        **env,
        "HOME": str(tmp_path),
        "KUBECONFIG": str(kubeconfig),
        "REDIS_URL": redis_server.url,
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack.base_url,
        "ROLLBOT_BIND": "127.0.0.1",
    }


def descendants(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [p for child in map(int, children) for p in (child, *descendants(child))]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@dataclass
class Running:
    process: subprocess.Popen[str]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def http_workers(self) -> list[int]:
        """gunicorn's workers: the grandchildren of `rollbot serve`."""
        return [p for master in descendants(self.process.pid)[:1] for p in descendants(master)]

    def stop(self) -> int:
        every = [self.process.pid, *descendants(self.process.pid)]
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(30)
        for pid in every:
            wait_for(
                f"process {pid} to stop", lambda pid=pid: not Path(f"/proc/{pid}").exists(), 10
            )
        return code


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    running: list[Running] = []

    def launch(env: dict[str, str], *args: str, ready: str = "/healthz") -> Running:
        port = free_port()
        log = tmp_path / f"rollbot-{len(running)}.log"
        process = subprocess.Popen(
            [*ROLLBOT, *args, f"--port={port}"],
            env=env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            text=True,
        )
        server = Running(process, port, log)
        running.append(server)

        def answers() -> bool:
            assert process.poll() is None, f"rollbot exited:\n{log.read_text()}"
            try:
                return httpx.get(server.base + ready, timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(f"rollbot {args[0]} to answer {ready}", answers, timeout=60)
        return server

    yield launch
    for server in running:
        if server.process.poll() is None:
            server.stop()


def test_serve_answers_slack_over_http_with_a_signing_secret(environment, start):
    server = start(environment, "serve", "--no-worker")
    user = SlackUser(f"{server.base}/slack/events", ALICE)
    answer = user.command("help")
    assert answer.status_code == 200 and "/rollback" in answer.text
    assert httpx.post(f"{server.base}/slack/events", content=b"command=x").status_code == 401
    # Kubernetes is out of reach: the process is alive, but not ready, and says why.
    ready = httpx.get(f"{server.base}/readyz")
    assert ready.status_code == 503 and ready.text.startswith("kubernetes:")
    assert "rollbot_store_up 1" in httpx.get(f"{server.base}/metrics").text
    assert server.stop() == 0
    assert "Traceback" not in server.log.read_text()


def history_job(redis_client: redis.Redis) -> None:
    JobQueue(redis_client).enqueue(
        Job(
            kind="history",
            args={"namespace": "default", "workload": "web", "user": ALICE, "channel": "C0X"},
        )
    )


def test_serve_runs_a_worker_unless_told_not_to(environment, start, redis_client):
    queue = JobQueue.QUEUE
    without = start(environment, "serve", "--no-worker")
    history_job(redis_client)
    time.sleep(3)
    assert redis_client.llen(queue) == 1, "--no-worker: the job waits for a worker"
    without.stop()

    start(environment, "serve")
    wait_for("the in-process worker to take the job", lambda: redis_client.llen(queue) == 0, 20)


class _OneSlack(ThreadingHTTPServer):
    """Slack's one Web API for the process: apps.connections.open answered by the
    Socket Mode server, every other method by the local Slack Web API."""

    def __init__(self, web_api: str, socket_mode: str) -> None:
        class Relay(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                method = self.path.removeprefix("/api/")
                base = socket_mode if method == "apps.connections.open" else web_api
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                reply = httpx.post(base + method, content=body, headers=headers)
                self.send_response(reply.status_code)
                self.send_header("Content-Type", reply.headers.get("content-type", ""))
                self.send_header("Content-Length", str(len(reply.content)))
                self.end_headers()
                self.wfile.write(reply.content)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Relay)
        self.base_url = f"http://127.0.0.1:{self.server_port}/api/"


def test_serve_uses_socket_mode_with_an_app_token(environment, start, slack, monkeypatch):
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    with FakeSocketModeServer() as socket_mode:
        relay = _OneSlack(slack.base_url, socket_mode.base_url)
        threading.Thread(target=relay.serve_forever, daemon=True).start()
        env = {key: value for key, value in environment.items() if "proxy" not in key.lower()}
        env |= {"SLACK_APP_TOKEN": APP_TOKEN, "SLACK_API_URL": relay.base_url}
        del env["SLACK_SIGNING_SECRET"]  # Socket Mode needs none
        server = start(env, "serve", "--no-worker")
        socket_mode.wait_connected()
        assert socket_mode.app_tokens() == [APP_TOKEN]
        envelope = socket_mode.slash_command(slash_command(ALICE, "help"))
        assert "/rollback" in str(socket_mode.wait_for_ack(envelope)["payload"])
        # The HTTP port answers the probes and takes no Slack events.
        assert httpx.get(f"{server.base}/healthz").status_code == 200
        assert httpx.post(f"{server.base}/slack/events", content=b"x").status_code == 404
        assert server.stop() == 0
        socket_mode.wait_disconnected()
        relay.shutdown()


def test_several_http_processes_share_the_port_and_stop_with_serve(environment, start):
    server = start(environment, "serve", "--no-worker", "--http-processes=3")
    workers = wait_for(
        "three HTTP processes", lambda: len(server.http_workers()) == 3 and server.http_workers()
    )

    def cpu_ticks(pid: int) -> int:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    before = [cpu_ticks(pid) for pid in workers]
    user = SlackUser(f"{server.base}/slack/events", ALICE)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: user.command("help").status_code, range(200)))
    assert answers == [200] * 200
    busy = [after > b for after, b in zip(map(cpu_ticks, workers), before, strict=True)]
    assert busy.count(True) >= 2, "more than one process answered"
    assert server.stop() == 0  # and every process is gone (Running.stop checks)


def raw_request(port: int, head: bytes, body_chunks: Iterator[bytes]) -> bytes:
    """Send a request as a client that means it, and read whatever answer comes."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head)
        try:
            for chunk in body_chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: what did it say?
        try:
            return sock.recv(65536)
        except ConnectionResetError:
            return b""


def test_a_96_mb_unsigned_post_is_refused_before_it_is_read(environment, start):
    server = start(environment, "serve", "--no-worker")
    workers = wait_for("an HTTP process", server.http_workers)
    # Warm every process up, then measure what the attack adds.
    for _ in range(20):
        httpx.get(f"{server.base}/healthz")
    before = sum(map(rss_kib, workers))
    size = 96 * 1024 * 1024
    chunk = b"x" * (1024 * 1024)
    started = time.monotonic()
    answer = raw_request(
        server.port,
        b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-"
        b"urlencoded\r\nContent-Length: %d\r\n\r\n" % size,
        (chunk for _ in range(96)),
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - started < 10

    chunked = raw_request(
        server.port,
        b"POST /slack/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        (b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(96)),
    )
    assert chunked.startswith(b"HTTP/1.1 413"), chunked[:200]
    grown = sum(map(rss_kib, workers)) - before
    assert grown < 8 * 1024, f"the HTTP processes grew by {grown} KiB"
    # A real request is still answered.
    assert SlackUser(f"{server.base}/slack/events", ALICE).command("help").status_code == 200


#: Malformed and unusual requests, each sent whole on its own connection: the HTTP
#: process answers a request that has arrived whole on its loop, so none of these
#: may stop the loop, crash the process or hold it past its time-outs.
ODD_REQUESTS = [
    b"\x00\xff\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" * 40,  # a TLS hello
    b"GET /healthz\r\n\r\n",  # HTTP/0.9
    b"BREW /slack/events HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Broken\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Nul: a\x00b\r\n\r\n",
    b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
    b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n",
    b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\nextra bytes",
    b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST /slack/events HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
    b"Content-Length: 9\r\n\r\ntext=help",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
    b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\n" + b"X-Many: y\r\n" * 200 + b"\r\n",
    b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n\xff\xfe\x00\x01",
    b"HEAD /slack/events HTTP/1.1\r\nHost: x\r\n\r\n",
]


def test_odd_requests_are_answered_or_closed_and_the_processes_stay_up(environment, start):
    server = start(environment, "serve", "--no-worker", "--http-processes=2")
    workers = wait_for("both HTTP processes", lambda: len(server.http_workers()) == 2)
    workers = sorted(server.http_workers())
    for raw in ODD_REQUESTS:
        with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
            started = time.monotonic()
            try:
                sock.sendall(raw)
                sock.shutdown(socket.SHUT_WR)  # all of it sent: nothing more will come
                while sock.recv(65536):
                    pass  # the answer, if any, then the server's close
            except (ConnectionResetError, BrokenPipeError):
                pass  # refused without an answer: closed too
            assert time.monotonic() - started < 12, f"held past its time-outs: {raw[:80]!r}"
    assert sorted(server.http_workers()) == workers, "an HTTP process died and was replaced"
    assert httpx.get(f"{server.base}/healthz").status_code == 200
    assert SlackUser(f"{server.base}/slack/events", ALICE).command("help").status_code == 200
    assert "Traceback" not in server.log.read_text()


def test_clients_that_send_more_and_never_close_do_not_hold_up_other_answers(environment, start):
    """An answered request's connection lingers for the client's FIN (so unread bytes
    do not reset the answer): in the poller, never on the loop that acks Slack."""
    server = start(environment, "serve", "--no-worker")
    pushy = []
    try:
        for _ in range(6):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            sock.sendall(  # refused unread (413); what it sent stays unread, no FIN
                b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n"
                + b"x" * 100_000  # more than the poller reads at once (64 KB)
            )
            pushy.append(sock)
        time.sleep(0.3)  # each answered 413 by now, its connection lingering
        started = time.monotonic()
        answer = SlackUser(f"{server.base}/slack/events", ALICE).command("help")
        assert answer.status_code == 200
        assert time.monotonic() - started < 1, "answered at once, not after the lingering"
        for sock in pushy:  # each got its answer, then is closed within the idle time-out
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
            assert received.startswith(b"HTTP/1.1 413"), received[:100]
    finally:
        for sock in pushy:
            sock.close()


def test_an_idle_connection_is_closed_after_the_timeout(environment, start):
    server = start(environment, "serve", "--no-worker")
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as idle:
        opened = time.monotonic()
        assert idle.recv(1) == b"", "the server closes it"
        waited = time.monotonic() - opened
    assert 3 <= waited <= 15, waited


def test_idle_and_trickling_sockets_do_not_keep_a_request_from_an_answer(environment, start):
    server = start(environment, "serve", "--no-worker")
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(300)]
    trickling = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(20)]
    try:
        for sock in trickling:  # a request line that never ends
            sock.sendall(b"POST /slack/events HTTP/1.1\r\nHost: ")
        time.sleep(0.5)
        started = time.monotonic()
        answer = SlackUser(f"{server.base}/slack/events", ALICE).command("help")
        assert answer.status_code == 200
        assert time.monotonic() - started < 2, "answered at once, not after the idle ones"
    finally:
        for sock in idle + trickling:
            sock.close()


def test_bodies_that_trickle_in_do_not_keep_a_request_from_an_answer(environment, start):
    server = start(environment, "serve", "--no-worker")
    head = b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
    trickling = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(40)]
    try:
        for sock in trickling:  # a head, then a tenth of the body it announced
            sock.sendall(head + b"x" * 10)
        time.sleep(0.5)
        started = time.monotonic()
        answer = SlackUser(f"{server.base}/slack/events", ALICE).command("help")
        assert answer.status_code == 200
        assert time.monotonic() - started < 2, "answered at once, not after the slow bodies"
        for sock in trickling:  # and each is closed once it has waited too long
            sock.settimeout(30)
            assert sock.recv(1) == b""
    finally:
        for sock in trickling:
            sock.close()


@pytest.mark.parametrize(
    ("command", "change", "says"),
    [
        ("serve", {"KUBECONFIG": "/nonexistent/kubeconfig"}, "no usable kubeconfig"),
        ("worker", {"KUBECONFIG": None}, "no usable kubeconfig"),
        ("serve", {"SLACK_BOT_TOKEN": None}, "needs SLACK_BOT_TOKEN"),
        ("serve", {"ROLLBOT_CONFIG": "bad.yaml"}, "is not valid YAML"),
        ("worker", {"REDIS_URL": "redis://127.0.0.1:9"}, "cannot be reached"),
        (
            "serve",
            {"ROLLBOT_CONFIG": "notify.yaml"},
            "notify: set PAGERDUTY_ROUTING_KEY (PagerDuty's routing key) in the environment",
        ),
    ],
    ids=[
        "no-kubeconfig",
        "worker-no-kubeconfig",
        "no-slack-token",
        "bad-config",
        "no-redis",
        "no-notify-secret",
    ],  # fmt: skip
)
def test_a_start_up_problem_is_one_line_and_a_non_zero_exit(
    environment, tmp_path, command, change, says
):
    (tmp_path / "bad.yaml").write_text("services: [\n")
    (tmp_path / "notify.yaml").write_text("notify: {pagerduty: {}}\n")
    env = {**environment}
    for key, value in change.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    done = subprocess.run(
        [*ROLLBOT, command, f"--port={free_port()}"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"rollbot {command}: ") and says in lines[0], lines[0]


def test_the_port_taken_is_one_line_too(environment, tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = subprocess.run(
            [*ROLLBOT, "serve", "--no-worker", f"--port={port}"],
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].startswith("rollbot serve: cannot listen on port")
    assert "Traceback" not in done.stderr


def test_rollbot_help_lists_every_command():
    done = subprocess.run([*ROLLBOT, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for command in ("history", "rollback", "status", "check-config", "serve", "worker"):
        assert command in done.stdout
    # serve's own flags are parsed by the same tree.
    done = subprocess.run(
        [*ROLLBOT, "serve", "--http-processes=0"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "--http-processes" in done.stderr
