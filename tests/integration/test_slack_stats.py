"""`/rollback stats` as people use it: after a real rollback through Slack, the
figures answer the asker alone and the trend arrives as a chart in the asker's
direct message with rollbot, wherever the command was typed; a chart Slack does
not take is said to the asker; someone who may not request rollbacks there is
shown nothing of them."""

from __future__ import annotations

import pytest

from bot.config import Environment, RollbotConfig
from bot.records import RollbackState
from handlers.ids import ActionId
from testbed.slack_api import FakeSlackApi
from testbed.slack_user import SlackUser as Person
from tests.integration.slack_helpers import (
    ALICE,
    BOB,
    CHANNEL,
    MALLORY,
    SECRET,
    SlackUser,
    confirmation,
    final,
    wait_for,
)

pytestmark = pytest.mark.cluster

#: A direct message between two people: rollbot is not in it and cannot see it.
PEOPLES_DM = "D0ALICEBOB"


def rolled_back_once(make_bot, slack: FakeSlackApi, workloads):  # type: ignore[no-untyped-def]
    """A bot where Alice and Bob may request in staging, after one rollback there."""
    workloads.create("web", ["app:v1", "app:v2"], replicas=1)
    config = RollbotConfig(
        environments={
            "staging": Environment(namespaces=[workloads.namespace], requesters=[ALICE, BOB])
        }
    )
    bot = make_bot(config)
    SlackUser(bot.url, ALICE).command(f"web -n {workloads.namespace} --reason drill")
    record_id, root_ts = confirmation(slack)
    SlackUser(bot.url, BOB).click(ActionId.APPROVE, record_id, root_ts)
    assert final(bot.store, record_id).state is RollbackState.SUCCEEDED
    return bot


def charts(slack: FakeSlackApi) -> list:  # type: ignore[type-arg]
    return [f for f in slack.files() if f.filename == "rollback-stats.png"]


def test_stats_after_a_rollback_show_it_and_send_the_chart_to_the_asker_alone(
    make_bot, slack, workloads
):
    bot = rolled_back_once(make_bot, slack, workloads)

    answer = SlackUser(bot.url, ALICE).command("stats web --since 7d")
    assert answer.status_code == 200
    body = answer.json()
    assert body["response_type"] == "ephemeral"
    text = body["text"]
    assert text.startswith("*1 rollback from ") and "100% succeeded" in text
    row = next(line for line in text.splitlines() if line.startswith("web "))
    assert row.split()[:4] == ["web", "staging", "1", "100%"]
    assert "chart in your direct messages with rollbot" in text
    [chart] = wait_for("the chart", lambda: charts(slack))
    assert chart.content.startswith(b"\x89PNG\r\n\x1a\n")
    # The figures were Alice's alone; so is their picture: in her DM, not the channel.
    assert chart.channel == f"D{ALICE}" and "7d" in (chart.initial_comment or "")

    # Typed in a DM between people, where rollbot cannot post: the chart still reaches her.
    slack.add_channel(PEOPLES_DM, "", member=False)
    elsewhere = Person(bot.url, ALICE, PEOPLES_DM, SECRET).command("stats")
    assert "100% succeeded" in elsewhere.json()["text"]
    wait_for("the second chart", lambda: len(charts(slack)) == 2)
    assert [f.channel for f in charts(slack)] == [f"D{ALICE}", f"D{ALICE}"]

    # Mallory may not request rollbacks in staging: its rollbacks are not hers to count.
    hidden = SlackUser(bot.url, MALLORY).command("stats").json()["text"]
    assert hidden.startswith("No rollbacks from ") and "chart" not in hidden


def test_a_chart_slack_refuses_is_said_to_the_asker(make_bot, slack, workloads):
    bot = rolled_back_once(make_bot, slack, workloads)
    # Installed from a manifest older than im:write: rollbot may not open her DM.
    slack.scopes.discard("im:write")
    url = slack.response_url(CHANNEL, ALICE)

    answer = SlackUser(bot.url, ALICE).command("stats", response_url=url)
    assert "100% succeeded" in answer.json()["text"]
    told = wait_for(
        "the reason, through the response_url",
        lambda: [m for m in slack.messages(CHANNEL) if "chart could not be sent" in m.text],
    )
    assert [m.ephemeral_user for m in told] == [ALICE]
    assert "lacks the im:write permission" in told[0].text
    assert "reinstall it from slack-app-manifest.yaml" in told[0].text
    assert not charts(slack)


def test_a_bad_window_is_refused_with_the_forms_allowed(make_bot, slack):
    bot = make_bot(RollbotConfig())
    text = SlackUser(bot.url, ALICE).command("stats --since forever").json()["text"]
    assert "--since takes a number and h, d or w" in text
    assert not slack.files()
