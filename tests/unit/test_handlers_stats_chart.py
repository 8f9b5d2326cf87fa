"""The `/rollback stats` chart, against the local Slack: it goes to the asker's
direct message with rollbot, and when Slack does not take it the asker is told
why through the command's response_url — never only a line in the log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from bot.commands import parse_command
from bot.stats import compute
from handlers.app import slack_client
from handlers.authorization import Caller
from handlers.commands.stats import CHART_FILE, send_chart
from testbed.slack_api import FakeSlackApi
from tests.unit.test_stats import T0, environments, record

ALICE, CHANNEL = "U0ALICE", "C0OPS"
STATS = compute([record()], environments, since=T0 - timedelta(days=1), until=T0 + timedelta(1))


@pytest.fixture
def slack() -> Iterator[FakeSlackApi]:
    with FakeSlackApi() as api:
        yield api


def chart_for(slack: FakeSlackApi, *, response_url: str = "") -> None:
    caller: Any = Caller(services=None, user=ALICE, channel=CHANNEL)  # the chart needs none
    command = parse_command("stats web --since 7d", "prod")
    send_chart(slack_client("xoxb-test", slack.base_url), caller, STATS, command, response_url)


def told(slack: FakeSlackApi) -> list[str]:
    return [m.text for m in slack.messages(CHANNEL) if m.ephemeral_user == ALICE]


def test_the_chart_goes_to_the_askers_direct_message(slack):
    chart_for(slack, response_url=slack.response_url(CHANNEL, ALICE))
    [chart] = slack.files()
    assert (chart.filename, chart.channel) == (CHART_FILE, f"D{ALICE}")
    assert chart.content.startswith(b"\x89PNG") and told(slack) == []


def test_a_missing_scope_is_said_with_what_to_do(slack):
    slack.scopes.discard("im:write")
    chart_for(slack, response_url=slack.response_url(CHANNEL, ALICE))
    [line] = told(slack)
    assert line == (
        ":warning: The chart could not be sent to your direct messages with rollbot: "
        "rollbot's Slack app lacks the im:write permission; reinstall it from "
        "slack-app-manifest.yaml."
    )
    assert not slack.files()


def test_slack_down_past_the_retries_says_to_ask_again(slack):
    slack.outage(500, ["files.completeUploadExternal"])
    chart_for(slack, response_url=slack.response_url(CHANNEL, ALICE))
    [line] = told(slack)
    assert line.endswith("Slack did not take it; ask again in a minute.")
