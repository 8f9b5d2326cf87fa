"""What reaches /slack/events is refused before Bolt unless Slack signed it, in
time, and it has the shape Slack sends (handlers/slack_http.py)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.parse

import pytest

from handlers.slack_http import Malformed, malformed, read_body, unsigned

SECRET = "unit-signing-secret"


def signature(body: bytes, timestamp: str, secret: str = SECRET) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def test_a_request_signed_by_slack_just_now_is_signed():
    now = str(int(time.time()))
    assert not unsigned(b"command=%2Frollback", now, signature(b"command=%2Frollback", now), SECRET)


@pytest.mark.parametrize(
    ("timestamp", "secret"),
    [
        # An int is seconds from now, read when the test runs: a timestamp made at
        # collection drifts into the allowed five minutes in a long session.
        (-400, SECRET),  # stale: a replay
        (+400, SECRET),  # from the future
        ("1e9", SECRET),  # Bolt's int() raised on these
        ("abc", SECRET),
        ("", SECRET),
        ("١٢٣", SECRET),  # digits, but not ASCII ones
        (0, "another-secret"),
    ],
)
def test_a_request_not_signed_by_slack_in_time_is_unsigned(timestamp, secret):
    if isinstance(timestamp, int):
        timestamp = str(int(time.time()) + timestamp)
    body = b"\x80 not even UTF-8"
    assert unsigned(body, timestamp, signature(body, timestamp, secret), SECRET)


def test_a_signature_that_is_not_ascii_is_unsigned_not_an_error():
    now = str(int(time.time()))
    assert unsigned(b"x", now, "v0=é", SECRET)


def form(payload: object) -> bytes:
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


CLICK = {
    "type": "block_actions",
    "user": {"id": "U0BOB"},
    "channel": {"id": "C0X"},
    "actions": [{"action_id": "rollback_approve", "value": "rb-1"}],
}


@pytest.mark.parametrize(
    "body",
    [
        b"command=%2Frollback&text=web",
        form(CLICK),
        form({"type": "view_submission", "view": {"id": "V1"}}),
        b"",
    ],
)
def test_what_slack_sends_is_well_formed(body):
    assert malformed(body) is None


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe",
        b"payload=",
        b"payload=%7B",
        form(None),
        form([]),
        form("x"),
        form({"type": 1}),
        form({**CLICK, "actions": "x"}),
        form({**CLICK, "actions": []}),
        form({**CLICK, "actions": [1]}),
        form({**CLICK, "actions": [{"value": "rb-1"}]}),
        form({**CLICK, "user": "U0BOB"}),
        form({**CLICK, "user": {"id": ["U0BOB"]}}),
        form({k: v for k, v in CLICK.items() if k != "user"}),
        form({**CLICK, "channel": "C0X"}),
        form({**CLICK, "message": "x"}),
        form({"type": "view_submission", "view": 1}),
    ],
)
def test_a_body_bolt_would_trip_on_is_malformed(body):
    assert malformed(body)


def test_a_command_is_read_as_its_form_fields_whatever_its_text_says():
    body = b"command=%2Frollback&text=web+--reason+payload%3D1+broke&user_id=U0ALICE&x="
    assert read_body(body) == {
        "command": "/rollback",
        "text": "web --reason payload=1 broke",
        "user_id": "U0ALICE",
        "x": "",
    }


def test_a_click_is_read_as_its_payload_and_an_event_as_its_json():
    assert read_body(form(CLICK)) == CLICK
    event = {"type": "event_callback", "event": {"type": "app_home_opened"}}
    assert read_body(json.dumps(event).encode(), "application/json") == event
    with pytest.raises(Malformed, match="not a JSON object"):
        read_body(b"[1]", "application/json")
