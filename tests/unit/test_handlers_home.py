"""App Home's view (pure): what is running, with links to its thread, the last
outcomes, the held workloads and the held reconciliations."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.records import RollbackRecord, RollbackState, requested
from handlers.app import slack_client
from handlers.home import OUTCOMES_SHOWN, home_view
from handlers.ids import BlockId
from testbed.slack_api import FakeSlackApi

S = RollbackState
NOW = datetime.now(UTC)


@pytest.fixture
def slack() -> Iterator[FakeSlackApi]:
    with FakeSlackApi() as api:
        yield api


@pytest.fixture
def client(slack: FakeSlackApi) -> WebClient:
    return slack_client("xoxb-test", slack.base_url)


def record(workload: str, *states: RollbackState, thread: str | None = None) -> RollbackRecord:
    made = requested("prod", workload, "U0ALICE", channel="C0OPS")
    for state in states:
        made = made.transition(state, state.value)
    return made.model_copy(update={"thread_ts": thread})


def published(slack: FakeSlackApi, client: WebClient, view: Any) -> dict[str, Any]:
    client.views_publish(user_id="U0ALICE", view=view)
    shown = slack.home("U0ALICE")
    assert shown is not None
    return shown


def section(view: dict[str, Any], block_id: str) -> str:
    found = next(b for b in view["blocks"] if b.get("block_id") == block_id)
    return json.dumps(found, ensure_ascii=False)


def test_running_rollbacks_link_to_their_threads_and_outcomes_are_the_last_ten(slack, client):
    running = record("web", S.ASSESSED, S.AWAITING_APPROVAL, thread="1700000000.000100")
    done = [record(f"svc{n}", S.CANCELLED, thread=f"17000000{n:02d}.000200") for n in range(12)]
    view = published(slack, client, home_view([running, *done], {}, NOW))
    shown = section(view, BlockId.HOME_RUNNING)
    assert "<https://slack.com/archives/C0OPS/p1700000000000100|" + running.id + ">" in shown
    assert "awaiting approval" in shown and "<@U0ALICE>" in shown
    outcomes = section(view, BlockId.HOME_OUTCOMES)
    assert outcomes.count("cancelled") == OUTCOMES_SHOWN == 10
    assert "svc9" in outcomes and "svc10" not in outcomes


def test_held_workloads_name_their_holder_a_record_or_a_terminal():
    running = record("web", S.ASSESSED, S.AWAITING_APPROVAL, S.APPROVED, thread="1.000001")
    view = home_view(
        [running], {"prod/web": running.id, "prod/api": "cli:alice:4242"}, NOW
    ).to_dict()
    held = section(view, BlockId.HOME_HELD)
    assert "`prod/web`: by <https://slack.com/archives/C0OPS/p1000001|" in held
    assert "`prod/api`: from a terminal, by alice" in held


def test_an_empty_home_says_so(slack, client):
    view = published(slack, client, home_view([], {}, NOW))
    assert "No rollback is in progress" in section(view, BlockId.HOME_RUNNING)
    assert "No workload is held" in section(view, BlockId.HOME_HELD)
    assert "No service's reconciliation is held" in section(view, BlockId.HOME_RECONCILIATION)


def test_names_from_the_cluster_cannot_mention_or_link_in_the_home_tab():
    hostile = record("x", S.CANCELLED).model_copy(update={"workload": "<!channel> <http://e|x>"})
    shown = json.dumps(home_view([hostile], {}, NOW).to_dict())
    assert "<!channel>" not in shown and "<http://e|x>" not in shown
