"""Bad input against the running app: whatever is typed, clicked or forged, rollbot
acks in time with an answer or a refusal, no listener raises, and a refused request
writes nothing.

`rollbot serve --no-worker` runs as its own process (gunicorn and all) over a real
redis-server and the local Slack Web API; hypothesis builds slash-command texts and
block-action payloads and sends them as Slack does, signed (or, for the forgeries,
not). Each example starts from the same Redis contents (records in every state that
matters) and is judged on:

* the HTTP answer: within Slack's 3 s, never a 5xx or a reset; a command's ack has a
  text, and no markup of the sender's (`<!channel>`, `<@U…>`, links) gets into it;
* the server's log: no traceback, no "Failed to run listener function";
* Redis: a refused request (a `:warning:` answer, a 401, a 4xx) leaves every key as it
  was — no record, no job, no lock, no claim. An Approve click's refusal alone notes
  itself on the record it names (for the audit; `handlers/authorization.py`).

CI runs a fixed set of examples (derandomized); `HYPOTHESIS_PROFILE=long` (`make
faults`) runs six times as many, randomly.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from bot.records import RollbackState, requested
from bot.store import JobQueue, RollbackStore, connect
from handlers.ids import ActionId
from handlers.wsgi import MAX_BODY_BYTES
from testbed.redis_server import RedisServer
from testbed.slack_api import FakeSlackApi
from tests.conftest import unavailable
from tests.integration.faults.harness import NOWHERE_KUBECONFIG, SECRET, Rollbot, wait_until

LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
EXAMPLES = settings(
    max_examples=150 if LONG else 25,  # long: within pytest-timeout on a loaded machine
    derandomize=not LONG,
    database=None,
    deadline=None,  # two shared cores: the 3 s is asserted on each answer instead
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)

CHANNEL = "C0HOSTILE"
NAMESPACE = "hostile"
ALICE, BOB, MALLORY = "U0ALICE", "U0BOB", "U0MALLORY"  # requester, approver, nobody
ACK_LIMIT_S = 3.0
#: What a listener that raised leaves in the log (Bolt's, ours, gunicorn's).
FAILURES = re.compile(
    r"Traceback|Failed to run listener|listener failed|Error handling request|"
    r"Exception in|Unhandled exception"
)


# -- the running bot and its Redis ------------------------------------------------------


@dataclass(repr=False)
class Bot:
    serve: Rollbot
    redis: redis.Redis
    slack: FakeSlackApi
    #: Record ids by what they are, in the seeded Redis.
    records: dict[str, str]
    #: Every key's DUMP in the seeded Redis, restored before each example.
    seed: dict[str, tuple[bytes, int]]

    def __repr__(self) -> str:  # hypothesis prints it with every failing example
        return f"Bot({self.serve.events_url})"

    @property
    def log(self) -> Path:
        return self.serve.dir / "serve.log"

    def reset(self) -> None:
        self.redis.flushdb()
        for key, (value, ttl) in self.seed.items():
            self.redis.restore(key, max(ttl, 0), value)

    def snapshot(self) -> dict[str, bytes | None]:
        return {key: self.redis.dump(key) for key in self.redis.scan_iter(count=1000)}


def _seed(store: RollbackStore) -> dict[str, str]:
    """A record in each state a click or a command can name."""

    def record(name: str, state: RollbackState, **update: Any) -> str:
        saved = store.create(
            requested(NAMESPACE, name, ALICE, channel=CHANNEL, ttl=timedelta(minutes=30))
        )
        changed = saved.model_copy(update={"state": state, "thread_ts": "1700000000.000100"})
        store.update(saved.id, lambda _: changed.model_copy(update=update))
        return saved.id

    return {
        "awaiting": record("web", RollbackState.AWAITING_APPROVAL),
        "expired": record(
            "old", RollbackState.AWAITING_APPROVAL, expires_at=requested("x", "y", "z").created_at
        ),
        "failed": record("api", RollbackState.FAILED, target_revision=3),
        "succeeded": record("db", RollbackState.SUCCEEDED),
        "cancelled": record("ui", RollbackState.CANCELLED),
    }


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    kubeconfig = tmp_path_factory.mktemp("hostile") / "kubeconfig"
    kubeconfig.write_text(NOWHERE_KUBECONFIG)
    try:
        server = RedisServer().start()
    except (RuntimeError, OSError) as err:
        unavailable(f"redis-server could not start: {err}")
    config = {
        "default_namespace": NAMESPACE,
        "namespaces": [NAMESPACE, "other"],
        "requesters": [ALICE, BOB],
        "approvers": [BOB],
        "follow_up_minutes": [],
    }
    with FakeSlackApi() as slack:
        serve = Rollbot(kubeconfig, server.url, slack.base_url, config)
        try:
            serve.start_serve()
            client = connect(server.url)
            records = _seed(RollbackStore(client))
            seed = {
                key: (value, client.pttl(key))
                for key in client.scan_iter()
                if (value := client.dump(key)) is not None
            }
            yield Bot(serve, client, slack, records, seed)
            log = (serve.dir / "serve.log").read_text(errors="replace")
            assert not FAILURES.search(log), log[-5000:]
        finally:
            serve.stop()
            server.stop()


# -- what Slack sends ---------------------------------------------------------------------


def sign(body: bytes, timestamp: str, secret: str = SECRET) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def post(bot: Bot, body: bytes, headers: Mapping[str, str | bytes]) -> tuple[httpx.Response, float]:
    """One request as Slack sends it; the answer and how long it took."""
    started = time.monotonic()
    answer = httpx.post(
        bot.serve.events_url,
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
        timeout=10,
    )
    return answer, time.monotonic() - started


def signed(body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": sign(body, timestamp)}


def command_form(text: str, user: str, trigger: str) -> dict[str, str]:
    return {
        "command": "/rollback",
        "text": text,
        "user_id": user,
        "user_name": "someone",
        "channel_id": CHANNEL,
        "team_id": "T0TEAM",
        "trigger_id": trigger,
        "response_url": "http://127.0.0.1:9/unused",
    }


def click_payload(user: Any, action_id: Any, value: Any, **extra: Any) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "team": {"id": "T0TEAM"},
        "api_app_id": "A0APP",
        "user": {"id": user, "name": "someone"},
        "trigger_id": "1.2.3",
        "channel": {"id": CHANNEL},
        "container": {"type": "message", "message_ts": "1700000000.000100"},
        "message": {"ts": "1700000000.000100", "text": ""},
        "response_url": "http://127.0.0.1:9/unused",
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "rollback_decision",
                "value": value,
                "action_ts": "1700000000.1",
            }
        ],
        **extra,
    }


# -- the judging --------------------------------------------------------------------------


def assert_no_failure_logged(bot: Bot, offset: int) -> None:
    with bot.log.open("rb") as log:
        log.seek(offset)
        text = log.read().decode(errors="replace")
    assert not FAILURES.search(text), text[-3000:]


def assert_acked(answer: httpx.Response, elapsed: float) -> None:
    assert answer.status_code < 500, (answer.status_code, answer.text[:500])
    assert elapsed < ACK_LIMIT_S, f"answered after {elapsed:.2f}s"


def assert_no_markup_of_theirs(text: str) -> None:
    """rollbot's answer may mention its users by id; nothing the sender typed becomes
    a mention, a channel-wide ping or a link."""
    for markup in re.findall(r"<[^>]*>", text):
        assert re.fullmatch(r"<@U0(ALICE|BOB)>", markup), (markup, text[:500])


def settled(
    bot: Bot,
    calls_before: int,
    *,
    answer_expected: bool = False,
    before: dict[str, bytes | None] | None = None,
) -> dict[str, bytes | None]:
    """Redis once the work after an ack is done: nothing changed for a while.

    `answer_expected`: the ack promised an answer (a click's listener writes before
    its ack, or answers in Slack after it), so the quiet only counts once something
    has happened since `before` (Redis before the request): a refusal posted late
    must not pass for no refusal at all."""
    last, quiet_since, deadline = bot.snapshot(), time.monotonic(), time.monotonic() + 5
    waiting = answer_expected and last == before and len(bot.slack.calls()) == calls_before
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = bot.snapshot()
        calls = len(bot.slack.calls())
        if now != last or calls != calls_before:
            last, calls_before, quiet_since, waiting = now, calls, time.monotonic(), False
        elif not waiting and time.monotonic() - quiet_since > 0.3:
            break
    assert not waiting, "the ack promised an answer, and nothing happened in 5 s"
    return last


def changed_keys(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    return {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


# -- hostile text -------------------------------------------------------------------------

HOSTILE = [
    "<@U0BOB>",
    "<@U0ALICE|alice>",
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<!subteam^S0SRE|@sre>",
    "@channel",
    "<#C0OTHER|ops>",
    "<https://evil.example|Approved by SRE lead>",
    "&lt;!channel&gt;",
    "&amp;lt;",
    "*bold*",
    "_it_",
    "~x~",
    "`code`",
    "```",
    "<script>alert(1)</script>",
    "“web”",
    "‘-n’ ‘other’",
    "—to-revision",
    "–n",
    "\u00a0",
    "\u202e",
    "\u200b",
    "\x00",
    "\x1b[31m",
    "\r\n",
    "\t",
    "🙂",
    "ﬁ",
    "²",
    "٣",
    "xoxb-1234567890-abcdefghij",
    "password=hunter2",
    "'",
    '"',
    "\\",
    "$(id)",
    "../../etc/passwd",
    "%00",
    "+",
]
WORDS = [
    "help",
    "status",
    "cancel",
    "history",
    "web",
    "api",
    "-n",
    NAMESPACE,
    "other",
    "kube-system",
    "--to-revision",
    "0",
    "-1",
    "99999999999999999999",
    "--reason",
    "--strategy",
    "helm",
    "--scale",
    "--emergency",
    "--dry-run",
    "--force",
    "--restore",
    "--to-tag",
    "v1.2.3",
    "--container",
    "--traffic",
    "--flag",
    "--config",
    "--",
]
users = st.sampled_from([ALICE, BOB, MALLORY]) | st.text(max_size=30)
command_texts = st.one_of(
    st.lists(st.sampled_from(HOSTILE + WORDS), max_size=8).map(" ".join),
    st.lists(st.sampled_from(HOSTILE + WORDS) | st.text(max_size=20), max_size=6).map(" ".join),
    st.text(max_size=300),
)


@dataclass(frozen=True)
class Record:
    """A click's value that names one of the seeded records."""

    which: str


click_values = st.one_of(
    st.sampled_from(["awaiting", "expired", "failed", "succeeded", "cancelled"]).map(Record),
    st.sampled_from(["", "0", "rb-doesnotexist", "rb-" + "x" * 5000, "*", "../record:x", "\x00"]),
    st.text(max_size=40),
    st.none(),
    st.integers(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
)
action_ids = st.sampled_from(list(ActionId)).map(str) | st.one_of(
    st.sampled_from(["rollback_approve ", "ROLLBACK_APPROVE", "rollback_", "", "rollback_delete"]),
    st.text(max_size=30),
    st.none(),
    st.integers(),
)


# -- the properties -----------------------------------------------------------------------


@EXAMPLES
@given(text=command_texts, user=users)
@example(text="web -n hostile <!channel>", user=MALLORY)
@example(text="web --reason <https://evil.example|Approved by SRE lead>", user=ALICE)
@example(text="cancel <@U0BOB>", user=ALICE)
@example(text="status " + "x" * 4000, user=ALICE)
@example(text="web --reason " + "é" * 100_000, user=ALICE)
@example(text="x" * (MAX_BODY_BYTES - 400), user=ALICE)
def test_any_command_text_is_answered_in_time_and_a_refusal_writes_nothing(bot, text, user):
    bot.reset()
    offset = bot.log.stat().st_size
    before = bot.snapshot()
    calls = len(bot.slack.calls())
    form = command_form(text, user, trigger=os.urandom(8).hex())
    body = urllib.parse.urlencode(form).encode()
    answer, elapsed = post(bot, body, signed(body))

    assert_acked(answer, elapsed)
    after = bot.snapshot()
    assert_no_failure_logged(bot, offset)
    if len(body) > MAX_BODY_BYTES:
        assert answer.status_code == 413 and after == before
        return
    assert answer.status_code == 200, answer.text[:500]
    if not text.strip():
        # `/rollback` alone opens the form: the ack is empty, the form is the answer
        # (its trigger is made up here, so Slack refuses it), and nothing is written.
        assert answer.text == "" and changed_keys(before, after) == set()

        def form_asked_for() -> bool:
            return "views.open" in [c.method for c in bot.slack.calls()[calls:]]

        wait_until("the form asked for, after the ack", form_asked_for, timeout=10)
        return
    said = answer.json()
    assert said.get("response_type") == "ephemeral" and said.get("text"), said
    assert_no_markup_of_theirs(said["text"])
    if said["text"].startswith(":warning:"):
        assert changed_keys(before, after) == set(), said["text"]


@EXAMPLES
@given(user=users, action_id=action_ids, value=click_values)
@example(user=MALLORY, action_id=ActionId.APPROVE.value, value=Record("awaiting"))
@example(user=ALICE, action_id=ActionId.APPROVE.value, value=Record("awaiting"))
@example(user=MALLORY, action_id=ActionId.CANCEL.value, value=Record("awaiting"))
@example(user=MALLORY, action_id=ActionId.RESTORE.value, value=Record("failed"))
@example(user=BOB, action_id=ActionId.APPROVE.value, value=Record("expired"))
@example(user=BOB, action_id=ActionId.APPROVE.value, value="rb-doesnotexist")
@example(user=BOB, action_id="rollback_delete", value=Record("awaiting"))
def test_any_click_is_acked_in_time_and_a_refusal_writes_nothing(bot, user, action_id, value):
    bot.reset()
    offset = bot.log.stat().st_size
    before = bot.snapshot()
    calls = len(bot.slack.calls())
    record_id = bot.records[value.which] if isinstance(value, Record) else value
    store = RollbackStore(bot.redis)
    seeded = store.get(record_id) if isinstance(value, Record) else None
    payload = click_payload(user, action_id, record_id)
    body = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    answer, elapsed = post(bot, body, signed(body))

    assert_acked(answer, elapsed)
    expected = answer.status_code == 200 and action_id in ANSWERED_BUTTONS
    after = settled(bot, calls, answer_expected=expected, before=before)
    assert_no_failure_logged(bot, offset)
    told = [
        str(c.args.get("text", ""))
        for c in bot.slack.calls()[calls:]
        if c.method == "chat.postEphemeral" and c.args.get("user") == user
    ]
    refused = answer.status_code != 200 or any(t.startswith(":warning:") for t in told)
    for text in told:
        assert_no_markup_of_theirs(text)
    if not refused:
        return
    changed = changed_keys(before, after)
    if action_id == ActionId.APPROVE and seeded is not None:
        # The audit note on the clicked record, and nothing else; a confirmation found
        # expired is handed to the worker to expire now (its buttons taken away).
        allowed = {f"rollbot:record:{record_id}"}
        if seeded.expired():
            allowed.add(JobQueue.QUEUE)
            jobs = [json.loads(j) for j in bot.redis.lrange(JobQueue.QUEUE, 0, -1)]
            assert {(j["kind"], j["record_id"]) for j in jobs} <= {("expire", record_id)}, jobs
        assert changed <= allowed, changed
        now = store.get(record_id)
        assert (now.state, now.approvals) == (seeded.state, seeded.approvals)
        assert now.timeline[: len(seeded.timeline)] == seeded.timeline
    else:
        assert changed == set(), (changed, told)


#: A header value HTTP/1.1 can carry (RFC 9110 field-value: no control characters, no
#: surrounding whitespace); the HTTP client refuses to send anything else.
SENDABLE = re.compile(r"([\x21-\x7e\x80-\xff]([\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?")

#: Buttons whose value names a record: a click is answered with a write, a message or
#: a modal, whatever the record. (The form's own fields answer only inside the form.)
ANSWERED_BUTTONS = {
    str(a)
    for a in (
        ActionId.APPROVE,
        ActionId.CANCEL,
        ActionId.ROLL_FURTHER,
        ActionId.REQUEST_AGAIN,
        ActionId.RESTORE,
        ActionId.RESUME,
        ActionId.RESUME_CONFIRM,
    )
}

forgery_kinds = st.sampled_from(
    ["no headers", "stale", "future", "not a number", "wrong secret", "forged", "no signature"]
)


@EXAMPLES
@given(
    kind=forgery_kinds,
    age=st.integers(310, 10**9),  # past Slack's 300 s, whatever the clocks
    junk=st.text(min_size=1, max_size=20),
    body=st.one_of(
        command_texts.map(
            lambda t: urllib.parse.urlencode(command_form(t, BOB, "forged")).encode()
        ),
        st.just(
            urllib.parse.urlencode(
                {"payload": json.dumps(click_payload(BOB, ActionId.APPROVE.value, "x"))}
            ).encode()
        ),
        st.binary(max_size=200),
    ),
)
def test_a_request_not_signed_by_slack_is_refused_with_401_and_writes_nothing(
    bot, kind, age, junk, body
):
    bot.reset()
    before = bot.snapshot()
    now = int(time.time())
    ts = {"stale": now - age, "future": now + age}.get(kind, now)
    headers = {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": sign(body, str(ts))}
    if kind == "no headers":
        headers = {}
    elif kind == "no signature":
        del headers["X-Slack-Signature"]
    elif kind == "not a number":
        headers = {"X-Slack-Request-Timestamp": junk, "X-Slack-Signature": sign(body, junk)}
    elif kind == "wrong secret":
        headers["X-Slack-Signature"] = sign(body, str(ts), secret="not-" + SECRET)
    elif kind == "forged":
        headers["X-Slack-Signature"] = "v0=" + hashlib.sha256(junk.encode()).hexdigest()
    raw = {k: v.encode("utf-8", "replace") for k, v in headers.items()}
    assume(all(SENDABLE.fullmatch(v.decode("latin-1")) for v in raw.values()))  # else unsendable
    offset = bot.log.stat().st_size
    answer, elapsed = post(bot, body, raw)

    assert_acked(answer, elapsed)
    assert answer.status_code == 401, (kind, answer.status_code, answer.text[:300])
    assert bot.snapshot() == before
    assert_no_failure_logged(bot, offset)


@EXAMPLES
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300).map(str.encode),
        st.sampled_from(
            [
                b"payload=",
                b"payload=%7B",
                b"payload=null",
                b"payload=%5B%5D",
                b"payload=1",
                b"payload=%22x%22",
                b"command=",
                b"command=%2Frollback",
                b"\xff\xfe",
                b"text=%ff",
                b"payload=%7B%22type%22%3A%22block_actions%22%7D",
                b"command=/rollback&command=/other&text=help",
            ]
        ),  # fmt: skip
        st.dictionaries(st.text(max_size=10), st.text(max_size=30), max_size=5).map(
            lambda form: urllib.parse.urlencode(form).encode()
        ),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=10),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(
                    st.sampled_from(
                        [
                            "type",
                            "user",
                            "actions",
                            "channel",
                            "id",
                            "value",
                            "action_id",
                            "view",
                            "team",
                        ]
                    ),
                    inner,
                    max_size=4,
                )
            ),  # fmt: skip
            max_leaves=12,
        ).map(lambda p: urllib.parse.urlencode({"payload": json.dumps(p)}).encode()),
    ),
)
def test_a_signed_body_of_any_shape_is_answered_without_a_5xx(bot, body):
    bot.reset()
    before = bot.snapshot()
    offset = bot.log.stat().st_size
    calls = len(bot.slack.calls())
    answer, elapsed = post(bot, body, signed(body))

    assert_acked(answer, elapsed)
    after = settled(bot, calls)
    assert_no_failure_logged(bot, offset)
    assert changed_keys(before, after) == set()
