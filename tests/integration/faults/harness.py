"""rollbot as it runs in production, for the fault suite: `rollbot serve` and
`rollbot worker` as separate OS processes over a real redis-server (with the
chart's persistence, so it can be killed and restarted), the real control
plane and the local Slack Web API."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml

from testbed.controlplane import free_port

SECRET = "fault-suite-signing-secret"
#: A kubeconfig for a rollbot that is not to reach Kubernetes (what runs before an
#: ack never does): its cluster is a closed port.
NOWHERE_KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: nowhere, cluster: {server: "http://127.0.0.1:9"}}]
users: [{name: rollbot, user: {token: unused}}]
contexts: [{name: nowhere, context: {cluster: nowhere, user: rollbot}}]
current-context: nowhere
"""


def wait_until(what: str, test: Callable[[], Any], timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        try:
            value = test()
        except (redis.RedisError, httpx.TransportError):
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last seen: {value!r})")


class PersistentRedis:
    """redis-server with an append-only file fsynced every second (the chart's
    setting), on a fixed port, so that it can be killed and started again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="rollbot-faults-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PersistentRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (scripts/setup.sh installs it)")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port)
        wait_until("redis-server to answer", client.ping, timeout=10)
        return self

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


class Rollbot:
    """`rollbot serve --no-worker` and N `rollbot worker`, each its own process."""

    def __init__(self, kubeconfig: Path, redis_url: str, slack_url: str, config: dict[str, Any]):
        self.dir = Path(tempfile.mkdtemp(prefix="rollbot-faults-"))
        config_file = self.dir / "rollbot.yaml"
        config_file.write_text(yaml.safe_dump(config))
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ROLLBOT_")},
            "KUBECONFIG": str(kubeconfig),
            "REDIS_URL": redis_url,
            "SLACK_BOT_TOKEN": "xoxb-faults",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack_url,
            "ROLLBOT_CONFIG": str(config_file),
            "ROLLBOT_BIND": "127.0.0.1",
        }
        self.env.pop("SLACK_APP_TOKEN", None)
        self.serve_port = free_port()
        self.serve: subprocess.Popen[bytes] | None = None
        self.workers: list[tuple[subprocess.Popen[bytes], int]] = []

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.serve_port}/slack/events"

    def _spawn(self, args: list[str], env: dict[str, str], log: str) -> subprocess.Popen[bytes]:
        out = (self.dir / log).open("ab")
        return subprocess.Popen(
            [sys.executable, "-c", "from handlers.main import main; main()", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def start_serve(self, with_worker: bool = False) -> None:
        """`rollbot serve --no-worker`, or with its own worker (the chart's default)."""
        args = ["serve", "--port", str(self.serve_port), *([] if with_worker else ["--no-worker"])]
        self.serve = self._spawn(args, self.env, "serve.log")
        self._wait_ready(self.serve_port, self.serve)

    def start_worker(self, failpoint: str | None = None) -> int:
        """Start a worker (one that kills itself at `failpoint`); its index."""
        port = free_port()
        env = {**self.env, **({"ROLLBOT_FAILPOINT": failpoint} if failpoint else {})}
        proc = self._spawn(["worker", "--port", str(port)], env, f"worker-{len(self.workers)}.log")
        self.workers.append((proc, port))
        self._wait_ready(port, proc)
        return len(self.workers) - 1

    def _wait_ready(self, port: int, proc: subprocess.Popen[bytes]) -> None:
        def ready() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"rollbot exited with {proc.returncode}:\n{self.logs()}")
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200

        wait_until(f"rollbot on :{port}", ready, timeout=60)

    def readyz(self, index: int | None) -> httpx.Response:
        """Worker `index`'s /readyz, or `rollbot serve`'s (None)."""
        port = self.serve_port if index is None else self.workers[index][1]
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)

    def wait_exit(self, index: int, timeout: float = 120) -> int:
        return self.workers[index][0].wait(timeout)

    def kill_worker(self, index: int) -> None:
        proc = self.workers[index][0]
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.dir.glob("*.log"))
        )

    def log_lines(self, *texts: str) -> list[str]:
        """Every line of every process's log that mentions one of `texts`."""
        return [
            f"{path.stem}: {line}"
            for path in sorted(self.dir.glob("*.log"))
            for line in path.read_text(errors="replace").splitlines()
            if any(text in line for text in texts)
        ]

    def stop(self) -> None:
        procs = [p for p, _ in self.workers] + ([self.serve] if self.serve else [])
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)
