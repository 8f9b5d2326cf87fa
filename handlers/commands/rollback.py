"""`/rollback …`: parse, authorize, record, enqueue, ack. Nothing slow here."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from slack_bolt import Ack, App

from bot.commands import USAGE, Command, parse_command
from bot.errors import RollbotError
from bot.policy import check_may_request
from bot.records import RollbackState, requested
from bot.store import Job
from handlers.services import Services


def handle_rollback_command(services: Services, body: dict[str, Any]) -> str:
    """The ephemeral answer to a `/rollback` command (its side effects done)."""
    config, store = services.config, services.store
    user, channel = str(body.get("user_id", "")), str(body.get("channel_id", ""))
    try:
        command = parse_command(str(body.get("text", "")), config.default_namespace, config.catalog)
        if command.action == "help":
            return f"```{USAGE}```"
        if command.action == "status":
            return _status(services, command)
        if command.action == "cancel":
            return _cancel(services, command, user)
        if command.action == "history":
            config.check_namespace_allowed(command.namespace)
            services.queue.enqueue(
                Job(
                    kind="history",
                    args={
                        "namespace": command.namespace,
                        "workload": command.service or command.workload,
                        "user": user,
                        "channel": channel,
                    },
                )
            )
            return f"Reading the history of {command.namespace}/{command.service}…"
        check_may_request(config, command.namespace, user, command.emergency, services.groups_of)
        config.check_namespace_allowed(command.namespace)
        strategy, workload = command.resolved(config)
        record = requested(
            command.namespace,
            workload,
            user,
            reason=command.reason,
            revision=command.to_revision,
            channel=channel,
            dry_run=command.dry_run,
            emergency=command.emergency,
            to_tag=command.to_tag,
            strategy=strategy,
            options=command.options,
            ttl=timedelta(seconds=config.confirmation_ttl_seconds),
        )
        # One round trip: the lock looked at, the trigger claimed (Slack re-delivers a
        # command it thinks timed out: act on each once), the record stored, the job queued.
        outcome, holder = store.open(
            record,
            claim=f"command:{body.get('trigger_id') or body.get('text')}",
            job=Job(kind="assess", record_id=record.id),
            queue=services.queue.QUEUE,
        )
        if outcome == "held":
            running = store.get(holder)
            return (
                f"A rollback of {workload} is already in progress "
                f"(`{holder}`, requested by <@{running.requested_by}>): see its thread."
            )
        if outcome == "duplicate":
            return "Your command was already received; its confirmation is on its way."
        how = "" if strategy == "undo" else f" ({strategy})"
        return (
            f"Assessing {command.namespace}/{workload}{how} (`{record.id}`): "
            "a confirmation will be posted here."
        )
    except RollbotError as err:
        return f":warning: {err}"


def _status(services: Services, command: Command) -> str:
    if command.record_id:
        records = [services.store.get(command.record_id)]
    else:
        records = services.store.recent(5)
    if not records:
        return "No rollbacks yet."
    return "\n".join(
        f"`{r.id}` {r.namespace}/{r.workload}: *{r.state.value.replace('_', ' ')}* — "
        f"{r.timeline[-1].message if r.timeline else ''}"
        for r in records
    )


def _cancel(services: Services, command: Command, user: str) -> str:
    record = services.store.update(
        command.record_id,
        lambda r: r.transition(RollbackState.CANCELLED, f"cancelled by <@{user}>", actor=user),
    )
    return f"Cancelled `{record.id}`."


def register(app: App, services: Services) -> None:
    @app.command("/rollback")
    def rollback_command(ack: Ack, body: dict[str, Any]) -> None:
        ack(text=handle_rollback_command(services, body), response_type="ephemeral")
