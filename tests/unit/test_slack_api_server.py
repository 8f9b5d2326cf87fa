"""The fake Slack Web API, driven only through a real slack_sdk WebClient: if the SDK
accepts its answers, the bot's own calls will too."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import RateLimitErrorRetryHandler, builtin_handlers

from testbed.slack_api import BOT_USER_ID, SLACK_LIMITS, FakeSlackApi

CHANNEL = "C0OPS00001"


@pytest.fixture
def slack() -> Iterator[FakeSlackApi]:
    with FakeSlackApi() as server:
        yield server


@pytest.fixture
def client(slack: FakeSlackApi) -> WebClient:
    return WebClient(token="xoxb-test", base_url=slack.base_url)


def slack_error(call: Callable[[], Any]) -> SlackApiError:
    with pytest.raises(SlackApiError) as raised:
        call()
    return raised.value


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def button(text: str = "Approve", action_id: str = "approve") -> dict[str, Any]:
    return {
        "type": "actions",
        "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": text}, "action_id": action_id}
        ],
    }


# -- messages --------------------------------------------------------------------------------


def test_auth_test_names_the_bot_user(client: WebClient) -> None:
    assert client.auth_test()["user_id"] == BOT_USER_ID


def test_posted_messages_get_unique_increasing_ts_and_are_recorded(
    slack: FakeSlackApi, client: WebClient
) -> None:
    first = client.chat_postMessage(channel=CHANNEL, text="one", blocks=[section("*one*")])
    second = client.chat_postMessage(channel=CHANNEL, text="two")

    assert first["ts"] == "1700000000.000100"
    assert float(second["ts"]) > float(first["ts"])
    assert first["channel"] == CHANNEL and first["message"]["text"] == "one"
    [one, two] = slack.messages(CHANNEL)
    assert (one.text, one.blocks, one.ts) == ("one", [section("*one*")], first["ts"])
    assert two.text == "two" and two.thread_ts is None
    [call, _] = slack.calls("chat.postMessage")
    assert call.args == {"channel": CHANNEL, "text": "one", "blocks": [section("*one*")]}


def test_a_channel_name_resolves_to_its_id_once_the_channel_is_named(
    slack: FakeSlackApi, client: WebClient
) -> None:
    slack.add_channel(CHANNEL, "ops")
    assert client.chat_postMessage(channel="#ops", text="hi")["channel"] == CHANNEL
    assert client.conversations_info(channel=CHANNEL)["channel"]["name"] == "ops"
    assert slack_error(lambda: client.chat_postMessage(channel="#nowhere", text="hi")).response[
        "error"
    ] == ("channel_not_found")


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
def test_an_update_replaces_what_it_names_keeps_the_rest_and_is_counted(
    slack: FakeSlackApi, client: WebClient
) -> None:
    ts = client.chat_postMessage(channel=CHANNEL, text="rolling back", blocks=[section("a")])["ts"]
    client.chat_update(channel=CHANNEL, ts=ts, text="rolled back")
    client.chat_update(channel=CHANNEL, ts=ts, blocks=[section("b")])

    [message] = slack.messages()
    assert (message.text, message.blocks, message.updated) == ("rolled back", [section("b")], 2)


def test_updating_a_message_that_does_not_exist_is_message_not_found(client: WebClient) -> None:
    error = slack_error(lambda: client.chat_update(channel=CHANNEL, ts="1.000001", text="x"))
    assert error.response["error"] == "message_not_found"


def test_an_ephemeral_message_is_kept_for_its_user_and_out_of_the_thread(
    slack: FakeSlackApi, client: WebClient
) -> None:
    root = client.chat_postMessage(channel=CHANNEL, text="approve?")["ts"]
    answer = client.chat_postEphemeral(
        channel=CHANNEL, user="U0ALICE001", text="only you", thread_ts=root
    )

    ephemeral = slack.messages()[-1]
    assert (ephemeral.ts, ephemeral.ephemeral_user) == (answer["message_ts"], "U0ALICE001")
    assert [m.ts for m in slack.thread(CHANNEL, root)] == [root]
    error = slack_error(
        lambda: client.chat_update(channel=CHANNEL, ts=answer["message_ts"], text="x")
    )
    assert error.response["error"] == "message_not_found"


def test_a_thread_is_its_root_then_its_live_replies_in_order(
    slack: FakeSlackApi, client: WebClient
) -> None:
    root = client.chat_postMessage(channel=CHANNEL, text="rollback of api")["ts"]
    client.chat_postMessage(channel=CHANNEL, text="elsewhere")
    replies = [
        client.chat_postMessage(channel=CHANNEL, text=f"step {n}", thread_ts=root)["ts"]
        for n in range(3)
    ]
    client.chat_delete(channel=CHANNEL, ts=replies[1])

    thread = slack.thread(CHANNEL, root)
    assert [m.text for m in thread] == ["rollback of api", "step 0", "step 2"]
    assert slack.messages()[3].deleted
    with pytest.raises(KeyError):
        slack.thread(CHANNEL, "1.000001")


def test_a_reaction_is_kept_once_on_its_message(slack: FakeSlackApi, client: WebClient) -> None:
    ts = client.chat_postMessage(channel=CHANNEL, text="done")["ts"]
    client.reactions_add(channel=CHANNEL, timestamp=ts, name="white_check_mark")

    assert slack.messages()[0].reactions == ("white_check_mark",)
    again = slack_error(
        lambda: client.reactions_add(channel=CHANNEL, timestamp=ts, name="white_check_mark")
    )
    assert again.response["error"] == "already_reacted"


def test_users_info_answers_a_registered_profile_with_its_time_zone(
    slack: FakeSlackApi, client: WebClient
) -> None:
    slack.add_user("U0ALICE001", name="alice", real_name="Alice Martin", tz="Europe/Paris")
    user = client.users_info(user="U0ALICE001")["user"]
    assert (user["id"], user["name"], user["real_name"], user["tz"]) == (
        "U0ALICE001",
        "alice",
        "Alice Martin",
        "Europe/Paris",
    )
    assert client.users_info(user="U0BOB00001")["user"]["tz"] == "UTC"
    assert slack_error(lambda: client.users_info(user="nobody")).response["error"] == (
        "user_not_found"
    )


def test_views_open_answers_the_modal_with_an_id_and_refuses_a_long_title(
    slack: FakeSlackApi, client: WebClient
) -> None:
    view = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Roll back api"},
        "blocks": [section("Why?")],
    }
    opened = client.views_open(trigger_id=slack.issue_trigger(), view=view)["view"]
    assert opened["id"].startswith("V") and slack.views()[0]["title"] == view["title"]

    view["title"] = {"type": "plain_text", "text": "x" * 25}
    error = slack_error(lambda: client.views_open(trigger_id=slack.issue_trigger(), view=view))
    assert error.response["error"] == "invalid_arguments"
    assert "/view/title/text" in error.response["response_metadata"]["messages"][0]


# -- files -----------------------------------------------------------------------------------


def test_files_upload_v2_lands_in_the_thread_with_its_bytes(
    slack: FakeSlackApi, client: WebClient
) -> None:
    root = client.chat_postMessage(channel=CHANNEL, text="incident")["ts"]
    response = client.files_upload_v2(
        channel=CHANNEL,
        thread_ts=root,
        content=b"# Incident report\n\xe2\x9c\x85 rolled back\n",
        filename="incident.md",
        title="Incident report",
    )

    [uploaded] = slack.files()
    assert response["file"]["id"] == uploaded.id
    assert uploaded.content == b"# Incident report\n\xe2\x9c\x85 rolled back\n"
    assert (uploaded.filename, uploaded.title) == ("incident.md", "Incident report")
    assert (uploaded.channel, uploaded.thread_ts) == (CHANNEL, root)
    assert [c.method for c in slack.calls()][1:] == [
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]


def test_completing_an_upload_whose_bytes_never_arrived_is_refused(client: WebClient) -> None:
    ticket = client.files_getUploadURLExternal(filename="r.md", length=3)
    error = slack_error(
        lambda: client.files_completeUploadExternal(files=[{"id": ticket["file_id"]}])
    )
    assert error.response["error"] == "file_not_found"


# -- Slack's limits --------------------------------------------------------------------------


def test_a_message_with_50_blocks_is_accepted(client: WebClient) -> None:
    assert client.chat_postMessage(channel=CHANNEL, text="t", blocks=[section("x")] * 50)["ok"]


def test_a_message_with_51_blocks_is_rejected_as_slack_would(
    slack: FakeSlackApi, client: WebClient
) -> None:
    error = slack_error(
        lambda: client.chat_postMessage(channel=CHANNEL, text="t", blocks=[section("x")] * 51)
    )

    assert error.response.status_code == 200
    assert error.response["error"] == "invalid_blocks"
    assert error.response["response_metadata"]["messages"] == [
        "[ERROR] no more than 50 items allowed [json-pointer:/blocks]"
    ]
    assert slack.messages() == []
    assert slack.calls()[0].error == "invalid_blocks"


def test_text_over_40000_characters_is_msg_too_long(client: WebClient) -> None:
    assert client.chat_postMessage(channel=CHANNEL, text="x" * 40_000)["ok"]
    error = slack_error(lambda: client.chat_postMessage(channel=CHANNEL, text="x" * 40_001))
    assert error.response["error"] == "msg_too_long"


@pytest.mark.parametrize(
    ("build", "limit", "pointer"),
    [
        (section, 3000, "/blocks/0/text/text"),
        (
            lambda s: {"type": "header", "text": {"type": "plain_text", "text": s}},
            150,
            "/blocks/0/text/text",
        ),
        (lambda s: button(text=s), 75, "/blocks/0/elements/0/text/text"),
        (lambda s: button(action_id=s), 255, "/blocks/0/elements/0/action_id"),
        (lambda s: {**section("x"), "block_id": s}, 255, "/blocks/0/block_id"),
    ],
    ids=["section text", "header", "button text", "action_id", "block_id"],
)
def test_a_block_field_one_past_its_limit_is_invalid_blocks(
    client: WebClient, build: Callable[[str], dict[str, Any]], limit: int, pointer: str
) -> None:
    assert client.chat_postMessage(channel=CHANNEL, text="t", blocks=[build("x" * limit)])["ok"]

    error = slack_error(
        lambda: client.chat_postMessage(
            channel=CHANNEL, text="t", blocks=[build("x" * (limit + 1))]
        )
    )
    assert error.response["error"] == "invalid_blocks"
    assert error.response["response_metadata"]["messages"] == [
        f"[ERROR] must be less than {limit + 1} characters [json-pointer:{pointer}]"
    ]


def test_a_header_in_mrkdwn_is_invalid_blocks(client: WebClient) -> None:
    header = {"type": "header", "text": {"type": "mrkdwn", "text": "*Rollback*"}}
    error = slack_error(lambda: client.chat_postMessage(channel=CHANNEL, text="t", blocks=[header]))
    assert error.response["error"] == "invalid_blocks"


@pytest.mark.parametrize("blocks", ['{"type": "divider"}', "not json"])
def test_blocks_that_are_not_a_json_list_are_invalid_blocks_in_a_form_body(
    slack: FakeSlackApi, client: WebClient, blocks: str
) -> None:
    call = lambda: client.api_call(  # noqa: E731
        "chat.postMessage", params={"channel": CHANNEL, "blocks": blocks}
    )
    assert slack_error(call).response["error"] == "invalid_blocks"
    assert slack.calls()[0].args == {"channel": CHANNEL, "blocks": blocks}


def test_a_form_body_with_a_json_list_of_blocks_is_accepted(
    slack: FakeSlackApi, client: WebClient
) -> None:
    client.api_call(
        "chat.postMessage", params={"channel": CHANNEL, "blocks": '[{"type": "divider"}]'}
    )
    assert slack.messages()[0].blocks == [{"type": "divider"}]


def test_a_message_without_a_channel_is_channel_not_found(client: WebClient) -> None:
    error = slack_error(lambda: client.api_call("chat.postMessage", json={"text": "hi"}))
    assert error.response["error"] == "channel_not_found"


def test_a_call_without_a_token_is_not_authed(slack: FakeSlackApi) -> None:
    anonymous = WebClient(base_url=slack.base_url)
    error = slack_error(lambda: anonymous.chat_postMessage(channel=CHANNEL, text="hi"))
    assert error.response["error"] == "not_authed"
    assert slack.messages() == []


def test_an_unknown_method_is_unknown_method(client: WebClient) -> None:
    error = slack_error(lambda: client.api_call("chat.scheduleMessage", params={"text": "x"}))
    assert error.response["error"] == "unknown_method"


# -- rate limits and faults ------------------------------------------------------------------


def test_a_429_is_retried_after_retry_after_by_the_sdk_rate_limit_handler(
    slack: FakeSlackApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(builtin_handlers, "time", SimpleNamespace(sleep=slept.append))
    client = WebClient(
        token="xoxb-test",
        base_url=slack.base_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)],
    )
    slack.fail_next("chat.postMessage", status=429, retry_after=3)

    assert client.chat_postMessage(channel=CHANNEL, text="hi")["ok"]
    assert len(slept) == 1 and 3 <= slept[0] < 4
    assert [(c.status, c.error) for c in slack.calls("chat.postMessage")] == [
        (429, "ratelimited"),
        (200, None),
    ]
    assert len(slack.messages()) == 1


def test_without_a_retry_handler_a_429_raises_with_its_retry_after_header(
    slack: FakeSlackApi, client: WebClient
) -> None:
    slack.fail_next("chat.update", retry_after=7)
    error = slack_error(lambda: client.chat_update(channel=CHANNEL, ts="1.000001", text="x"))

    assert error.response.status_code == 429
    assert error.response.headers["Retry-After"] == "7"
    assert error.response["error"] == "ratelimited"


def test_a_500_fault_answers_internal_error_then_the_method_works_again(
    slack: FakeSlackApi, client: WebClient
) -> None:
    slack.fail_next("chat.postMessage", status=500, times=2)
    for _ in range(2):
        error = slack_error(lambda: client.chat_postMessage(channel=CHANNEL, text="hi"))
        assert (error.response.status_code, error.response["error"]) == (500, "internal_error")

    assert client.chat_postMessage(channel=CHANNEL, text="hi")["ok"]
    assert len(slack.messages()) == 1


def test_a_rate_limit_answers_429_when_exceeded_until_time_passes() -> None:
    now = [100.0]
    with FakeSlackApi(clock=lambda: now[0]) as slack:
        client = WebClient(token="xoxb-test", base_url=slack.base_url)
        slack.rate_limit("chat.postMessage", per_second=1)
        client.chat_postMessage(channel=CHANNEL, text="first")

        error = slack_error(lambda: client.chat_postMessage(channel=CHANNEL, text="second"))
        assert (error.response.status_code, error.response.headers["Retry-After"]) == (429, "1")

        now[0] += 1.0
        assert client.chat_postMessage(channel=CHANNEL, text="third")["ok"]
        assert [m.text for m in slack.messages()] == ["first", "third"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def timed(clock: FakeClock) -> Iterator[tuple[FakeSlackApi, WebClient]]:
    """A server on a clock the test moves, and a client with no retry handler."""
    with FakeSlackApi(clock=clock) as server:
        yield server, WebClient(token="xoxb-test", base_url=server.base_url)


def retry_after(call: Callable[[], Any]) -> int:
    error = slack_error(call)
    assert (error.response.status_code, error.response["error"]) == (429, "ratelimited")
    return int(error.response.headers["Retry-After"])


def test_posts_to_one_channel_pass_a_short_burst_then_about_one_a_second(
    clock: FakeClock, timed: tuple[FakeSlackApi, WebClient]
) -> None:
    slack, client = timed
    burst = SLACK_LIMITS["chat.postMessage"].burst
    for n in range(burst):
        client.chat_postMessage(channel=CHANNEL, text=f"burst {n}")

    assert retry_after(lambda: client.chat_postMessage(channel=CHANNEL, text="late")) == 1
    clock.now += 1.0
    client.chat_postMessage(channel=CHANNEL, text="a second later")
    assert retry_after(lambda: client.chat_postMessage(channel=CHANNEL, text="again")) == 1
    assert len(slack.messages()) == burst + 1
    assert [c.status for c in slack.calls("chat.postMessage")].count(429) == 2


def test_a_busy_channel_does_not_hold_up_posts_to_another(
    timed: tuple[FakeSlackApi, WebClient],
) -> None:
    slack, client = timed
    for n in range(SLACK_LIMITS["chat.postMessage"].burst):
        client.chat_postMessage(channel=CHANNEL, text=f"{n}")
    retry_after(lambda: client.chat_postMessage(channel=CHANNEL, text="late"))

    assert client.chat_postMessage(channel="C0OTHER001", text="elsewhere")["ok"]


@pytest.mark.parametrize(
    ("method", "per_minute"),
    [("chat.update", 50), ("users.info", 100), ("usergroups.users.list", 20)],
)
def test_a_tiered_method_takes_its_minute_of_calls_at_once_then_waits_for_its_rate(
    clock: FakeClock, timed: tuple[FakeSlackApi, WebClient], method: str, per_minute: int
) -> None:
    slack, client = timed
    slack.add_usergroup("S0ONCALL01", ["U0ALICE001"])
    ts = client.chat_postMessage(channel=CHANNEL, text="status")["ts"]
    calls = {
        "chat.update": lambda: client.chat_update(channel=CHANNEL, ts=ts, text="edit"),
        "users.info": lambda: client.users_info(user="U0ALICE001"),
        "usergroups.users.list": lambda: client.usergroups_users_list(usergroup="S0ONCALL01"),
    }
    for _ in range(per_minute):
        calls[method]()

    refill = 60 / per_minute  # the seconds one call's budget takes to come back
    assert retry_after(calls[method]) == math.ceil(refill)
    clock.now += refill - 0.01
    retry_after(calls[method])
    clock.now += 0.02
    assert calls[method]()["ok"]
    # Per method: another method's budget is untouched.
    assert client.chat_postEphemeral(channel=CHANNEL, user="U0ALICE001", text="hi")["ok"]


def test_a_limit_counts_only_the_calls_it_let_through(
    clock: FakeClock, timed: tuple[FakeSlackApi, WebClient]
) -> None:
    slack, client = timed
    slack.rate_limit("chat.postMessage", per_second=1)
    client.chat_postMessage(channel=CHANNEL, text="first")
    for _ in range(5):  # a client that hammers through its 429s
        retry_after(lambda: client.chat_postMessage(channel=CHANNEL, text="again"))

    clock.now += 1.0
    assert client.chat_postMessage(channel=CHANNEL, text="second")["ok"]


def test_without_realistic_limits_only_limits_a_test_sets_apply(
    timed: tuple[FakeSlackApi, WebClient],
) -> None:
    slack, client = timed
    slack.realistic_limits(False)
    for n in range(3 * SLACK_LIMITS["chat.postMessage"].burst):
        client.chat_postMessage(channel=CHANNEL, text=f"{n}")
    slack.rate_limit("chat.update", per_second=1)
    ts = slack.messages()[0].ts
    client.chat_update(channel=CHANNEL, ts=ts, text="one")

    assert retry_after(lambda: client.chat_update(channel=CHANNEL, ts=ts, text="two")) == 1


def test_lifting_a_methods_limit_lifts_slacks_own_too(
    timed: tuple[FakeSlackApi, WebClient],
) -> None:
    slack, client = timed
    slack.rate_limit("chat.postMessage", None)
    for n in range(3 * SLACK_LIMITS["chat.postMessage"].burst):
        client.chat_postMessage(channel=CHANNEL, text=f"{n}")

    assert all(c.status == 200 for c in slack.calls("chat.postMessage"))


def test_an_outage_of_some_methods_leaves_the_others_answering(
    slack: FakeSlackApi, client: WebClient
) -> None:
    slack.outage(500, methods=["files.completeUploadExternal"])
    assert client.chat_postMessage(channel=CHANNEL, text="still here")["ok"]
    error = slack_error(
        lambda: client.files_upload_v2(channel=CHANNEL, content="x", filename="x.txt")
    )
    assert (error.response.status_code, error.response["error"]) == (500, "internal_error")
    assert slack.files() == []

    slack.outage(None)
    client.files_upload_v2(channel=CHANNEL, content="x", filename="x.txt")
    assert [f.filename for f in slack.files()] == ["x.txt"]


def test_a_429_outage_answers_retry_after_one_second_to_every_method(
    slack: FakeSlackApi, client: WebClient
) -> None:
    slack.outage(429)
    assert retry_after(lambda: client.auth_test()) == 1
    assert retry_after(lambda: client.chat_postMessage(channel=CHANNEL, text="hi")) == 1
    slack.outage(None)
    assert client.chat_postMessage(channel=CHANNEL, text="hi")["ok"]


def test_faults_and_limits_name_only_methods_the_server_serves(slack: FakeSlackApi) -> None:
    with pytest.raises(ValueError):
        slack.fail_next("chat.postmessage")
    with pytest.raises(ValueError):
        slack.fail_next("chat.postMessage", status=404)
    with pytest.raises(ValueError):
        slack.outage(500, methods=["files.upload"])
    with pytest.raises(ValueError):
        slack.rate_limit("chat.postmessage", per_second=1)


# -- the server itself -----------------------------------------------------------------------


def test_concurrent_posts_are_all_recorded_with_distinct_ts(slack: FakeSlackApi) -> None:
    slack.realistic_limits(False)  # 80 posts at once to one channel: Slack would say 429

    def post(n: int) -> None:
        client = WebClient(token="xoxb-test", base_url=slack.base_url)
        for i in range(10):
            client.chat_postMessage(channel=CHANNEL, text=f"{n}-{i}")

    workers = [threading.Thread(target=post, args=(n,)) for n in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert len(slack.calls("chat.postMessage")) == 80
    assert len({m.ts for m in slack.messages()}) == 80


def test_reset_forgets_calls_messages_files_and_faults(
    slack: FakeSlackApi, client: WebClient
) -> None:
    client.chat_postMessage(channel=CHANNEL, text="hi")
    client.files_upload_v2(channel=CHANNEL, content="x", filename="x.txt")
    slack.fail_next("auth.test", status=503)
    slack.reset()

    assert (slack.calls(), slack.messages(), slack.files()) == ([], [], [])
    assert client.auth_test()["ok"]
    assert client.chat_postMessage(channel=CHANNEL, text="again")["ts"] == "1700000000.000100"
