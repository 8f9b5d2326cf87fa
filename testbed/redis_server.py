"""A real redis-server (Debian's) on a free loopback port, for tests.

By default it keeps nothing on disk. Given a config file (the chart's rendered
redis.conf) it runs with that file's persistence, on loopback and in its own data
folder; `directory` lets a second server start from what a killed one left.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

import redis

from testbed.controlplane import free_port
from testbed.service import LocalService


class RedisServerError(RuntimeError):
    pass


class RedisServer(LocalService):
    def __init__(
        self,
        *,
        config_file: Path | None = None,
        password: str | None = None,
        directory: Path | None = None,
    ) -> None:
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.config_file = config_file
        self.password = password
        self._owns_dir = directory is None
        self.dir = directory or Path(tempfile.mkdtemp(prefix="rollbot-redis-"))

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> Self:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisServerError("redis-server is not installed (scripts/setup.sh installs it)")
        self.port = free_port()
        args = [binary, str(self.config_file)] if self.config_file else [binary]
        args += ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
        if self.config_file is None:
            args += ["--save", "", "--appendonly", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, password=self.password)
        for _ in range(100):
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                if self.proc.poll() is not None:
                    code = self.proc.returncode
                    raise RedisServerError(f"redis-server exited with {code}") from None
                time.sleep(0.05)
        raise RedisServerError("redis-server did not answer within 5s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        if self._owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
