"""The Slack app manifest declares what the listeners answer: the shortcut by its
callback id, the Home tab and its event, and a URL for every kind of request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from handlers.ids import CallbackId

MANIFEST = Path(__file__).parents[2] / "slack-app-manifest.yaml"


def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(MANIFEST.read_text())
    return loaded


def test_the_shortcut_the_manifest_declares_is_the_one_rollbot_listens_for():
    [shortcut] = manifest()["features"]["shortcuts"]
    assert (shortcut["type"], shortcut["callback_id"]) == ("global", CallbackId.SHORTCUT)
    assert len(shortcut["name"]) <= 24


def test_the_home_tab_is_on_and_its_event_subscribed():
    app = manifest()
    assert app["features"]["app_home"]["home_tab_enabled"] is True
    assert app["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened"]


def test_every_request_url_is_the_one_bolt_answers():
    app = manifest()
    settings, interactivity = app["settings"], app["settings"]["interactivity"]
    urls = [
        app["features"]["slash_commands"][0]["url"],
        settings["event_subscriptions"]["request_url"],
        interactivity["request_url"],
        interactivity["message_menu_options_url"],
    ]
    assert all(url.endswith("/slack/events") for url in urls)


def test_the_messages_tab_shows_rollbots_direct_messages_and_takes_none():
    """rollbot falls back to a direct message where it cannot answer in the channel:
    Slack shows those in the app's Messages tab, which must be on; nobody is meant
    to type there (rollbot listens to no message event)."""
    app = manifest()
    home = app["features"]["app_home"]
    assert home["messages_tab_enabled"] is True
    assert home["messages_tab_read_only_enabled"] is True
    assert "message.im" not in app["settings"]["event_subscriptions"]["bot_events"]
