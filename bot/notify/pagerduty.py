"""PagerDuty Events API v2 change events (docs: "Send a Change Event").

POST https://events.pagerduty.com/v2/change/enqueue, JSON: `routing_key` (the
service integration's key) and `payload` are required, `payload.summary` is
required and at most 1024 characters; `source`, `timestamp` (ISO 8601) and
`custom_details` are optional, as are `links` ({href, text}). PagerDuty answers
202; 400 with an `errors` list is not retried, 429 and 5xx are.
"""

from __future__ import annotations

from typing import Any

import httpx

from bot.change_events import ChangeEvent
from bot.notify.context import EventContext, facts
from bot.notify.sending import call
from bot.notify.settings import PagerDutySettings
from bot.redaction import redact

SUMMARY_LIMIT = 1024


def change_summary(event: ChangeEvent) -> str:
    """ "Rollback of prod/web started: revision 42 → revision 41 (requested by U…, reason …)";
    a drill's starts with "DRILL — "."""
    where = f"{event.namespace}/{event.service}"
    change = f"{event.current} → {event.target}"
    if event.kind == "started":
        why = f", reason: {redact(event.reason)}" if event.reason else ""
        emergency = "Emergency rollback" if event.emergency else "Rollback"
        text = f"{emergency} of {where} started: {change} (requested by {event.requested_by}{why})"
    elif event.state == "succeeded":
        text = f"Rollback of {where} succeeded: {change}"
    else:
        error = f": {redact(event.error)}" if event.error else ""
        text = f"Rollback of {where} {event.state}{error} ({change})"
    if event.drill:
        text = f"DRILL — {text}"
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 1] + "…"


def change_event_body(
    event: ChangeEvent, routing_key: str, context: EventContext
) -> dict[str, Any]:
    details = {k: v for k, v in facts(event, context).items() if v is not None}
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "payload": {
            "summary": change_summary(event),
            "timestamp": event.at.isoformat(),
            "source": f"rollbot {context.environment or event.namespace}/{event.service}",
            "custom_details": details,
        },
    }
    if context.thread_url:
        body["links"] = [{"href": context.thread_url, "text": "The rollback's thread in Slack"}]
    return body


class PagerDuty:
    name = "pagerduty"

    def __init__(self, settings: PagerDutySettings, routing_key: str, client: httpx.Client) -> None:
        self.settings, self.routing_key, self.client = settings, routing_key, client

    def deliver(self, event: ChangeEvent, context: EventContext) -> None:
        body = change_event_body(event, self.routing_key, context)
        call(self.client, "POST", self.settings.url, what="PagerDuty", json=body)
