"""One owner per record at a time, for as long as it works on it.

A worker that takes a record's job first takes the record's lease (a Redis
key holding a random token, with a TTL). A keeper thread renews it, the
worker's heartbeat and the workload locks the record holds, every third of
the TTL, for as long as the job runs. Every write the job makes to the record
is fenced: the store's transaction checks the lease still holds the job's
token, so a worker that stalled past its TTL (a long pause, a network cut)
and lost the lease to another writes nothing more — its next write raises
`LeaseLost` and it stops.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

log = logging.getLogger("rollbot.leases")
PREFIX = "rollbot:"

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class LeaseLost(Exception):
    """This worker no longer owns the record: whatever it was doing, it stops
    and writes nothing (the new owner carries on from the record)."""

    def __init__(self, record_id: str) -> None:
        super().__init__(f"lost the lease on {record_id}: another worker owns it now")
        self.record_id = record_id


@dataclass(frozen=True)
class Fence:
    """What a fenced write checks: `key` still holds `token`."""

    key: str
    token: str


def lease_key(record_id: str) -> str:
    return f"{PREFIX}lease:{record_id}"


def lead(client: redis.Redis, key: str, holder: str, ttl: float) -> bool:
    """Take or keep the lease at `key` for `holder`: one process at a time does a
    thing (deliver the outbox, deliver change events), the others stand by and take
    over within `ttl` seconds of its death."""
    if client.set(key, holder, nx=True, px=int(ttl * 1000)):
        return True
    if client.get(key) == holder:
        client.pexpire(key, int(ttl * 1000))
        return True
    return False


class RecordLeases:
    def __init__(self, client: redis.Redis, ttl: float = 15.0) -> None:
        self.redis, self.ttl = client, ttl
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def acquire(self, record_id: str) -> Fence | None:
        """The record's lease for this job, or None while another job holds it."""
        fence = Fence(lease_key(record_id), secrets.token_hex(8))
        if self.redis.set(fence.key, fence.token, nx=True, px=int(self.ttl * 1000)):
            return fence
        return None

    def renew(self, fence: Fence, ttl: float | None = None) -> bool:
        return bool(
            self._renew(keys=[fence.key], args=[fence.token, int((ttl or self.ttl) * 1000)])
        )

    def release(self, fence: Fence) -> None:
        self._release(keys=[fence.key], args=[fence.token])

    def renew_key(self, key: str, value: str, ttl: float) -> bool:
        """Extend any key this owner holds (a workload lock) if it still holds it."""
        return bool(self._renew(keys=[key], args=[value, int(ttl * 1000)]))

    @contextmanager
    def kept(
        self, fence: Fence, also: Callable[[], None] = lambda: None
    ) -> Iterator[threading.Event]:
        """Renew `fence` (and run `also`: the heartbeat, the workload locks) every third
        of the TTL until the block ends; the event is set once the lease is lost."""
        lost, done = threading.Event(), threading.Event()

        def keep() -> None:
            while not done.wait(self.ttl / 3):
                try:
                    if not self.renew(fence):
                        lost.set()
                        log.warning("%s", LeaseLost(fence.key.removeprefix(PREFIX + "lease:")))
                        return
                    also()
                except redis.RedisError as err:
                    # Redis unreachable: keep trying; past the TTL the lease may be gone,
                    # and the fenced writes will say so.
                    log.warning("could not renew %s: %s", fence.key, err)

        keeper = threading.Thread(target=keep, name=f"lease-{fence.key}", daemon=True)
        keeper.start()
        try:
            yield lost
        finally:
            done.set()
            keeper.join()
