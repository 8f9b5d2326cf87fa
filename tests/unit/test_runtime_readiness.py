"""Readiness says which dependency is down: Redis, or the Kubernetes API (a raw
one-item list, answered within its time-out, with no generated API class)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from kubernetes.client import ApiClient, Configuration

from bot.config import RollbotConfig
from bot.kube import Kube
from bot.runtime import not_ready
from bot.store import RollbackStore, connect


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RollbackStore]:
    client: redis.Redis = connect(data_dir=tmp_path)
    yield RollbackStore(client)


def kube_at(url: str) -> Kube:
    configuration = Configuration()
    configuration.host = url
    return Kube(ApiClient(configuration))


def test_an_unreachable_kubernetes_api_is_not_ready_and_says_so(store: RollbackStore) -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    reason = not_ready(store, kube_at(f"http://127.0.0.1:{port}"), RollbotConfig())
    assert reason is not None and reason.startswith("kubernetes: ")


def test_a_kubernetes_api_that_does_not_answer_is_not_ready_within_its_time_out(
    store: RollbackStore,
) -> None:
    with socket.socket() as silent:  # accepts, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        started = time.monotonic()
        reason = not_ready(
            store, kube_at(f"http://127.0.0.1:{silent.getsockname()[1]}"), RollbotConfig()
        )
        assert reason is not None and reason.startswith("kubernetes: ")
        assert time.monotonic() - started < 5
