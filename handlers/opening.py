"""Opening a rollback someone asked for, by command or by form: the record and its
assessment job written in one round trip, and what the asker reads. Nothing slow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bot.errors import RollbotError
from bot.records import RollbackRecord, requested
from bot.requests import DEFAULT_STRATEGY, RollbackRequest
from bot.store import Job
from handlers.authorization import Caller
from handlers.mrkdwn import code, mention, untrusted
from handlers.unwelcome import ResponseUrls


@dataclass(frozen=True)
class Opened:
    """Whether a rollback was opened, and what the asker reads (mrkdwn)."""

    opened: bool
    text: str


def open_rollback(
    caller: Caller, command: RollbackRequest, trigger: str, response_url: str = ""
) -> Opened:
    """Record the rollback asked for and queue its assessment; what the asker reads.
    A command's `response_url` is kept: it reaches the asker where rollbot cannot
    post (a channel it is not in), for as long as Slack honours it."""
    services = caller.services
    config, store = services.config, services.store
    strategy, workload = command.resolved(config)
    record = requested(
        command.namespace,
        workload,
        caller.user,
        reason=command.reason,
        revision=command.to_revision,
        channel=caller.channel,
        dry_run=command.dry_run,
        emergency=command.emergency,
        to_tag=command.to_tag,
        strategy=strategy,
        options=command.options,
        ttl=timedelta(seconds=config.confirmation_ttl_seconds),
    )
    # One round trip: the lock looked at, the trigger claimed (Slack re-delivers a
    # command it thinks timed out: act on each once), the record stored with the
    # response_url beside it (before the assessment can want it), the job queued.
    outcome, holder = store.open(
        record,
        claim=f"command:{trigger}",
        job=Job(kind="assess", record_id=record.id),
        queue=services.queue.QUEUE,
        beside=ResponseUrls.beside(record.id, response_url),
    )
    if outcome == "held" and holder.startswith("cli:"):
        # `rollbot rollback` from a terminal of an older release holds it as
        # cli:ACTOR:PID (today's holds it in its record's name: the branch below).
        by = holder.split(":")[1] if holder.count(":") >= 2 else "someone"
        return Opened(
            False,
            f"{untrusted(workload)} is being rolled back from a terminal by "
            f"{untrusted(by)}: try again once that is done.",
        )
    if outcome == "held":
        try:
            running: RollbackRecord | None = store.get(holder)
        except RollbotError:  # gone since, or not one rollbot can vouch for
            running = None
        if running is not None and running.trigger == "cli":
            return Opened(
                False,
                f"{untrusted(workload)} is being rolled back from a terminal by "
                f"{mention(running.requested_by)} ({code(holder)}): try again once that "
                "is done.",
            )
        by = f", requested by {mention(running.requested_by)}" if running else ""
        return Opened(
            False,
            f"A rollback of {untrusted(workload)} is already in progress "
            f"({code(holder)}{by}): see its thread.",
        )
    if outcome == "duplicate":
        return Opened(False, "Your request was already received; its confirmation is on its way.")
    how = "" if strategy == DEFAULT_STRATEGY else f" ({untrusted(strategy)})"
    return Opened(
        True,
        f"Assessing {untrusted(command.namespace)}/{untrusted(workload)}{how} "
        f"({code(record.id)}): a confirmation will be posted here.",
    )
