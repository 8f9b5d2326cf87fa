"""The thread sink against the local Slack Web API: coalesced progress edits."""

from __future__ import annotations

from bot.records import requested
from bot.rollout import RolloutPhase, RolloutState
from handlers.app import slack_client
from handlers.blocks import confirmation_blocks
from handlers.thread import SlackThreadSink
from testbed.slack_api import FakeSlackApi


def state(phase: RolloutPhase, available: int) -> RolloutState:
    return RolloutState(phase, f"{phase} {available}", 10, 10, 10, available, available, 1, 1)


def test_fast_progress_is_coalesced_into_few_edits_but_the_final_state_always_shows():
    with FakeSlackApi() as slack:
        sink = SlackThreadSink(slack_client("xoxb-test", slack.base_url), min_interval=60)
        record = requested("prod", "web", "U1", channel="C0PROD")
        record = record.model_copy(update={"thread_ts": sink.confirmation(record)})
        for available in range(10):
            sink.rollout(record, state(RolloutPhase.WAITING_AVAILABLE, available))
        sink.rollout(record, state(RolloutPhase.COMPLETE, 10))
        assert len(slack.calls("chat.update")) == 1, "only the final state was edited in"
        [status] = slack.thread("C0PROD", record.thread_ts or "")[1:]
        assert status.text.endswith("complete 10 (10/10 available)")


def test_a_confirmation_with_many_changes_stays_within_slacks_limits():
    with FakeSlackApi() as slack:
        sink = SlackThreadSink(slack_client("xoxb-test", slack.base_url))
        record = requested("prod", "web", "U1", channel="C0PROD").model_copy(
            update={
                "changes": tuple(f"container c{i}: image: a:{i} → b:{i}" * 20 for i in range(200)),
                "assessment": tuple("x" * 500 for _ in range(50)),
            }
        )
        assert len(confirmation_blocks(record)) < 50
        assert sink.confirmation(record)  # the server would reject over-long sections
