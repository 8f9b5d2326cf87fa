"""An Atlassian Statuspage-compatible page: one incident per rollback in an
environment the config lists (`notify.statuspage.environments`).

API (developer.statuspage.io): `Authorization: OAuth API_KEY`, JSON bodies
wrapping the object, `{"incident": {...}}`.

- started: POST /pages/{page_id}/incidents with a name, status "identified",
  the body of the "incident notification" template, and the service's component
  (`notify.statuspage.components`) set to `component_status`;
- finished: PATCH /pages/{page_id}/incidents/{incident_id}: succeeded → status
  "resolved" and the component "operational"; failed → the incident stays open
  ("identified") with the "rollback complete" text and the error.

The incident's id is kept in Redis per record, so the end updates the incident
the start opened, whichever process delivers it.
"""

from __future__ import annotations

from typing import Any

import httpx
import redis

from bot.change_events import ChangeEvent
from bot.incident import report_context
from bot.notify.context import EventContext
from bot.notify.sending import Refused, call
from bot.notify.settings import StatuspageSettings
from bot.redaction import redact
from bot.reports import TemplateRenderer

INCIDENTS = "rollbot:changes:statuspage"
REMEMBER_SECONDS = 30 * 86400


def incident_text(event: ChangeEvent, context: EventContext, renderer: TemplateRenderer) -> str:
    """The communication template's text: the todo-app runbook's "incident
    notification" when it starts, its "rollback complete" when it ends."""
    error = f"\nError: {redact(event.error)}" if event.error else ""
    if context.record is None:  # retention deleted it: say what the event knows
        return (
            f"Rollback of {event.service}: {event.current} → {event.target}, {event.state}.{error}"
        )
    facts = report_context(context.record)
    facts["environment"] = context.environment
    facts["thread_url"] = context.thread_url
    if event.kind == "started":
        # The record may have moved on since: the start is told as it was then.
        facts["outcome"] = "in progress"
        facts["finished_at"] = None
        return renderer.render("incident_notification.txt.j2", facts).strip()
    facts["outcome"] = "succeeded" if event.state == "succeeded" else "failed"
    return renderer.render("rollback_complete.txt.j2", facts).strip() + error


def incident_fields(
    event: ChangeEvent, settings: StatuspageSettings, text: str, catalog_name: str | None = None
) -> dict[str, Any]:
    """The incident's fields for this event (without its name). The component is
    found by the catalog's name for the service, else by the workload's."""
    restored = event.kind == "finished" and event.state == "succeeded"
    fields: dict[str, Any] = {"status": "resolved" if restored else "identified", "body": text}
    component = settings.components.get(catalog_name or "") or settings.components.get(
        event.service
    )
    if component:
        fields["component_ids"] = [component]
        fields["components"] = {component: "operational" if restored else settings.component_status}
    return fields


def incident_name(event: ChangeEvent, context: EventContext) -> str:
    where = f" ({context.environment})" if context.environment else ""
    return f"{event.service}{where}: rolling back to {event.target}"


class Statuspage:
    name = "statuspage"

    def __init__(
        self,
        settings: StatuspageSettings,
        api_key: str,
        client: httpx.Client,
        store: redis.Redis,
        renderer: TemplateRenderer,
    ) -> None:
        self.settings, self.api_key, self.client = settings, api_key, client
        self.redis, self.renderer = store, renderer

    def _url(self, *parts: str) -> str:
        return "/".join([self.settings.base_url, "pages", self.settings.page_id, *parts])

    def deliver(self, event: ChangeEvent, context: EventContext) -> None:
        if context.environment not in self.settings.environments:
            return  # this environment's rollbacks are not the page's business
        key = f"{INCIDENTS}:{event.record_id}"
        incident = self.redis.get(key)
        if event.kind == "started" and incident:
            return  # opened already (this is the same event, sent again)
        text = incident_text(event, context, self.renderer)
        fields = incident_fields(event, self.settings, text, context.catalog_name)
        headers = {"Authorization": f"OAuth {self.api_key}"}
        if incident:
            url = self._url("incidents", str(incident))
            call(
                self.client,
                "PATCH",
                url,
                what="Statuspage",
                json={"incident": fields},
                headers=headers,
            )
            return
        # No incident yet: the start opens one; an end without one (the page was
        # configured since, or the start was refused) opens it in its final state.
        fields = {"name": incident_name(event, context), **fields}
        answer = call(
            self.client, "POST", self._url("incidents"), what="Statuspage",
            json={"incident": fields}, headers=headers,
        )  # fmt: skip
        opened = (
            answer.json().get("id")
            if answer.headers.get("content-type", "").startswith("application/json")
            else None
        )
        if not isinstance(opened, str) or not opened:
            raise Refused(f"Statuspage created an incident but answered no id: {answer.text[:200]}")
        self.redis.set(key, opened, ex=REMEMBER_SECONDS)
