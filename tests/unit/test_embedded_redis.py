"""The embedded Redis stops with the process that started it, keeping its data."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bot.store import connect

ROOT = Path(__file__).resolve().parents[2]


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


def test_the_embedded_redis_stops_when_rollbot_exits_and_its_data_stays(tmp_path: Path) -> None:
    code = (
        "from bot.store import connect\n"
        f"client = connect(data_dir={str(tmp_path)!r})\n"
        "client.set('kept', 'yes')\n"
        # a second connection, as a worker's blocking take and the HTTP side hold
        "import redis; other = redis.Redis(unix_socket_path=client.socket_file); other.ping()\n"
        "print(client.pid, flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert done.returncode == 0, done.stderr
    pid = int(done.stdout.split()[-1])
    deadline = time.monotonic() + 10
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(pid), "the embedded redis-server outlived rollbot"
    again = connect(data_dir=tmp_path)
    try:
        assert again.get("kept") == "yes"
    finally:
        os.kill(again.pid, 15)  # type: ignore[attr-defined]
