"""A rollback from the terminal, on the record.

With REDIS_URL (the store rollbot's Slack side uses), `rollbot rollback` keeps a
record as a Slack rollback does: trigger "cli", its plan, who confirmed it and
how, each step and its outcome. It holds the workloads in that record's name. So
`/rollback status` and App Home show it while it runs, a Slack rollback of the
same workload is told which one is in progress, `/rollback stats` counts it, and
the incident tools hear of it (`bot/change_events.py`: the store makes the events
as the record moves into rolling back and out to its end).

The record is written before the cluster is touched, and its end after. A
rollback that fails, or is interrupted (Ctrl-C), ends failed with the reason,
redacted. A terminal killed outright leaves its record rolling back: the locks
expire after the rollout's time-out, and the record says where it stopped.

Without REDIS_URL the embedded store is this machine's alone: there is no one to
tell, and nothing is recorded. Without ROLLBOT_STORE_KEY (the key the bot seals
its records with, `bot/integrity.py`) nothing is recorded either, as a record
the bot could not check would be left out of its lists: the workloads are held
in the terminal's name (`cli:ACTOR:PID`), as before records were kept.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis

from bot.errors import PermanentError, RollbotError
from bot.records import RollbackRecord, RollbackState, new_id, requested
from bot.redaction import redact
from bot.strategies.base import Plan, Request, record_fields

S = RollbackState
#: The locks outlive the rollout's time-out by this much: a terminal killed outright
#: frees its workloads once that has passed.
LOCK_MARGIN_SECONDS = 120


def planned(
    request: Request, plan: Plan, actor: str, reason: str, confirmed: str
) -> RollbackRecord:
    """The record of a rollback planned and confirmed in the terminal, approved by
    `actor`; `confirmed`: how ("confirmed at the prompt", "--yes")."""
    # The record's name for what is rolled back, as a Slack rollback's: the Deployment
    # of a plain undo, the service otherwise.
    workload = plan.workloads[0] if plan.strategy == "undo" and plan.workloads else request.service
    record = requested(
        request.namespace,
        workload,
        actor,
        reason=reason,
        revision=request.revision,
        trigger="cli",
        to_tag=request.to_tag,
        strategy=plan.strategy,
        options=dict(request.options),
    ).model_copy(update={"id": new_id()})
    return (
        record.transition(S.ASSESSED, f"{plan.current} → {plan.target}", **record_fields(plan))
        .transition(S.AWAITING_APPROVAL, "shown in the terminal", actor=actor)
        .transition(S.APPROVED, f"{confirmed} by {actor}", actor=actor, approved_by=actor)
    )


@contextmanager
def on_the_record(
    request: Request,
    plan: Plan,
    actor: str,
    reason: str,
    confirmed: str,
    timeout: float,
    complain: Callable[[str], None],
) -> Iterator[RollbackRecord | None]:
    """Around applying `plan`: with REDIS_URL, its workloads held and its record kept
    (module docstring); the record, or None without REDIS_URL. Raises PermanentError,
    before anything is written, when another rollback holds one of the workloads.
    Once the cluster has been changed, Redis failing is `complain`ed of, and the
    rollback's own outcome stands: its locks expire, its record says where it was."""
    if not os.environ.get("REDIS_URL"):
        yield None
        return
    from bot.store import RollbackStore, connect  # only then: the CLI starts fast

    store = RollbackStore(connect())
    record = planned(request, plan, actor, reason, confirmed)
    kept = store.key is not None
    if not kept:
        complain(
            "not recorded in rollbot's store: ROLLBOT_STORE_KEY is not set here (its "
            "records are sealed with it); the workloads are held all the same"
        )
    holder = record.id if kept else f"cli:{actor}:{os.getpid()}"
    taken: list[str] = []
    try:
        for key in dict.fromkeys((f"{request.namespace}/{request.service}", *record.lock_keys)):
            held = store.lock_workload(key, holder, ttl=timeout + LOCK_MARGIN_SECONDS)
            if held is not None:
                raise PermanentError(
                    f"rollback {held} of {key} is in progress: wait for it to finish "
                    "(or cancel it in Slack), then run this again"
                )
            taken.append(key)
        if not kept:
            yield None
            return
        store.create(record)
        store.update(
            record.id,
            lambda r: r.transition(S.BACKING_UP, "no backup taken: a terminal rollback keeps none"),
        )
        running = store.update(
            record.id, lambda r: r.transition(S.ROLLING_BACK, "rolling back from the terminal")
        )
        try:
            yield running
        except BaseException as err:
            why = redact(str(err).splitlines()[0] if str(err) else type(err).__name__)
            if isinstance(err, KeyboardInterrupt):
                why = "interrupted in the terminal"
            with _told_if_lost(record, complain):
                store.update(record.id, lambda r: r.transition(S.FAILED, why, error=why))
            raise
        with _told_if_lost(record, complain):
            store.update(record.id, lambda r: r.transition(S.VERIFYING, "rolled out"))
            store.update(record.id, lambda r: r.transition(S.SUCCEEDED, "done from the terminal"))
    finally:
        with _told_if_lost(record, complain, "its locks expire on their own"):
            for key in taken:
                store.unlock_workload(key, holder)


@contextmanager
def _told_if_lost(
    record: RollbackRecord, complain: Callable[[str], None], then: str = ""
) -> Iterator[None]:
    """A write after the cluster was changed: if Redis fails it, say so and go on."""
    try:
        yield
    except (RollbotError, redis.RedisError) as err:  # StoreUnavailable, OOM, READONLY…
        complain(
            f"the record {record.id} could not be updated: {redact(str(err))}"
            + (f"; {then}" if then else "")
        )
