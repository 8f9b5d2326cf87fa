"""Slack far away: every Web API call answered seconds late. Slack gives an app 3 s
to acknowledge, so rollbot's acks never wait for a call to Slack: a form is opened,
App Home published and a confirmation updated after the ack, each still done.

`rollbot serve --no-worker` runs as its own process (gunicorn and all) over a real
redis-server and the local Slack Web API, slowed with `FakeSlackApi.slow`. No
Kubernetes: nothing here reaches it before its ack.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.records import RollbackState, requested
from bot.store import RollbackStore, connect
from handlers.ids import ActionId, CallbackId
from testbed.redis_server import RedisServer
from testbed.slack_api import FakeSlackApi
from testbed.slack_user import SlackUser
from tests.conftest import unavailable
from tests.integration.faults.harness import NOWHERE_KUBECONFIG, SECRET, Rollbot, wait_until

CHANNEL = "C0SLOW"
NAMESPACE = "slow"
ALICE, BOB, CAROL = "U0ALICE", "U0BOB", "U0CAROL"
#: The approvers' user group: CAROL approves through it.
LEADS = "S0LEADS"
#: How late Slack answers each call.
SLACK_LATENCY_S = 2.0
#: An ack that waited for one call to Slack would take SLACK_LATENCY_S at least.
ACK_WITHIN_S = 1.0


class Bot:
    def __init__(self, serve: Rollbot, store: RollbackStore, slack: FakeSlackApi) -> None:
        self.serve, self.store, self.slack = serve, store, slack

    def person(self, user: str) -> SlackUser:
        return SlackUser(self.serve.events_url, user, CHANNEL, SECRET, slack=self.slack)

    def awaiting_approval(self, name: str) -> str:
        saved = self.store.create(
            requested(NAMESPACE, name, ALICE, channel=CHANNEL, ttl=timedelta(minutes=30))
        )
        waiting = saved.model_copy(
            update={"state": RollbackState.AWAITING_APPROVAL, "thread_ts": "1700000000.000100"}
        )
        self.store.update(saved.id, lambda _: waiting)
        return saved.id


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    kubeconfig: Path = tmp_path_factory.mktemp("slow") / "kubeconfig"
    kubeconfig.write_text(NOWHERE_KUBECONFIG)
    try:
        server = RedisServer().start()
    except (RuntimeError, OSError) as err:
        unavailable(f"redis-server could not start: {err}")
    config = {
        "default_namespace": NAMESPACE,
        "namespaces": [NAMESPACE],
        "requesters": [ALICE, BOB],
        "approvers": [BOB, LEADS],
        "follow_up_minutes": [],
    }
    with FakeSlackApi() as slack:
        slack.add_usergroup(LEADS, [CAROL])
        serve = Rollbot(kubeconfig, server.url, slack.base_url, config)
        try:
            serve.start_serve()
            slack.slow(SLACK_LATENCY_S)
            yield Bot(serve, RollbackStore(connect(server.url)), slack)
        finally:
            serve.stop()
            server.stop()


def timed(send: Callable[..., httpx.Response], *args: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    answer = send(*args)
    return answer, time.monotonic() - started


def assert_acked_promptly(answer: httpx.Response, elapsed: float) -> None:
    assert answer.status_code == 200, (answer.status_code, answer.text[:300])
    assert elapsed < ACK_WITHIN_S, f"acked after {elapsed:.2f}s: it waited for Slack"


def test_the_form_opens_after_the_ack_from_the_command_and_the_shortcut(bot: Bot) -> None:
    alice = bot.person(ALICE)
    opened = len(bot.slack.calls("views.open"))
    assert_acked_promptly(*timed(alice.command, ""))
    assert_acked_promptly(*timed(alice.shortcut, CallbackId.SHORTCUT))
    wait_until(
        "both forms opened",
        lambda: sum(c.error is None for c in bot.slack.calls("views.open")[opened:]) == 2,
        timeout=20,
    )


def test_app_home_is_published_after_the_ack(bot: Bot) -> None:
    published = len(bot.slack.calls("views.publish"))
    assert_acked_promptly(*timed(bot.person(BOB).open_home))
    wait_until(
        "App Home published",
        lambda: any(c.error is None for c in bot.slack.calls("views.publish")[published:]),
        timeout=20,
    )


def test_an_approval_and_a_cancellation_are_acked_and_done(bot: Bot) -> None:
    approved, cancelled = bot.awaiting_approval("web"), bot.awaiting_approval("api")
    updated = len(bot.slack.calls("chat.update"))
    bob = bot.person(BOB)
    for action, record_id in ((ActionId.APPROVE, approved), (ActionId.CANCEL, cancelled)):
        assert_acked_promptly(*timed(bob.click, action, record_id, "1700000000.000100"))
    assert bot.store.get(approved).state is RollbackState.APPROVED
    assert bot.store.get(cancelled).state is RollbackState.CANCELLED
    wait_until(
        "the cancelled confirmation updated",
        lambda: len(bot.slack.calls("chat.update")) > updated,
        timeout=20,
    )


@pytest.mark.parametrize("text", ["help", "web", "status", "history web", "stats web"])
def test_commands_are_answered_without_waiting_for_slack(bot: Bot, text: str) -> None:
    answer, elapsed = timed(bot.person(ALICE).command, text)
    assert_acked_promptly(answer, elapsed)
    assert answer.text.strip()


def test_a_group_approvers_click_finds_the_group_read_ahead(bot: Bot) -> None:
    """The group is read when the HTTP process starts, and kept fresh: a click, even
    the first, does not wait for usergroups.users.list."""
    wait_until(
        "the group read by the HTTP process",
        lambda: bot.slack.calls("usergroups.users.list"),
        timeout=20,
    )
    time.sleep(0.3)  # the local Slack records a call as it answers: then it is cached
    record_id = bot.awaiting_approval("shop")
    carol = bot.person(CAROL)
    assert_acked_promptly(*timed(carol.click, ActionId.APPROVE, record_id, "1700000000.000100"))
    assert bot.store.get(record_id).state is RollbackState.APPROVED
