"""`/rollback …`: parse, authorize, record, enqueue, ack. Nothing slow here.

Who may use each subcommand is declared in `register`, where the listener is;
by the time an answer below runs, the caller has been checked for it.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.commands import USAGE, Command
from bot.errors import RollbotError
from bot.records import RollbackRecord, RollbackState
from bot.store import Job
from handlers.actions.resume import ask_to_resume
from handlers.after_ack import update
from handlers.authorization import (
    Caller,
    anyone,
    cancel_check,
    counts_what_it_may,
    history_check,
    on_command,
    request_check,
    resume_check,
    status_check,
)
from handlers.blocks import as_dicts, entry_text, outcome_blocks, state_label, title
from handlers.commands import drill, stats
from handlers.mrkdwn import clip, code, untrusted
from handlers.opening import open_rollback
from handlers.services import Services
from handlers.views.rollback_form import open_form

MAX_ANSWER = 3900
#: How many records `/rollback status` lists.
STATUS_LINES = 5
#: How far back it looks for records the caller may see.
STATUS_SCAN = 50


def status_answer(caller: Caller, record: RollbackRecord | None) -> str:
    """One record (already checked), or the latest ones the caller may see."""
    if record is not None:
        records = [record]
    else:
        records = [r for r in caller.services.store.recent(STATUS_SCAN) if caller.sees(r)]
        records = records[:STATUS_LINES]
    if not records:
        return (
            "No rollbacks you may see: status lists those in namespaces where you may "
            "request a rollback."
        )
    return clip("\n".join(status_line(r) for r in records), MAX_ANSWER)


def status_line(record: RollbackRecord) -> str:
    last = entry_text(record.timeline[-1]) if record.timeline else ""
    return (
        f"{code(record.id)} {untrusted(record.workload_key)}: "
        f"*{state_label(record.state)}* — {last}"
    )


def history_answer(caller: Caller, command: Command) -> str:
    caller.services.queue.enqueue(
        Job(
            kind="history",
            args={
                "namespace": command.namespace,
                "workload": command.service or command.workload,
                "user": caller.user,
                "channel": caller.channel,
            },
        )
    )
    return f"Reading the history of {untrusted(command.namespace)}/{untrusted(command.service)}…"


def cancel(caller: Caller, record: RollbackRecord) -> RollbackRecord:
    """Cancel a rollback that is still waiting (the caller was checked for it)."""
    return caller.services.store.update(
        record.id,
        lambda r: r.transition(
            RollbackState.CANCELLED, f"cancelled by {caller.user}", actor=caller.user
        ),
    )


def show_cancelled(client: WebClient, record: RollbackRecord) -> None:
    """The confirmation loses its buttons and says how it ended."""
    if record.thread_ts:
        text = f"{untrusted(title(record))}: cancelled"
        update(client, record.channel, record.thread_ts, text, as_dicts(outcome_blocks(record)))


#: The same for everyone: escaped (and redacted) once, not at every `/rollback help`.
HELP = f"```{untrusted(USAGE)}```"


def register(app: App, services: Services) -> None:
    later = app.listener_runner.listener_executor  # Slack is answered when we return

    @on_command(
        app,
        services,
        "/rollback",
        {
            "help": anyone,
            "rollback": request_check,
            "history": history_check,
            "status": status_check,
            "cancel": cancel_check,
            "resume": resume_check,
            "stats": counts_what_it_may,
            "drill": drill.drill_check,
        },
    )
    def rollback_command(
        ack: Ack, body: dict[str, Any], context: BoltContext, client: WebClient
    ) -> None:
        caller: Caller = context["caller"]
        command: Command = context["command"]
        record: RollbackRecord | None = context["record"]
        cancelled: RollbackRecord | None = None
        if command.action == "help" and not str(body.get("text") or "").strip():
            # `/rollback` alone: the form asks what the flags would have said.
            ack()
            trigger = str(body.get("trigger_id") or "")
            later.submit(open_form, client, services, trigger, caller.channel)
            return
        try:
            if command.action == "help":
                text = HELP
            elif command.action == "status":
                text = status_answer(caller, record)
            elif command.action == "drill":
                text = drill.drill_answer(caller, command, str(body.get("trigger_id")))
            elif command.action == "stats":
                figures = stats.figures(caller, command)
                ack(text=stats.answer(figures), response_type="ephemeral")
                url = str(body.get("response_url") or "")
                later.submit(stats.send_chart, client, caller, figures, command, url)
                return
            elif command.action == "history":
                text = history_answer(caller, command)
            elif command.action == "cancel" and record is not None:
                cancelled = cancel(caller, record)
                text = f"Cancelled {code(cancelled.id)}."
            elif command.action == "resume" and record is not None:
                text = ask_to_resume(caller, record)
            elif command.action == "rollback":
                trigger = str(body.get("trigger_id") or body.get("text"))
                text = open_rollback(
                    caller, command, trigger, str(body.get("response_url") or "")
                ).text
            else:
                text = f":warning: /rollback {untrusted(command.action)} is not available"
        except RollbotError as err:
            text = f":warning: {untrusted(str(err))}"
        ack(text=text, response_type="ephemeral")
        if cancelled is not None:
            later.submit(show_cancelled, client, cancelled)
