"""A generic webhook: every change event POSTed as JSON, signed.

Headers a receiver checks:

- `X-Rollbot-Event-Id`: the event's id; the same event sent again (after a
  failure, or a deliverer that died mid-call) has the same id: dedupe on it.
- `X-Rollbot-Timestamp`: Unix seconds when this request was signed; reject old ones.
- `X-Rollbot-Signature`: `sha256=` + hex HMAC-SHA256, keyed with the shared
  secret, over `TIMESTAMP.BODY` (the timestamp header, a dot, the raw body).

Any 2xx is taken; 408, 429 and 5xx are tried again; another 4xx drops the event
for this webhook.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx

from bot.change_events import ChangeEvent
from bot.notify.context import EventContext, facts
from bot.notify.sending import call
from bot.notify.settings import WebhookSettings

SIGNATURE = "X-Rollbot-Signature"
TIMESTAMP = "X-Rollbot-Timestamp"
EVENT_ID = "X-Rollbot-Event-Id"


def webhook_body(event: ChangeEvent, context: EventContext) -> bytes:
    return json.dumps(
        {"type": f"rollback.{event.kind}", **facts(event, context)}, separators=(",", ":")
    ).encode()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(
    event: ChangeEvent, secret: str, body: bytes, now: float | None = None
) -> dict[str, str]:
    timestamp = str(int(now if now is not None else time.time()))
    return {
        "Content-Type": "application/json",
        EVENT_ID: event.id,
        TIMESTAMP: timestamp,
        SIGNATURE: signature(secret, timestamp, body),
    }


class Webhook:
    def __init__(self, settings: WebhookSettings, secret: str, client: httpx.Client) -> None:
        self.settings, self.secret, self.client = settings, secret, client
        # The URL names it: reordering the config does not resend anything.
        self.name = f"webhook:{hashlib.sha256(settings.url.encode()).hexdigest()[:12]}"

    def deliver(self, event: ChangeEvent, context: EventContext) -> None:
        body = webhook_body(event, context)
        headers = signed_headers(event, self.secret, body)
        what = f"webhook {self.settings.url}"
        call(self.client, "POST", self.settings.url, what=what, content=body, headers=headers)
