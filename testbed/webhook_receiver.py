"""A webhook receiver as rollbot's README tells people to write one: it checks
the signature (HMAC-SHA256 over `TIMESTAMP.BODY` with the shared secret), refuses
a timestamp older than five minutes, and dedupes on the event id.

    POST /any/path   Content-Type: application/json
                     X-Rollbot-Event-Id, X-Rollbot-Timestamp, X-Rollbot-Signature: sha256=HEX
    → 200 {"ok": true}   (also for an event seen before: `duplicates` counts those)
    → 400 not JSON · 401 a bad or missing signature or a stale timestamp
    → faults a test switches on (`fail_next`: 4xx, 429 with Retry-After, 5xx, no answer)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from http.server import ThreadingHTTPServer
from typing import Any

from testbed.service import QuietHTTPServer, ThreadedHttpService
from testbed.vendor_api import Faults, VendorHandler

SECRET = "webhook-test-secret"
MAX_AGE_SECONDS = 300


class WebhookReceiver(ThreadedHttpService):
    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret
        #: Each event once, in order of first arrival.
        self.events: list[dict[str, Any]] = []
        self.seen: set[str] = set()
        self.duplicates = 0
        self.refused: list[tuple[int, str]] = []
        self.faults = Faults()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/rollbot"

    def fail_next(self, count: int, status: int = 500, retry_after: float | None = None) -> None:
        self.faults.set(count, status, retry_after, {"error": f"failing on purpose ({status})"})

    def _make_server(self) -> ThreadingHTTPServer:
        receiver = self

        class Handler(VendorHandler):
            def _refuse(self, status: int, why: str) -> None:
                receiver.refused.append((status, why))
                self.answer(status, {"error": why})

            def do_POST(self) -> None:  # noqa: N802
                if self.fault(receiver.faults, None):
                    return
                body = self.body()
                if not self.is_json():
                    return self._refuse(400, "Content-Type must be application/json")
                event_id = self.headers.get("X-Rollbot-Event-Id") or ""
                stamp = self.headers.get("X-Rollbot-Timestamp") or ""
                given = self.headers.get("X-Rollbot-Signature") or ""
                if not (event_id and stamp.isdigit() and given.startswith("sha256=")):
                    return self._refuse(401, "missing event id, timestamp or signature")
                if abs(time.time() - int(stamp)) > MAX_AGE_SECONDS:
                    return self._refuse(401, "stale timestamp")
                mac = hmac.new(
                    receiver.secret.encode(), stamp.encode() + b"." + body, hashlib.sha256
                )
                if not hmac.compare_digest(given, "sha256=" + mac.hexdigest()):
                    return self._refuse(401, "bad signature")
                try:
                    event = json.loads(body)
                except ValueError:
                    return self._refuse(400, "body is not JSON")
                if event_id in receiver.seen:
                    receiver.duplicates += 1
                else:
                    receiver.seen.add(event_id)
                    receiver.events.append(event)
                self.answer(200, {"ok": True})

        return QuietHTTPServer(("127.0.0.1", 0), Handler)
