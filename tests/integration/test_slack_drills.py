"""A rollback drill as a team runs one: `/rollback drill SERVICE` in Slack, the
whole flow in the drill channel marked DRILL, back one revision and forward
again on the real control plane, a drill report, and no word to the incidents
channel."""

from __future__ import annotations

import pytest

from bot.config import Drill, Environment, RollbotConfig, ServiceEntry
from bot.records import RollbackState
from handlers.ids import ActionId
from tests.integration.slack_helpers import (
    ALICE,
    BOB,
    SlackUser,
    confirmation,
    final,
    wait_for,
)

pytestmark = pytest.mark.cluster
DRILLS, INCIDENTS = "C0DRILLS", "C0INCIDENTS"


def test_a_drill_goes_back_one_revision_and_forward_again(make_bot, slack, workloads):
    workloads.create("web", ["app:v1", "app:v2"], replicas=1)
    namespace = workloads.namespace
    bot = make_bot(
        RollbotConfig(
            environments={"staging": Environment(namespaces=[namespace], drills=True)},
            services={"web": ServiceEntry(namespace=namespace, drill=Drill(channel=DRILLS))},
            incidents_channel=INCIDENTS,
        )
    )
    answer = SlackUser(bot.url, ALICE).command("drill web").json()["text"]
    assert answer.startswith("Drill `rb-") and f"<#{DRILLS}>" in answer

    drill_id, root_ts = confirmation(slack, DRILLS)
    root = slack.messages(DRILLS)[0]
    assert root.text.startswith("DRILL · Roll back web")
    SlackUser(bot.url, BOB).click(ActionId.APPROVE, drill_id, root_ts)
    drill = final(bot.store, drill_id)
    assert drill.state is RollbackState.SUCCEEDED, drill.timeline

    forward = wait_for(
        "the forward step",
        lambda: next((r for r in bot.store.recent(10) if r.drill_of == drill_id), None),
    )
    forward = final(bot.store, forward.id)
    assert forward.state is RollbackState.SUCCEEDED, forward.timeline
    assert workloads.images_of("web") == ["app:v2"]  # where the drill started

    report = wait_for(
        "the drill report",
        lambda: [f for f in slack.files() if f.filename == f"{drill_id}-drill-report.md"],
    )[0]
    text = report.content.decode()
    assert text.startswith(f"# Rollback drill {drill_id}: passed")
    assert report.channel == DRILLS
    # The communication simulation stays in the drill channel.
    assert slack.messages(INCIDENTS) == []
    said = [m.text for m in slack.messages(DRILLS)]
    assert all(t.startswith("DRILL") for t in said if t.startswith(("Rollback ", "DRILL"))), said
    assert all("DRILL" in m.text for m in slack.messages(DRILLS) if m.thread_ts is None), said


def test_a_drill_is_refused_where_drills_may_not_run(make_bot, slack, workloads):
    bot = make_bot(RollbotConfig(services={"web": ServiceEntry(namespace=workloads.namespace)}))
    text = SlackUser(bot.url, ALICE).command("drill web").json()["text"]
    assert "has no drill" in text
    assert bot.store.recent(5) == []
