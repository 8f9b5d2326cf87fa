"""`/rollback drill SERVICE`: a rollback drill now, in the service's drill
environment (see bot/drills.py), posted to the drill's channel."""

from __future__ import annotations

from bot.commands import Command
from bot.drills import drill_request, drill_target
from bot.store import Job
from handlers.authorization import Caller
from handlers.mrkdwn import code, untrusted


def drill_check(caller: Caller, command: Command) -> None:
    """Who may request a rollback where the drill runs may start one."""
    namespace, _, _ = drill_target(caller.services.config, command.service)
    caller.may_request(namespace)


def drill_answer(caller: Caller, command: Command, trigger: str) -> str:
    services = caller.services
    record = drill_request(services.config, command.service, caller.user)
    outcome, holder = services.store.open(
        record,
        claim=f"command:{trigger}",
        job=Job(kind="assess", record_id=record.id),
        queue=services.queue.QUEUE,
    )
    if outcome == "held":
        held = untrusted(record.workload_key)
        return f"A rollback of {held} ({code(holder)}) holds it: no drill now."
    if outcome == "duplicate":
        return "Your command was already received."
    return (
        f"Drill {code(record.id)} of {untrusted(record.workload_key)}: back one revision and "
        f"forward again, posted in <#{record.channel}>."
    )
