"""The same product over Socket Mode: no public HTTP endpoint, Slack pushes envelopes down a
WebSocket the app opened and the app acks them there.

Slack's side is played by a local WebSocket server (which also answers
apps.connections.open); the Web API the bot calls is the local FakeSlackApi.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient

from bot.config import RollbotConfig
from bot.records import RollbackState
from bot.store import RollbackStore
from handlers.ids import ActionId
from handlers.server import RollbotServer
from testbed.slack_api import FakeSlackApi
from testbed.slack_user import block_actions_payload
from testbed.socket_mode_server import FakeSocketModeServer
from tests.integration.slack_helpers import (
    ALICE,
    BOB,
    CHANNEL,
    confirmation,
    final,
    wait_for,
)

pytestmark = pytest.mark.cluster
APP_TOKEN = "xapp-1-A0ROLLBOT1-1-test"


@pytest.fixture
def slack() -> Iterator[FakeSlackApi]:
    with FakeSlackApi() as api:
        yield api


@pytest.fixture
def socket_mode(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSocketModeServer]:
    # slack_sdk's builtin Socket Mode client takes HTTPS_PROXY/HTTP_PROXY from the
    # environment and ignores NO_PROXY: it would tunnel even 127.0.0.1 through a proxy.
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    with FakeSocketModeServer() as server:
        yield server


def slash_command(user: str, text: str) -> dict[str, Any]:
    return {
        "token": "unused-verification-token",
        "team_id": "T0TEAM",
        "team_domain": "testbed",
        "channel_id": CHANNEL,
        "channel_name": "incident",
        "user_id": user,
        "user_name": user,
        "command": "/rollback",
        "text": text,
        "api_app_id": "A0ROLLBOT1",
        "is_enterprise_install": "false",
        "response_url": "http://127.0.0.1:9/unused",
        "trigger_id": "1.2.3",
    }


def click(user: str, action: ActionId, record_id: str, message_ts: str) -> dict[str, Any]:
    return block_actions_payload(user, CHANNEL, action, record_id, message_ts)


def test_a_rollback_requested_and_approved_over_socket_mode(
    slack, socket_mode, redis_client, kube, workloads
):
    workloads.create("web", ["app:v1", "app:v2"])
    bot = RollbotServer(
        RollbotConfig(),
        RollbackStore(redis_client),
        kube,
        token="xoxb-test",
        signing_secret="unused-in-socket-mode",
        slack_api_url=slack.base_url,
        http_events=False,
    )
    bot.start_http(port=0)  # probes and metrics only: Socket Mode is the only way in
    bot.start_workers()  # after the fork, as `rollbot serve` does
    handler = SocketModeHandler(
        bot.app, app_token=APP_TOKEN, web_client=WebClient(base_url=socket_mode.base_url)
    )
    try:
        handler.connect()
        socket_mode.wait_connected()
        assert socket_mode.app_tokens() == [APP_TOKEN]

        command = socket_mode.slash_command(slash_command(ALICE, f"web -n {workloads.namespace}"))
        ack = socket_mode.wait_for_ack(command)
        assert ack["payload"]["response_type"] == "ephemeral"
        assert ack["payload"]["text"].startswith(f"Assessing {workloads.namespace}/web")

        record_id, root_ts = confirmation(slack)
        assert f"`{record_id}`" in ack["payload"]["text"]
        assert bot.store.get(record_id).state is RollbackState.AWAITING_APPROVAL

        approve = socket_mode.interactive(click(BOB, ActionId.APPROVE, record_id, root_ts))
        assert socket_mode.wait_for_ack(approve) == {"envelope_id": approve}

        record = final(bot.store, record_id, timeout=60)
        assert record.state is RollbackState.SUCCEEDED, record.timeline
        assert record.requested_by == ALICE and record.approved_by == BOB
        assert workloads.images_of("web") == ["app:v1"]
        wait_for(
            "the outcome in the thread",
            lambda: any(
                m.text.startswith(f"Rollback {record_id} succeeded")
                for m in slack.thread(CHANNEL, root_ts)
            ),
            timeout=10,
        )

        # One ack per envelope, and nothing else sent up the socket.
        assert [a["envelope_id"] for a in socket_mode.acks()] == [command, approve]
        assert socket_mode.other_messages() == []
        assert socket_mode.connection_count() == 1, "no reconnects"

        # The HTTP port answers the probes and /metrics, and takes no Slack events.
        base = bot.url.removesuffix("/slack/events")
        assert httpx.get(f"{base}/healthz").status_code == 200
        assert httpx.get(f"{base}/readyz").status_code == 200
        assert "rollbot_store_up 1" in httpx.get(f"{base}/metrics").text
        signed_or_not = httpx.post(bot.url, content=b"command=%2Frollback&text=web")
        assert signed_or_not.status_code == 404
    finally:
        handler.close()
        bot.stop()
    socket_mode.wait_disconnected()


def test_http_cannot_be_forked_after_the_workers_started(slack, redis_client, kube):
    """A fork copies the locks the workers' threads hold at that instant; /readyz in
    the child could then wait on one for good. Refused, so the mistake is loud."""
    bot = RollbotServer(
        RollbotConfig(),
        RollbackStore(redis_client),
        kube,
        token="xoxb-test",
        signing_secret="unused",
        slack_api_url=slack.base_url,
        http_events=False,
    )
    bot.start_workers()
    try:
        with pytest.raises(RuntimeError, match="start HTTP before the workers"):
            bot.start_http(port=0)
        assert bot.master is None, "nothing forked"
    finally:
        bot.stop()


def test_socket_mode_reads_the_user_groups_ahead_of_the_clicks(slack, redis_client, kube):
    """Its acks go down the WebSocket when a listener returns: a click by a group's
    approver finds the group read already, as in an HTTP process."""
    slack.add_usergroup("S0LEADS", [BOB])
    bot = RollbotServer(
        RollbotConfig(approvers=["S0LEADS"]),
        RollbackStore(redis_client),
        kube,
        token="xoxb-test",
        signing_secret="unused",
        slack_api_url=slack.base_url,
        http_events=False,
    )
    try:
        bot.read_groups_ahead()
        (reader,) = bot.threads
        wait_for("the group read", lambda: slack.calls("usergroups.users.list"))
        assert bot.groups(BOB, frozenset({"S0LEADS"})) == {"S0LEADS"}
        assert len(slack.calls("usergroups.users.list")) == 1, "the click asked nobody"
        with pytest.raises(RuntimeError, match="start HTTP before the workers"):
            bot.start_http(port=0)  # a thread of ours exists: no fork
    finally:
        bot.stop()
    assert not reader.is_alive(), "stopped with rollbot"
