"""The ways out of a rollback that changed the cluster and then failed (still
unhealthy, or a component failed): roll back further, or put back the state the
backup saved before it; and, after a re-assessment found it worse, the rollback
asked for again. Each opens a new rollback with the usual confirmation and
approval; nothing runs on the click alone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient

from bot.errors import RollbotError
from bot.records import RollbackRecord, RollbackState, requested
from bot.store import Job
from handlers.after_ack import tell
from handlers.authorization import Caller, on_click, request_click
from handlers.blocks import state_label
from handlers.ids import ActionId
from handlers.mrkdwn import code, untrusted
from handlers.services import Services


def _follow_up(caller: Caller, failed: RollbackRecord, kind: str) -> str:
    """Open the follow-up rollback a recovery button asks for (the clicker was checked
    for requesting it); what the clicker reads."""
    user, services = caller.user, caller.services
    store, config = services.store, services.config
    try:
        if kind == "again" and failed.state is RollbackState.AWAITING_APPROVAL:
            return f"{code(failed.id)} is still waiting for approval: approve its confirmation."
        if kind != "again" and failed.state is not RollbackState.FAILED:
            return f"{code(failed.id)} is {state_label(failed.state)}: nothing to recover."
        if not store.claim_once(f"{kind}:{failed.id}", ttl=3600):
            return f"A follow-up of {code(failed.id)} was already asked for: see its confirmation."
        record = store.create(
            follow_up_request(failed, kind, user, config.confirmation_ttl_seconds)
        )
        store.update(failed.id, lambda r: r.note(f"{kind} asked by {user}: {record.id}", user))
        services.queue.enqueue(Job(kind="assess", record_id=record.id))
        return f"Assessing {code(record.id)}: a confirmation will be posted here."
    except RollbotError as err:
        return f":warning: {untrusted(str(err))}"


def follow_up_request(failed: RollbackRecord, kind: str, user: str, ttl: float) -> RollbackRecord:
    """The rollback a recovery button opens: asked for by the clicker, counted in the
    stats as a follow-up (not as a first request) of the rollback that failed."""
    if kind == "again":  # the same rollback, asked for again after a re-assessment
        how: dict[str, Any] = {
            "reason": f"re-assessed after {failed.id}: it got worse",
            "revision": failed.requested_revision,
            "to_tag": failed.to_tag,
            "strategy": failed.strategy,
            "options": dict(failed.options),
        }
    elif kind == "further":
        how = {
            "reason": f"after {failed.id} left it unhealthy: roll back further",
            "options": {"before": str(failed.target_revision)},
        }
    else:
        how = {
            "reason": f"after {failed.id} failed: restore the pre-rollback state",
            "strategy": "restore",
            "options": {"backup": failed.id, "what": "all"},
        }
    return requested(
        failed.namespace,
        failed.workload,
        user,
        channel=failed.channel,
        ttl=timedelta(seconds=ttl),
        trigger="follow-up",
        **how,
    )


def register(app: App, services: Services) -> None:
    later = app.listener_runner.listener_executor  # Slack is answered when we return

    def follow_up(client: WebClient, context: BoltContext, kind: str) -> None:
        caller: Caller = context["caller"]
        text = _follow_up(caller, context["record"], kind)
        later.submit(tell, client, caller.channel, caller.user, text)

    @on_click(app, services, ActionId.ROLL_FURTHER, request_click)
    def further_clicked(ack: Ack, context: BoltContext, client: WebClient) -> None:
        ack()
        follow_up(client, context, "further")

    @on_click(app, services, ActionId.REQUEST_AGAIN, request_click)
    def again_clicked(ack: Ack, context: BoltContext, client: WebClient) -> None:
        ack()
        follow_up(client, context, "again")

    @on_click(app, services, ActionId.RESTORE, request_click)
    def restore_clicked(ack: Ack, context: BoltContext, client: WebClient) -> None:
        ack()
        follow_up(client, context, "restore")
