"""Approve / Cancel on a confirmation: who may click is declared in `register`
(checked at every click, before the listener runs); the state change is made
once (a double click or a retry finds it made), then ack."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.errors import RollbotError
from bot.policy import count_approval, still_needed
from bot.records import RollbackRecord, RollbackState
from bot.store import Job
from handlers.after_ack import tell, update
from handlers.authorization import Caller, approve_click, cancel_click, on_click
from handlers.blocks import as_dicts, outcome_blocks, state_label
from handlers.ids import ActionId
from handlers.mrkdwn import untrusted
from handlers.services import Services

S = RollbackState


def _clicked(body: dict[str, Any]) -> tuple[str, str]:
    action = body["actions"][0]
    return str(action["value"]), str(body["user"]["id"])


class _Answer(Exception):
    """The click needs no change: what to tell the clicker (no timeline entry)."""


class _Expired(Exception):
    """The confirmation outlived its time."""


def handle_approve_click(
    services: Services, body: dict[str, Any], seen: RollbackRecord | None = None
) -> str | None:
    """None when approved; otherwise what the clicker alone should read.

    One transaction (Slack waits for the ack): the state and policy checked, the
    approval counted or the record approved, and the execute job queued with it —
    in one round trip while the record is still `seen`, the one the click's
    authorization read.
    """
    record_id, user = _clicked(body)
    store = services.store

    def approve(current: RollbackRecord) -> RollbackRecord:
        if current.state is not S.AWAITING_APPROVAL:
            raise _Answer(f"This rollback is already {state_label(current.state)}.")
        if current.expired():
            raise _Expired
        # Counted inside the transaction: a concurrent click may have counted.
        return count_approval(services.config, current, user, services.groups_of)

    def execute(changed: RollbackRecord) -> Job | None:
        return Job(kind="execute", record_id=record_id) if changed.state is S.APPROVED else None

    try:
        updated = store.update(
            record_id, approve, then=execute, queue=services.queue.QUEUE, seen=seen
        )
    except _Answer as answer:
        return str(answer)
    except _Expired:
        # The worker expires it now (and takes the buttons away), not at its timer.
        services.queue.enqueue(Job(kind="expire", record_id=record_id))
        return "This confirmation has expired; run /rollback again."
    except RollbotError as err:
        problem = str(err)
        try:
            store.update(record_id, lambda r: r.note(f"click by {user} refused: {problem}", user))
        except RollbotError:
            pass  # the record is gone or the store is down: the clicker still hears why
        return problem
    if updated.state is S.APPROVED:
        return None
    return still_needed(services.config, updated)


def handle_cancel_click(caller: Caller, record: RollbackRecord) -> RollbackRecord | str:
    """The cancelled record, or why it could not be cancelled."""
    try:
        return caller.services.store.update(
            record.id,
            lambda r: r.transition(S.CANCELLED, f"cancelled by {caller.user}", actor=caller.user),
            seen=record,
        )
    except RollbotError as err:
        return str(err)


def _tell(client: WebClient, body: dict[str, Any], text: str) -> None:
    channel, user = (body.get("channel") or {}).get("id", ""), body["user"]["id"]
    tell(client, channel, user, f":warning: {untrusted(text)}", body.get("response_url"))


def register(app: App, services: Services) -> None:
    # Slack is answered when a listener returns (process_before_response): what it
    # says in Slack after its ack goes to the listener pool.
    later = app.listener_runner.listener_executor

    @on_click(app, services, ActionId.APPROVE, approve_click, audit=True)
    def approve_clicked(
        ack: Ack, body: dict[str, Any], context: BoltContext, client: WebClient
    ) -> None:
        ack()
        problem = handle_approve_click(services, body, context.get("record"))
        if problem:
            later.submit(_tell, client, body, problem)

    @on_click(app, services, ActionId.CANCEL, cancel_click)
    def cancel_clicked(
        ack: Ack, body: dict[str, Any], context: BoltContext, client: WebClient
    ) -> None:
        ack()
        outcome = handle_cancel_click(context["caller"], context["record"])
        if isinstance(outcome, str):
            later.submit(_tell, client, body, outcome)
            return
        # The message the button is on (Slack sends it), else the confirmation.
        ts = (body.get("message") or {}).get("ts") or outcome.thread_ts
        if ts:
            text = f"Rollback of {untrusted(outcome.workload)}: cancelled"
            blocks = as_dicts(outcome_blocks(outcome))
            later.submit(update, client, outcome.channel, ts, text, blocks)
