"""When each worker loop (and the outbox's deliverer) last came round, in memory
shared with the processes forked after it — the HTTP processes that answer
/readyz are forked before the worker threads run, and must still see them."""

from __future__ import annotations

import time
from multiprocessing.sharedctypes import RawArray


class Liveness:
    """Per slot: the last beat and the start of the job in hand (0: none), as
    `time.monotonic()` seconds, which every process on the machine shares."""

    def __init__(self, slots: int) -> None:
        self._beats = RawArray("d", slots)
        self._jobs = RawArray("d", slots)
        self.slots = slots

    def beat(self, slot: int) -> None:
        self._beats[slot] = time.monotonic()

    def job(self, slot: int, started: bool) -> None:
        self._jobs[slot] = time.monotonic() if started else 0.0

    def problem(self, names: list[str], stale: float, stuck: float) -> str | None:
        """Why a slot looks dead (no beat for `stale` s and no job in hand) or stuck
        (a job in hand for over `stuck` s); None while each one comes round."""
        now = time.monotonic()
        for slot, name in enumerate(names):
            beat, job = self._beats[slot], self._jobs[slot]
            if job and now - job > stuck:
                return f"{name}: one job has run for {now - job:.0f}s"
            if beat and not job and now - beat > stale:
                return f"{name}: stopped {now - beat:.0f}s ago"
        return None
