"""A local Atlassian Statuspage API (v1), the incident calls rollbot makes,
checked as developer.statuspage.io describes them:

    Authorization: OAuth API_KEY           (else 401 {"error": "Could not authenticate"})
    POST  /v1/pages/{page_id}/incidents               {"incident": {...}} → 201 the incident
    PATCH /v1/pages/{page_id}/incidents/{incident_id} {"incident": {...}} → 200 the incident
    GET   /v1/pages/{page_id}/incidents?limit=N&page=P                    → 200 newest first
    GET   /v1/pages/{page_id}/incidents/{incident_id}                     → 200
    GET   /v1/pages/{page_id}/components/{component_id}                   → 200

The incident's `name` is required when it is created; `status` is one of the
incident statuses; `metadata` is an object whose top-level values are objects
(kept with the incident, shown by the API, not on the public page); `components`
maps component ids of this page to a component status and `component_ids` lists
ids of this page (else 422 {"error": [...]}).
A body that is not JSON, or has no "incident" object, is 400. An unknown page or
incident is 404. Rate limits and outages are faults a test switches on
(`fail_next`: 420/429 with Retry-After, 5xx, or no answer), and an answer lost
after the request was carried out (`lose_next_answers`: the connection closes
with no answer, as when the network or the caller dies after the POST).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from testbed.service import QuietHTTPServer, ThreadedHttpService
from testbed.vendor_api import Faults, VendorHandler

API_KEY = "statuspage-test-key"
INCIDENT_STATUSES = {"investigating", "identified", "monitoring", "resolved", "postmortem"}
COMPONENT_STATUSES = {
    "operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance",
}  # fmt: skip
_INCIDENTS = re.compile(r"^/v1/pages/([^/]+)/incidents(?:/([^/]+?))?(?:\.json)?$")
_COMPONENT = re.compile(r"^/v1/pages/([^/]+)/components/([^/]+?)(?:\.json)?$")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FakeStatuspage(ThreadedHttpService):
    def __init__(
        self, page_id: str = "pg0rollbot", components: dict[str, str] | None = None
    ) -> None:
        self.page_id, self.api_key = page_id, API_KEY
        #: Component id → {"id", "name", "status"}.
        self.components = {
            cid: {"id": cid, "name": name, "status": "operational"}
            for cid, name in (components or {"cmp0web": "Web"}).items()
        }
        #: Incident id → the incident, as the API shows it.
        self.incidents: dict[str, dict[str, Any]] = {}
        #: Every request: (method, path, answer status).
        self.requests: list[tuple[str, str, int]] = []
        self.faults = Faults()
        #: How many of the next requests are carried out and then left unanswered.
        self.answers_to_lose = 0
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def fail_next(self, count: int, status: int = 500, retry_after: float | None = None) -> None:
        body = (
            {"error": "Rate limit exceeded"}
            if status in (420, 429)
            else {"error": "Internal Server Error"}
        )
        self.faults.set(count, status, retry_after, body)

    def lose_next_answers(self, count: int) -> None:
        self.answers_to_lose = count

    def _problems(self, fields: dict[str, Any], creating: bool) -> list[str]:
        problems = []
        metadata = fields.get("metadata", {})
        objects = isinstance(metadata, dict) and all(isinstance(v, dict) for v in metadata.values())
        if not objects:
            problems.append("Metadata top-level values must be objects")
        if creating and not (isinstance(fields.get("name"), str) and fields["name"].strip()):
            problems.append("Name can't be blank")
        if "status" in fields and fields["status"] not in INCIDENT_STATUSES:
            problems.append(f"Status {fields['status']!r} is not a valid incident status")
        if "body" in fields and not isinstance(fields["body"], str):
            problems.append("Body must be a string")
        components = fields.get("components", {})
        if not isinstance(components, dict):
            problems.append("Components must map component ids to a status")
            components = {}
        for cid, status in components.items():
            if cid not in self.components:
                problems.append(f"Component {cid} is not a component of this page")
            elif status not in COMPONENT_STATUSES:
                problems.append(f"Component status {status!r} is not valid")
        ids = fields.get("component_ids", [])
        if not isinstance(ids, list) or any(cid not in self.components for cid in ids):
            problems.append("Component ids must be components of this page")
        return problems

    def _apply(self, incident: dict[str, Any], fields: dict[str, Any]) -> None:
        now = _now()
        affected = []
        for cid, status in fields.get("components", {}).items():
            component = self.components[cid]
            affected.append({"code": cid, "name": component["name"],
                             "old_status": component["status"], "new_status": status})  # fmt: skip
            component["status"] = status
        if isinstance(fields.get("metadata"), dict):
            incident["metadata"] = {**incident["metadata"], **fields["metadata"]}
        for key in ("name", "status", "impact_override"):
            if key in fields:
                incident[key] = fields[key]
        if "component_ids" in fields or affected:
            ids = set(fields.get("component_ids", [])) | {a["code"] for a in affected}
            incident["components"] = [dict(self.components[cid]) for cid in sorted(ids)]
        if incident["status"] == "resolved" and not incident["resolved_at"]:
            incident["resolved_at"] = now
        incident["updated_at"] = now
        if "body" in fields or "status" in fields:
            incident["incident_updates"].insert(0, {
                "id": secrets.token_hex(6), "incident_id": incident["id"],
                "status": incident["status"], "body": fields.get("body", ""),
                "created_at": now, "display_at": now, "affected_components": affected,
                "deliver_notifications": fields.get("deliver_notifications", True),
            })  # fmt: skip

    def _make_server(self) -> ThreadingHTTPServer:
        page = self

        class Handler(VendorHandler):
            def _reply(self, status: int, body: Any) -> None:
                page.requests.append((self.command, self.path, status))
                if page.answers_to_lose > 0 and self.command != "GET":
                    page.answers_to_lose -= 1  # carried out; the answer never arrives
                    self.close_connection = True
                    self.connection.close()
                    return
                self.answer(status, body)

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") == f"OAuth {page.api_key}":
                    return True
                self.body()
                self._reply(401, {"error": "Could not authenticate"})
                return False

            def _fields(self) -> dict[str, Any] | None:
                raw = self.body()
                if not self.is_json():
                    self._reply(400, {"error": "Content-Type must match the body (JSON)"})
                    return None
                try:
                    data = json.loads(raw)
                except ValueError:
                    self._reply(400, {"error": "The body is not valid JSON"})
                    return None
                if not isinstance(data, dict) or not isinstance(data.get("incident"), dict):
                    self._reply(400, {"error": "param is missing or the value is empty: incident"})
                    return None
                return dict(data["incident"])

            def _route(self) -> tuple[str | None, str | None] | None:
                """(incident id or None) for an incidents path of this page, else answered."""
                match = _INCIDENTS.match(self.path.split("?", 1)[0])
                if match is None or match.group(1) != page.page_id:
                    self.body()
                    self._reply(404, {"error": "Not found"})
                    return None
                return match.group(1), match.group(2)

            def _serve(self) -> None:
                if not self._authorized():
                    return
                if self.fault(page.faults, None):
                    page.requests.append((self.command, self.path, page.faults.status))
                    return
                component = _COMPONENT.match(self.path)
                if self.command == "GET" and component and component.group(1) == page.page_id:
                    found = page.components.get(component.group(2))
                    self._reply(200, found) if found else self._reply(404, {"error": "Not found"})
                    return
                route = self._route()
                if route is None:
                    return
                _, incident_id = route
                with page._lock:
                    self._incidents(incident_id)

            def _incidents(self, incident_id: str | None) -> None:
                if self.command == "GET" and incident_id is None:
                    query = parse_qs(urlsplit(self.path).query)
                    limit = int(query.get("limit", ["100"])[0])
                    number = int(query.get("page", ["1"])[0])
                    newest = list(reversed(page.incidents.values()))  # created in this order
                    self._reply(200, newest[(number - 1) * limit : number * limit])
                    return
                if self.command == "GET":
                    found = page.incidents.get(incident_id or "")
                    self._reply(200, found) if found else self._reply(404, {"error": "Not found"})
                    return
                if self.command == "POST" and incident_id is None:
                    fields = self._fields()
                    if fields is None:
                        return
                    if problems := page._problems(fields, creating=True):
                        self._reply(422, {"error": problems})
                        return
                    now = _now()
                    incident: dict[str, Any] = {
                        "id": secrets.token_hex(6), "page_id": page.page_id,
                        "name": fields["name"], "status": fields.get("status", "investigating"),
                        "impact": "minor", "created_at": now, "updated_at": now,
                        "started_at": now, "resolved_at": None,
                        "shortlink": "https://stspg.io/rollbot", "components": [],
                        "incident_updates": [], "metadata": {},
                    }  # fmt: skip
                    page._apply(incident, fields)
                    page.incidents[incident["id"]] = incident
                    self._reply(201, incident)
                    return
                if self.command in ("PATCH", "PUT") and incident_id is not None:
                    fields = self._fields()
                    if fields is None:
                        return
                    found = page.incidents.get(incident_id)
                    if found is None:
                        self._reply(404, {"error": "Not found"})
                        return
                    if problems := page._problems(fields, creating=False):
                        self._reply(422, {"error": problems})
                        return
                    page._apply(found, fields)
                    self._reply(200, found)
                    return
                self.body()
                self._reply(405, {"error": "Method not allowed"})

            do_GET = do_POST = do_PATCH = do_PUT = _serve

        return QuietHTTPServer(("127.0.0.1", 0), Handler)
