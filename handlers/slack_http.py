"""What arrives at /slack/events is checked before Bolt sees it.

Bolt decodes the body as UTF-8 and reads the signature's timestamp with `int()`
before it checks the signature, and trusts the shape of an interactive payload
(`payload["user"].get(…)`, `payload["actions"][0]["action_id"]`, …). So an
unsigned POST with a non-UTF-8 body or a timestamp that is not a number, or a
payload that is not the shape Slack sends, raised in Bolt: a 500 and a traceback
for anyone on the internet. Here such a request is refused first — 401 unless it
is signed with the signing secret within five minutes, then 400 unless it is what
Slack sends — and Bolt only ever sees a well-formed request from Slack.

The body is parsed here, once, and Bolt is given what was parsed (`read_body`):
Bolt's own parser takes any form with the letters "payload" anywhere in it for an
interaction, so `/rollback web --reason "bad payload"` reached the listeners as an
empty body and the person saw Slack's error instead of an answer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.parse
from typing import Any, cast

#: Slack's own rule: a request older (or newer) than this may be a replay.
MAX_CLOCK_SKEW_SECONDS = 300
#: Objects of an interactive payload that Bolt reads fields of, when they are there.
_OBJECTS = ("user", "team", "channel", "enterprise", "container", "message", "view", "state")


def unsigned(body: bytes, timestamp: str, signature: str, secret: str) -> bool:
    """Whether the request is NOT signed by Slack with `secret` in the last five minutes."""
    if not timestamp.isascii() or not timestamp.isdigit():
        return True
    if abs(time.time() - int(timestamp)) > MAX_CLOCK_SKEW_SECONDS:
        return True
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return not hmac.compare_digest(expected.encode(), signature.encode(errors="replace"))


class Malformed(ValueError):
    """A signed body that is not a request as Slack sends it."""


def read_body(body: bytes, content_type: str = "") -> dict[str, Any]:
    """What the listeners read of a signed request: a slash command's form fields,
    an interaction's payload, or an event's JSON object. Raises Malformed (why) when
    the body is not what Slack sends."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("the body is not UTF-8") from None
    if content_type == "application/json" or text.startswith("{"):
        event = _json(text, "the body")  # the Events API (App Home)
        if not isinstance(event, dict):
            raise Malformed("the body is not a JSON object")
        return event
    fields = dict(urllib.parse.parse_qsl(text, keep_blank_values=True))
    if "payload" not in fields:
        return fields  # a slash command: form fields are strings
    payload = _json(fields["payload"], "the payload")
    if problem := _payload_problem(payload):
        raise Malformed(problem)
    return cast(dict[str, Any], payload)


def malformed(body: bytes, content_type: str = "") -> str | None:
    """Why a signed body is not a request as Slack sends it; None when it is."""
    try:
        read_body(body, content_type)
    except Malformed as err:
        return str(err)
    return None


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise Malformed(f"{what} is not JSON") from None


def _payload_problem(payload: Any) -> str | None:
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        return "the payload is not an object with a type"
    for key in _OBJECTS:
        value = payload.get(key)
        if value is not None and not isinstance(value, dict):
            return f"the payload's {key} is not an object"
        if isinstance(value, dict) and not isinstance(value.get("id", ""), str | None):
            return f"the payload's {key} id is not a string"
    if payload["type"] == "block_actions" and not isinstance(
        (payload.get("user") or {}).get("id"), str
    ):
        return "a click with no user"
    actions = payload.get("actions")
    if payload["type"] == "block_actions" or actions is not None:
        if not isinstance(actions, list) or not actions:
            return "the payload has no actions"
        for action in actions:
            if not isinstance(action, dict) or not isinstance(action.get("action_id"), str):
                return "an action has no action_id"
    return None
