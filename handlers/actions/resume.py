"""Resume… and Resume reconciliation, on a rollback that holds GitOps
reconciliation. Resume… asks the worker what Git holds against what runs (the
question is posted in the thread); only Resume reconciliation, under that
question, gives reconciliation back. Who may click is declared in `register`."""

from __future__ import annotations

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.errors import RollbotError
from bot.records import RollbackRecord
from bot.store import Job
from handlers.after_ack import tell
from handlers.authorization import Caller, on_click, resume_click
from handlers.ids import ActionId
from handlers.mrkdwn import code, untrusted
from handlers.services import Services

#: Double clicks within this many seconds resume once.
RESUME_CLAIM_SECONDS = 30


def ask_to_resume(caller: Caller, record: RollbackRecord) -> str:
    """Queue the question (what Git holds now); what the asker reads."""
    if not record.holding:
        return f"{code(record.id)} holds no reconciliation now."
    job = Job(
        kind="resume_check",
        record_id=record.id,
        args={"user": caller.user, "channel": caller.channel or record.channel},
    )
    try:
        caller.services.queue.enqueue(job)
    except RollbotError as err:
        return f":warning: {untrusted(str(err))}"
    return (
        f"Reading what Git holds for {code(record.id)}: the question is posted in its "
        "thread, with the button that resumes."
    )


def resume_now(caller: Caller, record: RollbackRecord) -> str:
    """Queue the resume, once however often it is clicked (a retry after a failure
    is taken after a short while: the resume skips what is done)."""
    if not record.holding:
        return f"{code(record.id)} holds no reconciliation now."
    if not caller.services.store.claim_once(f"resume:{record.id}", ttl=RESUME_CLAIM_SECONDS):
        return f"Resuming {code(record.id)} is under way already."
    job = Job(kind="resume", record_id=record.id, args={"user": caller.user})
    caller.services.queue.enqueue(job)
    return f"Resuming the reconciliation {code(record.id)} holds: see its thread."


def register(app: App, services: Services) -> None:
    later = app.listener_runner.listener_executor  # Slack is answered when we return

    @on_click(app, services, ActionId.RESUME, resume_click, audit=True)
    def resume_clicked(ack: Ack, context: BoltContext, client: WebClient) -> None:
        ack()
        caller: Caller = context["caller"]
        text = ask_to_resume(caller, context["record"])
        later.submit(tell, client, caller.channel, caller.user, text)

    @on_click(app, services, ActionId.RESUME_CONFIRM, resume_click, audit=True)
    def resume_confirmed(ack: Ack, context: BoltContext, client: WebClient) -> None:
        ack()
        caller: Caller = context["caller"]
        text = resume_now(caller, context["record"])
        later.submit(tell, client, caller.channel, caller.user, text)
