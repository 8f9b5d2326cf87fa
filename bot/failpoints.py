"""Named points in the pipeline where the fault-injection suite kills a worker.

`ROLLBOT_FAILPOINT=NAME` makes the process kill itself (SIGKILL: no clean-up,
as the OOM killer or a node loss would) when it reaches the point NAME. Unset,
as everywhere but in `tests/faults/`, `reached` does nothing. Killing at a
named point, rather than racing a kill from outside, lets the suite prove a
crash at every step of a rollback, each run the same.
"""

from __future__ import annotations

import os
import signal

#: The points, in the order a rollback reaches them.
POINTS = ("locked", "backed_up", "applied", "verifying", "reported")
#: Points of the change events' deliverer (bot/notify/delivery.py), which runs beside
#: the rollback: one destination took an event and the next has not yet.
DELIVERY_POINTS = ("told_one_destination",)
#: Points of a schema step (bot/schema_jobs.py), reached only by a rollback across a
#: migration: a Job was created and has not yet been followed to its end.
SCHEMA_POINTS = ("schema_job_created",)


def reached(point: str) -> None:
    if point not in POINTS + DELIVERY_POINTS + SCHEMA_POINTS:
        raise ValueError(f"no failpoint named {point!r}")
    if os.environ.get("ROLLBOT_FAILPOINT") == point:
        os.kill(os.getpid(), signal.SIGKILL)
