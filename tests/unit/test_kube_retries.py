"""The Kubernetes client retries a connection found dead, at once, but never a
request that timed out: that would only multiply the wait (bot/kube.py)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.errors import RollbotError
from bot.kube import Kube

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{{name: here, cluster: {{server: "http://127.0.0.1:{port}"}}}}]
users: [{{name: rollbot, user: {{token: unused}}}}]
contexts: [{{name: here, context: {{cluster: here, user: rollbot}}}}]
current-context: here
"""


def kube_at(tmp_path: Path, port: int) -> Kube:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG.format(port=port))
    return Kube.from_kubeconfig(str(kubeconfig))


@pytest.fixture
def listening() -> Iterator[socket.socket]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server


def test_a_request_that_timed_out_is_not_sent_again(tmp_path, listening):
    kube = kube_at(tmp_path, listening.getsockname()[1])  # accepts, never answers
    started = time.monotonic()
    with pytest.raises(RollbotError):
        kube._json("GET", "/apis/apps/v1/namespaces/prod/deployments/web", timeout=(2, 0.4))
    assert time.monotonic() - started < 1.0, "urllib3's default tries four times: 1.6 s"


def test_a_connection_the_server_closed_is_retried_at_once(tmp_path, listening):
    def first_closed_then_answered() -> None:
        dropped, _ = listening.accept()
        dropped.close()  # as a pooled connection the API server has closed
        answered, _ = listening.accept()
        with answered:
            answered.recv(65536)
            body = b'{"kind": "Deployment", "metadata": {"name": "web"}}'
            head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            answered.sendall(head.encode() + body)

    server = threading.Thread(target=first_closed_then_answered, daemon=True)
    server.start()
    kube = kube_at(tmp_path, listening.getsockname()[1])
    assert kube.get_deployment("prod", "web")["metadata"]["name"] == "web"
    server.join(5)
