"""Plays a person in Slack: what Slack sends rollbot when someone types
`/rollback …`, clicks a button, uses a shortcut, fills in a form or opens the
Home tab, correctly signed (or not, when asked).

A command's text is given as the person types it, with Slack's markup for what
they pick from a list (`<@U123|alice>`, `<#C123|ops>`, `<!here>`, a link
`<https://…|label>`); it is sent as Slack sends it, with every other `&`, `<` and
`>` escaped (`as_slack_sends`).

Given the local Slack API (`slack=`), trigger ids are ones it issued, so that
views.open holds rollbot to Slack's rule: once, within three seconds. A form is
filled in as Slack's client does it: the view's state carries each input's
initial value unless the person changed it."""

from __future__ import annotations

import json
import re
import secrets
import time
import urllib.parse
from typing import Any

import httpx
from slack_sdk.signature import SignatureVerifier

from handlers.ids import ActionId
from testbed.slack_api import FakeSlackApi

#: Markup Slack makes of what a person picks or types: a person, a channel, a special
#: mention (`<!here>`, `<!subteam^S1|@sre>`), a link; each with an optional `|label`.
_MARKUP = re.compile(
    r"<(?:@[UW][A-Z0-9]+|#[CG][A-Z0-9]+|![a-z][^<>|\s]*|(?:https?|mailto):[^<>|\s]+)"
    r"(?:\|[^<>]*)?>"
)


def as_slack_sends(text: str, *, literal: bool = False) -> str:
    """A slash command's text as Slack sends it: `&`, `<` and `>` escaped as `&amp;`,
    `&lt;` and `&gt;`, but for the brackets of Slack's own markup, which stays
    (an `&` in it escaped too, as Slack does in a link). `literal`: the person typed
    every `<` and `>` as a character — `<!channel>` spelled out is text, not markup."""

    def escaped(typed: str) -> str:
        return typed.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    if literal:
        return escaped(text)
    sent, start = [], 0
    for markup in _MARKUP.finditer(text):
        sent += [escaped(text[start : markup.start()]), markup.group().replace("&", "&amp;")]
        start = markup.end()
    return "".join([*sent, escaped(text[start:])])


#: What a person chose in a form, by action_id: an option's value, typed text, the
#: values of ticked checkboxes, or a conversation id.
Answers = dict[str, Any]


class SlackUser:
    """Sends what Slack sends when a person types a command or clicks a button."""

    def __init__(
        self, url: str, user: str, channel: str, secret: str, slack: FakeSlackApi | None = None
    ) -> None:
        self.url, self.user, self.channel, self.secret = url, user, channel, secret
        self.slack = slack

    def trigger(self) -> str:
        return self.slack.issue_trigger() if self.slack else secrets.token_hex(8)

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
        literal: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        """`text` as the person types it (see `as_slack_sends`, and `literal` there);
        `response_url`: one the local Slack handed out (`FakeSlackApi.response_url`);
        `form`: more fields, as an Enterprise Grid workspace sends (`enterprise_id`…)."""
        return self._post(
            {
                "command": "/rollback",
                "text": as_slack_sends(text, literal=literal),
                "user_id": self.user,
                "user_name": self.user,
                "channel_id": self.channel,
                "team_id": "T0TEAM",
                "trigger_id": trigger_id or self.trigger(),
                "response_url": response_url,
                **(form or {}),
            },
            **kwargs,
        )

    def _payload(self, payload: dict[str, Any]) -> httpx.Response:
        return self._post({"payload": json.dumps(payload)})

    def _who(self) -> dict[str, Any]:
        return {"id": self.user, "username": self.user, "name": self.user, "team_id": "T0TEAM"}

    def shortcut(self, callback_id: str) -> httpx.Response:
        """A global shortcut, from the shortcuts menu (no channel)."""
        return self._payload(
            {
                "type": "shortcut",
                "token": "unused",
                "action_ts": str(time.time()),
                "team": {"id": "T0TEAM"},
                "user": self._who(),
                "callback_id": callback_id,
                "trigger_id": self.trigger(),
            }
        )

    def choose(
        self, view: dict[str, Any], block_id: str, action_id: str, answers: Answers
    ) -> httpx.Response:
        """Choose in a form's field that dispatches its action (`answers[action_id]`):
        the block_actions Slack sends, the form's state as it stands with it."""
        element = _element(view, block_id)
        state = view_state(view, answers)
        chosen = state[block_id][action_id]
        return self._payload(
            {
                "type": "block_actions",
                "team": {"id": "T0TEAM"},
                "api_app_id": "A0APP",
                "user": self._who(),
                "trigger_id": self.trigger(),
                "container": {"type": "view", "view_id": view["id"]},
                "view": {**view, "state": {"values": state}},
                "actions": [
                    {
                        **chosen,
                        "type": element["type"],
                        "action_id": action_id,
                        "block_id": block_id,
                        "action_ts": str(time.time()),
                    }
                ],
            }
        )

    def suggest(
        self, view: dict[str, Any], block_id: str, action_id: str, typed: str
    ) -> httpx.Response:
        """Type into an external select: the block_suggestion asking for its options."""
        return self._payload(
            {
                "type": "block_suggestion",
                "team": {"id": "T0TEAM"},
                "api_app_id": "A0APP",
                "user": self._who(),
                "container": {"type": "view", "view_id": view["id"]},
                "view": {**view, "state": {"values": view_state(view, {})}},
                "action_id": action_id,
                "block_id": block_id,
                "value": typed,
            }
        )

    def submit(self, view: dict[str, Any], answers: Answers) -> httpx.Response:
        """Press the form's submit button with `answers` filled in."""
        return self._payload(
            {
                "type": "view_submission",
                "team": {"id": "T0TEAM"},
                "api_app_id": "A0APP",
                "user": self._who(),
                "trigger_id": self.trigger(),
                "view": {**view, "state": {"values": view_state(view, answers)}},
                "response_urls": [],
            }
        )

    def open_home(self, tab: str = "home") -> httpx.Response:
        """Open rollbot's App Home: the app_home_opened event, as JSON."""
        event = {
            "type": "app_home_opened",
            "user": self.user,
            "channel": "D0ROLLBOT",
            "tab": tab,
            "event_ts": f"{time.time():.6f}",
        }
        body = json.dumps(
            {
                "token": "unused",
                "team_id": "T0TEAM",
                "api_app_id": "A0APP",
                "event": event,
                "type": "event_callback",
                "event_id": f"Ev{secrets.token_hex(5).upper()}",
                "event_time": int(time.time()),
            }
        )
        ts = str(int(time.time()))
        sig = str(SignatureVerifier(self.secret).generate_signature(timestamp=ts, body=body))
        return httpx.post(
            self.url,
            content=body,
            timeout=10,
            headers={
                "Content-Type": "application/json",
                "X-Slack-Request-Timestamp": ts,
                "X-Slack-Signature": sig,
            },
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


def _element(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    for block in view.get("blocks") or []:
        if block.get("block_id") == block_id and block.get("type") == "input":
            return dict(block["element"])
    raise KeyError(f"no input block {block_id} in the view")


def _option(element: dict[str, Any], value: str) -> dict[str, Any]:
    for option in element.get("options") or []:
        if option.get("value") == value:
            return dict(option)
    if element["type"] == "external_select":  # its options came from a block_suggestion
        return {"text": {"type": "plain_text", "text": value}, "value": value}
    raise KeyError(f"no option {value!r} in {element.get('action_id')}")


def view_state(view: dict[str, Any], answers: Answers) -> dict[str, Any]:
    """The state Slack's client sends with a form: every input's value, the answers
    given here, else its initial value."""
    values: dict[str, Any] = {}
    for block in view.get("blocks") or []:
        if block.get("type") != "input":
            continue
        element = block["element"]
        action, kind = element.get("action_id"), element["type"]
        given = answers.get(action)
        if kind in ("static_select", "external_select"):
            state = {
                "selected_option": _option(element, given)
                if given is not None
                else element.get("initial_option")
            }
        elif kind == "checkboxes":
            picked = (
                [_option(element, v) for v in given]
                if given is not None
                else element.get("initial_options") or []
            )
            state = {"selected_options": picked}
        elif kind == "conversations_select":
            state = {"selected_conversation": given or element.get("initial_conversation")}
        else:
            state = {"value": given if given is not None else element.get("initial_value")}
        values[block["block_id"]] = {action: {"type": kind, **state}}
    return values
