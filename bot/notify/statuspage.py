"""An Atlassian Statuspage-compatible page: one incident per rollback in an
environment the config lists (`notify.statuspage.environments`).

API (developer.statuspage.io): `Authorization: OAuth API_KEY`, JSON bodies
wrapping the object, `{"incident": {...}}`.

- started: POST /pages/{page_id}/incidents with a name, status "identified",
  the text of `statuspage_incident.txt.j2`, and the service's component
  (`notify.statuspage.components`) set to `component_status`;
- finished: PATCH /pages/{page_id}/incidents/{incident_id}: succeeded → status
  "resolved" and the component "operational"; failed → the incident stays open
  ("identified") with that template's "still affected" text.

The page is public: its text comes from its own template, not from the
runbooks' internal notices (people, Slack links, images, namespaces, reasons,
errors stay inside); an override in `templates_dir` replaces it. A drill never
opens an incident, even when `notify.include_drills` tells the others of it.

The incident's id is kept in Redis per record, so the end updates the incident
the start opened, whichever process delivers it. The API takes no idempotency
key, so a POST whose answer was lost (the network, or the deliverer killed before
it kept the id) could open a second incident when the event is delivered again:
each incident carries the rollback's id in its `metadata` (never shown on the
page), a mark is left in Redis before the POST, and a delivery that finds the
mark but no id looks among the page's recent incidents for that one first.
"""

from __future__ import annotations

from typing import Any, cast

import httpx
import redis

from bot.change_events import ChangeEvent
from bot.incident import ReportContext, Trigger, report_context
from bot.notify.context import EventContext
from bot.notify.sending import Refused, call
from bot.notify.settings import StatuspageSettings
from bot.redaction import redact
from bot.reports import TemplateRenderer

INCIDENTS = "rollbot:changes:statuspage"
REMEMBER_SECONDS = 30 * 86400
#: How many of the page's newest incidents are looked through for one a lost answer
#: hid (the API's page size; a rollback's retries come within minutes of its POST).
RECENT_INCIDENTS = 100


#: The incident's text, as customers read it (an override in `templates_dir` wins).
PUBLIC_TEMPLATE = "statuspage_incident.txt.j2"


def incident_text(event: ChangeEvent, context: EventContext, renderer: TemplateRenderer) -> str:
    """The incident's public text for this event: the service by the catalog's name,
    and whether it is being rolled back, restored, or still affected."""
    facts: ReportContext
    if context.record is not None:
        facts = report_context(context.record)
    else:  # retention deleted it: what the event knows
        facts = {
            "rollback_id": event.record_id, "service": event.service,
            "namespace": event.namespace, "workloads": [], "requested_by": event.requested_by,
            "reason": redact(event.reason), "trigger": cast(Trigger, event.trigger),
            "outcome": "in progress",
        }  # fmt: skip
    facts["service"] = context.catalog_name or event.service
    facts["environment"] = context.environment
    # Told as the event was, whatever the record has become since.
    if event.kind == "started":
        facts["outcome"], facts["finished_at"] = "in progress", None
    else:
        facts["outcome"] = "succeeded" if event.state == "succeeded" else "failed"
    return renderer.render(PUBLIC_TEMPLATE, facts).strip()


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
    """Public too: the service and its environment, never the revisions or images."""
    where = f" ({context.environment})" if context.environment else ""
    return f"{context.catalog_name or event.service}{where}: rolling back a recent change"


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
        if event.drill or context.environment not in self.settings.environments:
            return  # a drill, or an environment that is not the page's business
        key = f"{INCIDENTS}:{event.record_id}"
        headers = {"Authorization": f"OAuth {self.api_key}"}
        incident = self.redis.get(key)
        if incident is None and self.redis.exists(f"{key}:posted"):
            incident = self._opened_before(event.record_id, headers)
            if incident is not None:
                self.redis.set(key, incident, ex=REMEMBER_SECONDS)
        if event.kind == "started" and incident:
            return  # opened already (this is the same event, sent again)
        text = incident_text(event, context, self.renderer)
        fields = incident_fields(event, self.settings, text, context.catalog_name)
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
        fields = {
            "name": incident_name(event, context),
            "metadata": {"rollbot": {"rollback_id": event.record_id}},
            **fields,
        }
        self.redis.set(f"{key}:posted", "1", ex=REMEMBER_SECONDS)
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

    def _opened_before(self, record_id: str, headers: dict[str, str]) -> str | None:
        """The id of the incident an earlier POST for this rollback opened, if the page
        has one (raises TryLater when the page cannot be asked: nothing is opened
        while it is unknown whether one exists)."""
        answer = call(
            self.client, "GET", self._url("incidents"), what="Statuspage",
            params={"limit": RECENT_INCIDENTS}, headers=headers,
        )  # fmt: skip
        try:
            incidents = answer.json()
        except ValueError as err:
            raise Refused(f"Statuspage listed incidents as no JSON: {answer.text[:200]}") from err
        for incident in incidents if isinstance(incidents, list) else []:
            metadata = incident.get("metadata") if isinstance(incident, dict) else None
            ours = metadata.get("rollbot") if isinstance(metadata, dict) else None
            if isinstance(ours, dict) and ours.get("rollback_id") == record_id:
                found = incident.get("id")
                return found if isinstance(found, str) and found else None
        return None
