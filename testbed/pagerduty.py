"""A local PagerDuty Events API v2, change events only, checking requests as
PagerDuty's documentation ("Send a Change Event", the events-v2 OpenAPI) says:

    POST /v2/change/enqueue   Content-Type: application/json, at most 512 KB
      routing_key  required: a 32-character integration key this server knows
      payload      required object; payload.summary required, ≤ 1024 characters;
                   payload.timestamp ISO 8601 if given; payload.custom_details an object
      links        optional array of {href (required), text}
    → 202 {"status": "success", "message": "Change event processed"}
    → 400 {"status": "invalid event", "message": "Event object is invalid", "errors": [...]}
    → 429 / 5xx as the faults a test switches on (`fail_next`)

    with FakePagerDuty() as pagerduty:
        ... pagerduty.url (the enqueue URL), pagerduty.events (accepted bodies)
"""

from __future__ import annotations

import json
from datetime import datetime
from http.server import ThreadingHTTPServer
from typing import Any

from testbed.service import QuietHTTPServer, ThreadedHttpService
from testbed.vendor_api import Faults, VendorHandler

#: An integration key this server knows (PagerDuty's are 32 characters).
ROUTING_KEY = "rollbot0test0routing0key00000001"
PATH = "/v2/change/enqueue"
MAX_BYTES = 512 * 1024
SUMMARY_LIMIT = 1024


def _timestamp_ok(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def change_event_errors(event: Any, routing_keys: set[str]) -> list[str]:
    """What PagerDuty would say is wrong with `event` (empty: it is taken)."""
    if not isinstance(event, dict):
        return ["Event object must be a JSON object"]
    errors = []
    key = event.get("routing_key")
    if not isinstance(key, str) or not key.strip():
        errors.append("'routing_key' is missing or blank")
    elif len(key) != 32 or key not in routing_keys:
        errors.append("Invalid routing key")
    payload = event.get("payload")
    if not isinstance(payload, dict):
        return [*errors, "'payload' is missing or not an object"]
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        errors.append("'payload.summary' is missing or blank")
    elif len(summary) > SUMMARY_LIMIT:
        errors.append(f"'payload.summary' must be at most {SUMMARY_LIMIT} characters")
    if "timestamp" in payload and not _timestamp_ok(payload["timestamp"]):
        errors.append("'payload.timestamp' must be an ISO 8601 timestamp")
    if "source" in payload and not isinstance(payload["source"], str):
        errors.append("'payload.source' must be a string")
    if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
        errors.append("'payload.custom_details' must be an object")
    links = event.get("links", [])
    if not isinstance(links, list) or not all(
        isinstance(link, dict) and isinstance(link.get("href"), str) and link["href"]
        for link in links
    ):
        errors.append("'links' must be an array of objects, each with an 'href'")
    return errors


class FakePagerDuty(ThreadedHttpService):
    def __init__(self, routing_keys: set[str] | None = None) -> None:
        self.routing_keys = routing_keys or {ROUTING_KEY}
        #: Accepted change events, in order of arrival.
        self.events: list[dict[str, Any]] = []
        #: Every request's answer status, in order.
        self.answers: list[int] = []
        self.faults = Faults()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    def fail_next(self, count: int, status: int = 500, retry_after: float | None = None) -> None:
        body = {"status": "error", "message": "Internal error"} if status >= 500 else None
        if status == 429:
            body = {
                "status": "throttle",
                "message": "Requests for this service are arriving too quickly.",
            }
        self.faults.set(count, status, retry_after, body)

    def _make_server(self) -> ThreadingHTTPServer:
        pagerduty = self

        class Handler(VendorHandler):
            def _invalid(self, *errors: str) -> None:
                pagerduty.answers.append(400)
                self.answer(
                    400,
                    {"status": "invalid event", "message": "Event object is invalid",
                     "errors": list(errors)},
                )  # fmt: skip

            def do_POST(self) -> None:  # noqa: N802
                if self.path != PATH:
                    self.body()
                    pagerduty.answers.append(404)
                    self.answer(404, {"status": "not found", "message": "Not found"})
                    return
                if self.fault(pagerduty.faults, None):
                    pagerduty.answers.append(pagerduty.faults.status)
                    return
                raw = self.body()
                if len(raw) > MAX_BYTES:
                    return self._invalid(f"Event payload is larger than {MAX_BYTES // 1024} KB")
                if not self.is_json():
                    return self._invalid("Content-Type must be application/json")
                try:
                    event = json.loads(raw)
                except ValueError:
                    pagerduty.answers.append(400)
                    self.answer(
                        400,
                        {"status": "Unrecognized object",
                         "message": "Event object format is unrecognized",
                         "errors": ["JSON parse error"]},
                    )  # fmt: skip
                    return
                if errors := change_event_errors(event, pagerduty.routing_keys):
                    return self._invalid(*errors)
                pagerduty.events.append(event)
                pagerduty.answers.append(202)
                self.answer(202, {"status": "success", "message": "Change event processed"})

            def do_GET(self) -> None:  # noqa: N802
                self.answer(405, {"status": "method not allowed", "message": "Use POST"})

        return QuietHTTPServer(("127.0.0.1", 0), Handler)
