"""The local Slack API's views, held to Slack's rules: a trigger is good once and
for three seconds, an update with a stale hash is refused, a view's shape is checked."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from handlers.app import slack_client
from testbed.slack_api import TRIGGER_TTL, FakeSlackApi


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def slack(clock: Clock) -> Iterator[FakeSlackApi]:
    with FakeSlackApi(clock=clock) as api:
        yield api


@pytest.fixture
def client(slack: FakeSlackApi) -> WebClient:
    return slack_client("xoxb-test", slack.base_url)


def error_of(call: Callable[[], Any]) -> str:
    with pytest.raises(SlackApiError) as raised:
        call()
    return str(raised.value.response["error"])


def messages_of(call: Callable[[], Any]) -> list[str]:
    with pytest.raises(SlackApiError) as raised:
        call()
    return list(raised.value.response["response_metadata"]["messages"])


def text(value: str) -> dict[str, str]:
    return {"type": "plain_text", "text": value}


def modal(*blocks: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "modal", "title": text("Roll back"), "blocks": list(blocks), **extra}


def reason_input(**element: Any) -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": "reason",
        "label": text("Reason"),
        "element": {"type": "plain_text_input", "action_id": "reason", **element},
    }


def test_a_trigger_opens_one_view_within_three_seconds(slack, client, clock):
    assert error_of(lambda: client.views_open(trigger_id="made.up", view=modal())) == (
        "invalid_trigger_id"
    )
    trigger = slack.issue_trigger()
    client.views_open(trigger_id=trigger, view=modal())
    assert error_of(lambda: client.views_open(trigger_id=trigger, view=modal())) == (
        "exchanged_trigger_id"
    )
    late = slack.issue_trigger()
    clock.now += TRIGGER_TTL + 0.1
    assert error_of(lambda: client.views_open(trigger_id=late, view=modal())) == (
        "expired_trigger_id"
    )
    assert len(slack.views()) == 1


def test_a_view_of_the_wrong_shape_is_refused_where_it_is_wrong(slack, client):
    def refused(view: dict[str, Any]) -> str:
        return " ".join(
            messages_of(lambda: client.views_open(trigger_id=slack.issue_trigger(), view=view))
        )

    assert "/view/submit" in refused(modal(reason_input())), "inputs need a submit button"
    assert "/view/private_metadata" in refused(modal(private_metadata="x" * 3001))
    assert "/view/callback_id" in refused(modal(callback_id="x" * 256))
    assert "/view/blocks" in refused(modal(*[{"type": "divider"}] * 101))
    assert "/view/blocks/0/label" in refused(
        modal({**reason_input(), "label": text("x" * 2001)}, submit=text("Go"))
    )
    select = {
        "type": "input",
        "block_id": "target",
        "label": text("Target"),
        "element": {
            "type": "static_select",
            "action_id": "target",
            "options": [{"text": text("41"), "value": "41"}],
            "initial_option": {"text": text("40"), "value": "40"},
        },
    }
    assert "/view/blocks/0/element/initial_option" in refused(modal(select, submit=text("Go")))
    assert "/view/type" in refused({**modal(), "type": "home"})


def test_an_update_replaces_the_view_unless_its_hash_is_stale(slack, client):
    opened = client.views_open(trigger_id=slack.issue_trigger(), view=modal())["view"]
    updated = client.views_update(
        view_id=opened["id"], hash=opened["hash"], view=modal(title=text("Roll back web"))
    )["view"]
    assert updated["id"] == opened["id"] and updated["hash"] != opened["hash"]
    assert slack.view(opened["id"])["title"]["text"] == "Roll back web"
    stale = lambda: client.views_update(view_id=opened["id"], hash=opened["hash"], view=modal())  # noqa: E731
    assert error_of(stale) == "hash_conflict"
    assert error_of(lambda: client.views_update(view_id="V0NONE", view=modal())) == "not_found"


def test_publish_takes_a_home_view_for_a_user_and_keeps_its_id(slack, client):
    home = {"type": "home", "blocks": [{"type": "divider"}]}
    first = client.views_publish(user_id="U0ALICE", view=home)["view"]
    again = client.views_publish(user_id="U0ALICE", view=home)["view"]
    assert first["id"] == again["id"] and slack.home("U0ALICE") == again
    assert slack.home("U0BOB") is None
    assert error_of(lambda: client.views_publish(user_id="U0ALICE", view=modal())) == (
        "invalid_arguments"
    )
    with_input = {**home, "blocks": [reason_input()]}
    assert error_of(lambda: client.views_publish(user_id="U0ALICE", view=with_input)) == (
        "invalid_arguments"
    )
