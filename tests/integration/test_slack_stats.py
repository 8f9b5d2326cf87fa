"""`/rollback stats` as people use it: after a real rollback through Slack, the
figures answer the asker alone and the trend arrives as a chart in the channel;
someone who may not request rollbacks there is shown nothing of them."""

from __future__ import annotations

import pytest

from bot.config import Environment, RollbotConfig
from bot.records import RollbackState
from handlers.ids import ActionId
from tests.integration.slack_helpers import (
    ALICE,
    BOB,
    CHANNEL,
    MALLORY,
    SlackUser,
    confirmation,
    final,
    wait_for,
)

pytestmark = pytest.mark.cluster


def test_stats_after_a_rollback_show_it_and_post_the_chart(make_bot, slack, workloads):
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

    answer = SlackUser(bot.url, ALICE).command("stats web --since 7d")
    assert answer.status_code == 200
    body = answer.json()
    assert body["response_type"] == "ephemeral"
    text = body["text"]
    assert text.startswith("*1 rollback from ") and "100% succeeded" in text
    row = next(line for line in text.splitlines() if line.startswith("web "))
    assert row.split()[:4] == ["web", "staging", "1", "100%"]
    chart = wait_for(
        "the chart", lambda: [f for f in slack.files() if f.filename == "rollback-stats.png"]
    )[0]
    assert chart.content.startswith(b"\x89PNG\r\n\x1a\n") and chart.channel == CHANNEL

    # Mallory may not request rollbacks in staging: its rollbacks are not hers to count.
    hidden = SlackUser(bot.url, MALLORY).command("stats").json()["text"]
    assert hidden.startswith("No rollbacks from ")


def test_a_bad_window_is_refused_with_the_forms_allowed(make_bot, slack):
    bot = make_bot(RollbotConfig())
    text = SlackUser(bot.url, ALICE).command("stats --since forever").json()["text"]
    assert "--since takes a number and h, d or w" in text
    assert not slack.files()
