"""What every destination is told besides the event: the environment, a link to
the rollback's thread, and the record (for the status page's templates)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from bot.change_events import ChangeEvent
from bot.records import RollbackRecord
from bot.redaction import redact


@dataclass(frozen=True)
class EventContext:
    #: The environment of the event's namespace (`environments:`), if it has one.
    environment: str | None = None
    #: The Slack thread of the rollback, when the workspace URL is configured.
    thread_url: str | None = None
    #: The record as it is now (None once retention deleted it).
    record: RollbackRecord | None = None
    #: The catalog's name for the workload (`services:`), when it has one.
    catalog_name: str | None = None


class Destination(Protocol):
    #: Stable across restarts: the key under which "this event reached me" is kept.
    name: str

    def deliver(self, event: ChangeEvent, context: EventContext) -> None:
        """Send `event`; return when it was taken, else raise TryLater or Refused."""


def thread_url(workspace_url: str | None, record: RollbackRecord | None) -> str | None:
    """Slack's permalink form, https://WORKSPACE/archives/CHANNEL/pTS (the ts without its dot)."""
    if not workspace_url or record is None or not record.channel or not record.thread_ts:
        return None
    return f"{workspace_url}/archives/{record.channel}/p{record.thread_ts.replace('.', '')}"


def facts(event: ChangeEvent, context: EventContext) -> dict[str, Any]:
    """The event as plain JSON-able facts; what people and pods wrote, redacted again
    (cheap, and whatever path the text took, no credential leaves)."""
    return {
        "id": event.id,
        "kind": event.kind,
        "record_id": event.record_id,
        "service": event.service,
        "namespace": event.namespace,
        "environment": context.environment,
        "strategy": event.strategy,
        "trigger": event.trigger,
        "from": event.current,
        "to": event.target,
        "requested_by": event.requested_by,
        "approved_by": event.approved_by,
        "reason": redact(event.reason),
        "state": event.state,
        "error": redact(event.error) if event.error else None,
        "emergency": event.emergency,
        "drill": event.drill,
        "at": event.at.isoformat(),
        "thread_url": context.thread_url,
    }
