"""Redis stalled (the process stopped, a network partition: connections open, no
answer). Slack gives an app 3 s to acknowledge, so rollbot's HTTP process gives a
Redis call far less than that: the person is told the store is unavailable, in
time, and is answered as usual once Redis is back.

`rollbot serve --no-worker` runs as its own process over a real redis-server,
stopped with SIGSTOP and resumed with SIGCONT; no Kubernetes.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from testbed.redis_server import RedisServer
from testbed.slack_api import FakeSlackApi
from testbed.slack_user import SlackUser
from tests.conftest import unavailable
from tests.integration.faults.harness import NOWHERE_KUBECONFIG, SECRET, Rollbot

CHANNEL = "C0STALL"
ALICE = "U0ALICE"
#: Slack's limit for an ack.
ACK_LIMIT_S = 3.0


@pytest.fixture
def stalled(tmp_path: Path) -> Iterator[tuple[SlackUser, RedisServer]]:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(NOWHERE_KUBECONFIG)
    try:
        server = RedisServer().start()
    except (RuntimeError, OSError) as err:
        unavailable(f"redis-server could not start: {err}")
    config = {"default_namespace": "stall", "namespaces": ["stall"], "follow_up_minutes": []}
    with FakeSlackApi() as slack:
        serve = Rollbot(kubeconfig, server.url, slack.base_url, config)
        try:
            serve.start_serve()
            yield SlackUser(serve.events_url, ALICE, CHANNEL, SECRET, slack=slack), server
        finally:
            assert server.proc is not None
            os.kill(server.proc.pid, signal.SIGCONT)
            serve.stop()
            server.stop()


def test_a_command_while_redis_is_stalled_is_told_so_in_time_then_answered(
    stalled: tuple[SlackUser, RedisServer],
) -> None:
    alice, server = stalled
    assert "Assessing stall/web" in alice.command("web").text  # answered while Redis answers
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        for name in ("api", "db"):
            started = time.monotonic()
            answer = alice.command(name)
            elapsed = time.monotonic() - started
            assert answer.status_code == 200 and elapsed < ACK_LIMIT_S, (elapsed, answer.text)
            assert "store (Redis) is unavailable" in answer.json()["text"], answer.text
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    time.sleep(1)  # past the moment after the time-out (0.8 s): asked again
    answer = alice.command("shop")
    assert "Assessing stall/shop" in answer.json()["text"], answer.text


def test_commands_at_once_while_redis_is_stalled_are_each_told_in_time(
    stalled: tuple[SlackUser, RedisServer],
) -> None:
    """The HTTP process answers one request after another: after one call has waited
    out its time-out, the others are told at once instead of each waiting as long."""
    alice, server = stalled
    assert "Assessing stall/web" in alice.command("web").text
    assert server.proc is not None
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            started = time.monotonic()
            answers = list(pool.map(lambda n: alice.command(f"svc-{n}"), range(8)))
            elapsed = time.monotonic() - started
        assert elapsed < ACK_LIMIT_S, f"the last answered after {elapsed:.2f}s"
        for answer in answers:
            assert "store (Redis) is unavailable" in answer.json()["text"], answer.text
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    time.sleep(2)  # past the moment after the last time-out (0.8 s): asked again
    assert "Assessing stall/shop" in alice.command("shop").json()["text"]
