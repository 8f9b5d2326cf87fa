"""The ways out of a rollback that changed the cluster and then failed (still
unhealthy, or a component failed): roll back further, or put back the state the
backup saved before it; and, after a re-assessment found it worse, the rollback
asked for again. Each opens a new rollback with the usual confirmation and
approval; nothing runs on the click alone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.errors import RollbotError
from bot.policy import check_may_request
from bot.records import RollbackRecord, RollbackState, requested
from bot.store import Job
from handlers.ids import ActionId
from handlers.services import Services


def _follow_up(services: Services, body: dict[str, Any], kind: str) -> str:
    """Open the follow-up rollback a recovery button asks for; what the clicker reads."""
    record_id, user = str(body["actions"][0]["value"]), str(body["user"]["id"])
    store, config = services.store, services.config
    try:
        failed = store.get(record_id)
        if kind == "again" and failed.state is RollbackState.AWAITING_APPROVAL:
            return f"`{failed.id}` is still waiting for approval: approve its confirmation."
        if kind != "again" and failed.state is not RollbackState.FAILED:
            return f"`{failed.id}` is {failed.state.value.replace('_', ' ')}: nothing to recover."
        check_may_request(config, failed.namespace, user, False, services.groups_of)
        if not store.claim_once(f"{kind}:{failed.id}", ttl=3600):
            return f"A follow-up of `{failed.id}` was already asked for: see its confirmation."
        record = store.create(_request(failed, kind, user, config.confirmation_ttl_seconds))
        store.update(failed.id, lambda r: r.note(f"{kind} asked by <@{user}>: {record.id}", user))
        services.queue.enqueue(Job(kind="assess", record_id=record.id))
        return f"Assessing `{record.id}`: a confirmation will be posted here."
    except RollbotError as err:
        return f":warning: {err}"


def _request(failed: RollbackRecord, kind: str, user: str, ttl: float) -> RollbackRecord:
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
        **how,
    )


def register(app: App, services: Services) -> None:
    def answer(client: WebClient, body: dict[str, Any], text: str) -> None:
        client.chat_postEphemeral(channel=body["channel"]["id"], user=body["user"]["id"], text=text)

    @app.action(ActionId.ROLL_FURTHER.value)
    def further_clicked(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        answer(client, body, _follow_up(services, body, "further"))

    @app.action(ActionId.REQUEST_AGAIN.value)
    def again_clicked(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        answer(client, body, _follow_up(services, body, "again"))

    @app.action(ActionId.RESTORE.value)
    def restore_clicked(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        answer(client, body, _follow_up(services, body, "restore"))
