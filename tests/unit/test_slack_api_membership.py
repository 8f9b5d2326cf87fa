"""The local Slack refuses what real Slack refuses where the bot is not welcome:
channels it was not invited to, archived or deleted ones, a deleted thread; and a
command's response_url reaches the person regardless. Driven through a real
slack_sdk WebClient, as the bot's own calls are."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from testbed.slack_api import MANIFEST_SCOPES, FakeSlackApi

PUBLIC, PRIVATE, DM = "C0PUBLIC01", "G0PRIVATE1", "D0ALICEBOB"


@pytest.fixture
def slack() -> Iterator[FakeSlackApi]:
    with FakeSlackApi() as server:
        yield server


@pytest.fixture
def client(slack: FakeSlackApi) -> WebClient:
    return WebClient(token="xoxb-test", base_url=slack.base_url)


def error_of(call: Callable[[], Any]) -> str:
    with pytest.raises(SlackApiError) as raised:
        call()
    return str(raised.value.response["error"])


def test_the_local_slack_grants_the_scopes_the_manifest_asks_for() -> None:
    manifest = yaml.safe_load((Path(__file__).parents[2] / "slack-app-manifest.yaml").read_text())
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == MANIFEST_SCOPES


def test_a_channel_no_test_declared_is_one_the_bot_has_joined(client: WebClient) -> None:
    assert client.chat_postMessage(channel="C0ANYWHERE", text="hi")["ok"]
    assert client.conversations_info(channel="C0ANYWHERE")["channel"]["is_member"]


def test_a_public_channel_the_bot_is_not_in_takes_no_post_without_chat_write_public(
    slack: FakeSlackApi, client: WebClient
) -> None:
    slack.add_channel(PUBLIC, "ops", member=False)
    assert client.chat_postMessage(channel=PUBLIC, text="with chat:write.public")["ok"]
    slack.scopes.discard("chat:write.public")
    assert error_of(lambda: client.chat_postMessage(channel=PUBLIC, text="x")) == "not_in_channel"


def test_files_and_ephemeral_messages_need_membership_even_in_a_public_channel(
    slack: FakeSlackApi, client: WebClient
) -> None:
    slack.add_channel(PUBLIC, "ops", member=False)
    upload = lambda: client.files_upload_v2(channel=PUBLIC, content="x", filename="a.md")  # noqa: E731
    assert error_of(upload) == "not_in_channel"
    ephemeral = lambda: client.chat_postEphemeral(channel=PUBLIC, user="U0A", text="x")  # noqa: E731
    assert error_of(ephemeral) == "not_in_channel"


def test_private_channels_and_dms_the_bot_is_not_in_are_channel_not_found(
    slack: FakeSlackApi, client: WebClient
) -> None:
    slack.add_channel(PRIVATE, "secret-ops", is_private=True, member=False)
    slack.add_channel(DM, "", member=False)
    for channel in (PRIVATE, DM):
        post = lambda c=channel: client.chat_postMessage(channel=c, text="x")  # noqa: E731
        assert error_of(post) == "channel_not_found"
        assert error_of(lambda c=channel: client.conversations_info(channel=c)) == (
            "channel_not_found"
        )


def test_conversations_join_opens_a_public_channel_but_not_a_private_one(
    slack: FakeSlackApi, client: WebClient
) -> None:
    slack.add_channel(PUBLIC, "ops", member=False)
    slack.add_channel(PRIVATE, "secret-ops", is_private=True)
    slack.scopes.discard("chat:write.public")
    slack.scopes.add("channels:join")
    assert client.conversations_join(channel=PUBLIC)["channel"]["is_member"]
    assert slack.is_member(PUBLIC)
    assert client.chat_postMessage(channel=PUBLIC, text="joined")["ok"]
    join_private = lambda: client.conversations_join(channel=PRIVATE)  # noqa: E731
    assert error_of(join_private) == "method_not_supported_for_channel_type"


def test_joining_needs_the_channels_join_scope(slack: FakeSlackApi, client: WebClient) -> None:
    slack.add_channel(PUBLIC, "ops", member=False)
    assert "channels:join" not in slack.scopes
    assert error_of(lambda: client.conversations_join(channel=PUBLIC)) == "missing_scope"
    assert not slack.is_member(PUBLIC)


def test_an_archived_channel_refuses_posts_edits_and_joins(
    slack: FakeSlackApi, client: WebClient
) -> None:
    ts = client.chat_postMessage(channel=PUBLIC, text="before")["ts"]
    slack.scopes.add("channels:join")
    slack.archive_channel(PUBLIC)
    assert error_of(lambda: client.chat_postMessage(channel=PUBLIC, text="x")) == "is_archived"
    assert error_of(lambda: client.chat_update(channel=PUBLIC, ts=ts, text="x")) == "is_archived"
    assert error_of(lambda: client.conversations_join(channel=PUBLIC)) == "is_archived"
    assert client.conversations_info(channel=PUBLIC)["channel"]["is_archived"]


def test_a_deleted_channel_is_channel_not_found(slack: FakeSlackApi, client: WebClient) -> None:
    slack.delete_channel("C0GONE0001")
    post = lambda: client.chat_postMessage(channel="C0GONE0001", text="x")  # noqa: E731
    assert error_of(post) == "channel_not_found"


def test_a_reply_to_or_an_edit_of_a_deleted_message_is_message_not_found(
    client: WebClient,
) -> None:
    root = client.chat_postMessage(channel=PUBLIC, text="confirm?")["ts"]
    client.chat_delete(channel=PUBLIC, ts=root)
    reply = lambda: client.chat_postMessage(channel=PUBLIC, thread_ts=root, text="x")  # noqa: E731
    assert error_of(reply) == "message_not_found"
    assert error_of(lambda: client.chat_update(channel=PUBLIC, ts=root, text="x")) == (
        "message_not_found"
    )


def test_a_message_to_a_user_id_lands_in_the_apps_dm_with_them(
    slack: FakeSlackApi, client: WebClient
) -> None:
    answer = client.chat_postMessage(channel="W0ENTERPRISE", text="hello")
    assert answer["channel"].startswith("D")
    assert [m.text for m in slack.messages(answer["channel"])] == ["hello"]


def test_a_response_url_reaches_the_person_in_a_channel_the_bot_is_not_in(
    slack: FakeSlackApi,
) -> None:
    slack.add_channel(PRIVATE, "secret-ops", is_private=True, member=False)
    url = slack.response_url(PRIVATE, "U0ALICE")
    assert httpx.post(url, json={"text": "invite me"}).status_code == 200
    [message] = slack.messages(PRIVATE)
    assert (message.text, message.ephemeral_user) == ("invite me", "U0ALICE")
    assert slack.calls("response_url")[0].args == {"text": "invite me"}


def test_a_response_url_takes_five_posts_and_expires(slack: FakeSlackApi) -> None:
    url = slack.response_url(PUBLIC, "U0ALICE")
    answers = [httpx.post(url, json={"text": str(n)}).status_code for n in range(6)]
    assert answers == [200] * 5 + [404]
    fresh = slack.response_url(PUBLIC, "U0ALICE")
    slack.expire_response_urls()
    answer = httpx.post(fresh, json={"text": "late"})
    assert (answer.status_code, answer.text) == (404, "expired_url")


def test_a_file_reaches_a_person_through_the_dm_conversations_open_gives(
    slack: FakeSlackApi, client: WebClient
) -> None:
    # As in Slack: files take a conversation id, never a user id…
    to_user = lambda: client.files_upload_v2(channel="U0ALICE", content="x", filename="a.png")  # noqa: E731
    assert error_of(to_user) == "invalid_arguments"
    # …which conversations.open gives, for the DM chat.postMessage(channel=user) lands in.
    dm = client.conversations_open(users="U0ALICE")["channel"]["id"]
    assert dm == client.chat_postMessage(channel="U0ALICE", text="hi")["channel"]
    client.files_upload_v2(channel=dm, content="chart", filename="a.png")
    [shared] = slack.files()
    assert (shared.channel, shared.content) == (dm, b"chart")


def test_opening_a_dm_needs_im_write_and_a_person(slack: FakeSlackApi, client: WebClient) -> None:
    assert error_of(lambda: client.conversations_open(users="U0ROLLBOT1")) == "cannot_dm_bot"
    assert error_of(lambda: client.conversations_open(users="nobody")) == "user_not_found"
    slack.scopes.discard("im:write")
    with pytest.raises(SlackApiError) as refused:
        client.conversations_open(users="U0ALICE")
    assert (refused.value.response["error"], refused.value.response["needed"]) == (
        "missing_scope",
        "im:write",
    )
