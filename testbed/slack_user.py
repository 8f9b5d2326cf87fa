"""Plays a person in Slack: what Slack sends rollbot when someone types
`/rollback …` or clicks a button, correctly signed (or not, when asked)."""

from __future__ import annotations

import json
import secrets
import time
import urllib.parse
from typing import Any

import httpx
from slack_sdk.signature import SignatureVerifier

from handlers.ids import ActionId


class SlackUser:
    """Sends what Slack sends when a person types a command or clicks a button."""

    def __init__(self, url: str, user: str, channel: str, secret: str) -> None:
        self.url, self.user, self.channel, self.secret = url, user, channel, secret

    def _post(
        self,
        form: dict[str, str],
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        body = urllib.parse.urlencode(form)
        ts = str(timestamp if timestamp is not None else int(time.time()))
        sig = signature or str(
            SignatureVerifier(self.secret).generate_signature(timestamp=ts, body=body)
        )
        return httpx.post(
            self.url,
            content=body,
            timeout=10,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": ts,
                "X-Slack-Signature": sig,
                **(headers or {}),
            },
        )

    def command(
        self,
        text: str,
        trigger_id: str | None = None,
        *,
        response_url: str = "http://127.0.0.1:9/unused",
        form: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """`response_url`: one the local Slack handed out (`FakeSlackApi.response_url`);
        `form`: more fields, as an Enterprise Grid workspace sends (`enterprise_id`…)."""
        return self._post(
            {
                "command": "/rollback",
                "text": text,
                "user_id": self.user,
                "user_name": self.user,
                "channel_id": self.channel,
                "team_id": "T0TEAM",
                "trigger_id": trigger_id or secrets.token_hex(8),
                "response_url": response_url,
                **(form or {}),
            },
            **kwargs,
        )

    def click(
        self,
        action: ActionId,
        record_id: str,
        message_ts: str,
        *,
        response_url: str = "http://127.0.0.1:9/unused",
    ) -> httpx.Response:
        payload = block_actions_payload(self.user, self.channel, action, record_id, message_ts)
        payload["response_url"] = response_url
        return self._post({"payload": json.dumps(payload)})


def block_actions_payload(
    user: str, channel: str, action: ActionId, record_id: str, message_ts: str
) -> dict[str, Any]:
    """What Slack sends when `user` clicks a button of rollbot's message."""
    return {
        "type": "block_actions",
        "team": {"id": "T0TEAM"},
        "api_app_id": "A0APP",
        "user": {"id": user, "name": user},
        "trigger_id": secrets.token_hex(8),
        "channel": {"id": channel},
        "container": {"type": "message", "message_ts": message_ts},
        "message": {"ts": message_ts, "text": ""},
        "response_url": "http://127.0.0.1:9/unused",
        "actions": [
            {
                "type": "button",
                "action_id": action.value,
                "block_id": "decision",
                "value": record_id,
                "action_ts": str(time.time()),
            }
        ],
    }
