"""A Redis client that must answer people in time (`answer_within`): a call gives up
after its time-out, and for a moment after one did, the next calls fail at once,
whatever kind of silence it is: a Redis that accepts connections but never answers,
one whose connections are never accepted (a partition), or the embedded Redis."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bot.redis_connection import answer_within
from bot.store import connect

WITHIN = 0.3


@pytest.fixture
def unanswered() -> Iterator[int]:
    """A port whose connections are never accepted once its backlog is full: every
    new connection waits for an answer to its SYN, as across a partition."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = listener.getsockname()[1]
    filling = []
    for _ in range(4):  # past the backlog, connecting hangs
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        filling.append(sock)
    try:
        yield port
    finally:
        for sock in filling:
            sock.close()
        listener.close()


def timed_call(client: redis.Redis) -> tuple[type[Exception], float]:
    started = time.monotonic()
    with pytest.raises(redis.TimeoutError) as failed:
        client.get("x")
    return failed.type, time.monotonic() - started


def test_a_partition_fails_one_call_in_its_time_out_and_the_next_at_once(unanswered):
    client = redis.Redis(host="127.0.0.1", port=unanswered, socket_timeout=10)
    answer_within(client, WITHIN)
    _, first = timed_call(client)
    assert first < WITHIN + 0.5
    _, second = timed_call(client)
    assert second < 0.05, "not asked again: connecting would wait as long"
    time.sleep(WITHIN + 0.05)
    _, third = timed_call(client)
    assert third >= WITHIN * 0.8, "the moment passed: Redis is asked again"


def test_the_embedded_redis_stalled_fails_in_its_time_out_without_retries(tmp_path: Path):
    client = connect(data_dir=tmp_path)
    answer_within(client, WITHIN)
    client.set("kept", "yes")
    pid = int(client.pid)
    os.kill(pid, signal.SIGSTOP)
    try:
        _, first = timed_call(client)
        assert first < WITHIN + 0.5, "redis-py retries a Unix socket's calls by default"
        _, second = timed_call(client)
        assert second < 0.05
    finally:
        os.kill(pid, signal.SIGCONT)
    time.sleep(WITHIN + 0.05)
    assert client.get("kept") == "yes"
