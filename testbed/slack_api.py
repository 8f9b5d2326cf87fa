"""A local stand-in for the part of the Slack Web API rollbot calls.

Integration tests point a real `slack_sdk.WebClient` at it (`base_url=server.base_url`), so
the bot's own request code runs unchanged (JSON and form bodies, retry handlers, the
three-step `files_upload_v2`), while the test reads back what people in the channel would
see and provokes what Slack does in production: rate limits, 5xx, and the Block Kit limits
that only fail once a message grows large.

Standard library only: the test bed must not depend on what it is testing.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

from testbed.service import ThreadedHttpService

Args = dict[str, Any]
Report = Callable[[str, str], None]

BOT_USER_ID = "U0ROLLBOT1"
BOT_ID = "B0ROLLBOT1"
TEAM_ID = "T0TESTBED1"
FIRST_TS_SECONDS = 1_700_000_000

MAX_TEXT = 40_000
MAX_MESSAGE_BLOCKS = 50
MAX_MODAL_BLOCKS = 100
#: How long views.open takes a trigger_id after Slack issued it.
TRIGGER_TTL = 3.0
BLOCK_TYPES = frozenset(
    {
        "actions",
        "context",
        "context_actions",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "table",
        "video",
    }
)
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_TS = re.compile(r"^\d+\.\d{6}$")
_UPLOAD_PATH = "/upload/v1/"
_RESPONSE_PATH = "/response/"
#: The bot scopes of `slack-app-manifest.yaml`: what an installed rollbot may do
#: (a test adds "channels:join", which the manifest leaves to those who want it).
MANIFEST_SCOPES = frozenset(
    {
        "chat:write",
        "chat:write.public",
        "commands",
        "files:write",
        "im:write",
        "usergroups:read",
        "users:read",
    }
)
#: A response_url takes this many posts, within this many seconds (Slack: 5 in 30 minutes).
RESPONSE_URL_USES = 5
RESPONSE_URL_SECONDS = 1800


@dataclass(frozen=True)
class RecordedCall:
    """One Web API call as the server received it: `args` holds the body and query
    parameters as sent (form values stay strings), without the token."""

    method: str
    args: Args
    at: float
    status: int = 200
    error: str | None = None


@dataclass(frozen=True)
class Message:
    """A message's current state, after any chat.update, chat.delete or reactions.add."""

    channel: str
    ts: str
    text: str
    blocks: list[Args]
    thread_ts: str | None
    updated: int
    ephemeral_user: str | None
    reply_broadcast: bool
    reactions: tuple[str, ...]
    deleted: bool


@dataclass(frozen=True)
class UploadedFile:
    """A file once files.completeUploadExternal has shared it (or kept it private)."""

    id: str
    filename: str
    title: str
    content: bytes
    channel: str | None
    thread_ts: str | None
    initial_comment: str | None


class SlackError(Exception):
    """Ends a call the way Slack does: HTTP 200 with ok=false and an error code."""

    def __init__(
        self, error: str, messages: list[str] | None = None, *, needed: str | None = None
    ) -> None:
        super().__init__(error)
        self.error = error
        self.messages = messages or []
        #: With missing_scope: the scope the method needs, as Slack names it.
        self.needed = needed


@dataclass
class _StoredMessage:
    channel: str
    ts: str
    text: str
    blocks: list[Args]
    thread_ts: str | None
    ephemeral_user: str | None = None
    reply_broadcast: bool = False
    updated: int = 0
    reactions: list[str] = field(default_factory=list)
    deleted: bool = False
    #: (text, blocks) before each chat.update, oldest first
    earlier: list[tuple[str, list[Args]]] = field(default_factory=list)

    def snapshot(self) -> Message:
        return Message(
            channel=self.channel,
            ts=self.ts,
            text=self.text,
            blocks=copy.deepcopy(self.blocks),
            thread_ts=self.thread_ts,
            updated=self.updated,
            ephemeral_user=self.ephemeral_user,
            reply_broadcast=self.reply_broadcast,
            reactions=tuple(self.reactions),
            deleted=self.deleted,
        )

    def as_json(self) -> Args:
        body: Args = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "team": TEAM_ID,
            "text": self.text,
            "ts": self.ts,
        }
        if self.blocks:
            body["blocks"] = self.blocks
        if self.thread_ts is not None:
            body["thread_ts"] = self.thread_ts
        return body


@dataclass
class _PendingUpload:
    file_id: str
    filename: str
    length: int
    content: bytes | None = None


@dataclass(frozen=True)
class _User:
    id: str
    name: str
    real_name: str
    tz: str
    is_bot: bool = False

    def as_json(self) -> Args:
        offset = ZoneInfo(self.tz).utcoffset(datetime.now(UTC).replace(tzinfo=None))
        seconds = int(offset.total_seconds()) if offset is not None else 0
        return {
            "id": self.id,
            "team_id": TEAM_ID,
            "name": self.name,
            "real_name": self.real_name,
            "deleted": False,
            "is_bot": self.is_bot,
            "tz": self.tz,
            "tz_label": self.tz,
            "tz_offset": seconds,
            "profile": {"real_name": self.real_name, "display_name": self.name},
        }


@dataclass
class _Channel:
    """A conversation and the bot's place in it. Channels a test never declared are
    public ones the bot has joined: the tests name the channels they post in."""

    id: str
    name: str
    is_private: bool = False
    member: bool = True
    archived: bool = False
    shared: bool = False

    @property
    def is_dm(self) -> bool:
        return self.id.startswith("D")

    def as_json(self) -> Args:
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_dm and not self.is_private,
            "is_group": self.is_private and not self.is_dm,
            "is_im": self.is_dm,
            "is_private": self.is_private or self.is_dm,
            "is_archived": self.archived,
            "is_member": self.member,
            "is_shared": self.shared,
            "is_ext_shared": False,
            "is_org_shared": self.shared,
        }


@dataclass
class _ResponseUrl:
    channel: str
    user: str
    issued: float
    uses: int = 0


@dataclass
class _Trigger:
    issued: float
    used: bool = False


@dataclass
class _Fault:
    status: int
    retry_after: int
    times: int


@dataclass(frozen=True)
class Limit:
    """`per_second` calls on average after a burst of up to `burst` (a token bucket),
    counted per method per workspace, or per method per channel with `per_channel`."""

    per_second: float
    burst: int
    per_channel: bool = False


#: Slack's tiers (https://docs.slack.dev/apis/web-api/rate-limits): "per API method per
#: app per workspace", each a floor ("20+ per minute") that "allows bursts": here the
#: floor, after a burst of up to a minute's worth, so rollbot meets the strictest Slack.
TIER_1 = Limit(1 / 60, 1)
TIER_2 = Limit(20 / 60, 20)
TIER_3 = Limit(50 / 60, 50)
TIER_4 = Limit(100 / 60, 100)
#: chat.postMessage's special tier: "one message per second per channel", "short bursts
#: >1 allowed".
POST_MESSAGE = Limit(1.0, 5, per_channel=True)

#: Each method's limit, from its reference page (https://docs.slack.dev/reference/methods).
SLACK_LIMITS: dict[str, Limit] = {
    "auth.test": Limit(200 / 60, 200),  # "hundreds of requests per minute"
    "chat.postMessage": POST_MESSAGE,
    "chat.update": TIER_3,
    "chat.postEphemeral": TIER_4,
    "chat.delete": TIER_3,
    "reactions.add": TIER_3,
    "users.info": TIER_4,
    "usergroups.users.list": TIER_2,
    "conversations.info": TIER_3,
    "conversations.members": TIER_4,
    "conversations.open": TIER_3,
    "views.open": TIER_4,
    "views.publish": TIER_4,
    "views.update": TIER_4,
    "views.push": TIER_4,
    "files.getUploadURLExternal": TIER_4,
    "files.completeUploadExternal": TIER_4,
}


@dataclass
class _Bucket:
    """A limit's budget for one method (in one channel): `tokens` left at `stamp`."""

    limit: Limit
    tokens: float
    stamp: float

    def take(self, now: float) -> int:
        """Spend a token and answer 0, or answer the whole seconds until one is there
        (at least 1, as Slack's Retry-After) and spend nothing."""
        refill = (now - self.stamp) * self.limit.per_second
        self.tokens = min(float(self.limit.burst), self.tokens + refill)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0
        return max(1, math.ceil((1.0 - self.tokens) / self.limit.per_second))


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def _json_reply(payload: Args, status: int = 200, headers: dict[str, str] | None = None) -> _Reply:
    return _Reply(status, json.dumps(payload).encode(), headers=headers or {})


def _error_payload(error: SlackError) -> Args:
    payload: Args = {"ok": False, "error": error.error}
    if error.needed:
        payload["needed"] = error.needed
    if error.messages:
        payload["response_metadata"] = {"messages": error.messages}
    return payload


class FakeSlackApi(ThreadedHttpService):
    """A Slack Web API on 127.0.0.1 that records every call and keeps the messages and
    files a workspace would show; use it as a context manager around a test."""

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, realistic_limits: bool = True
    ) -> None:
        """`clock` times the calls and the rate limits; pass a fake one to test waiting.
        `realistic_limits`: whether calls are limited as Slack limits them (see
        `realistic_limits()`)."""
        self._clock = clock
        self._realistic = realistic_limits
        self._lock = threading.RLock()
        self._methods: dict[str, Callable[[Args], Args]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.delete": self._chat_delete,
            "reactions.add": self._reactions_add,
            "users.info": self._users_info,
            "usergroups.users.list": self._usergroups_users_list,
            "conversations.info": self._conversations_info,
            "conversations.join": self._conversations_join,
            "conversations.open": self._conversations_open,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
        }
        self.reset()

    # -- lifecycle -------------------------------------------------------------------------

    def _make_server(self) -> _Server:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.api = self
        return server

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What `slack_sdk.WebClient(base_url=...)` needs: it appends the method name."""
        return f"{self.origin}/api/"

    # -- set-up ----------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to a fresh workspace: no calls, messages, files, users or faults, and
        only Slack's own limits (if realistic)."""
        with self._lock:
            self._calls: list[RecordedCall] = []
            self._messages: list[_StoredMessage] = []
            self._uploads: dict[str, _PendingUpload] = {}
            self._files: list[UploadedFile] = []
            self._views: list[Args] = []
            self._triggers: dict[str, _Trigger] = {}
            self._homes: dict[str, Args] = {}
            self._users: dict[str, _User] = {
                BOT_USER_ID: _User(BOT_USER_ID, "rollbot", "rollbot", "UTC", is_bot=True)
            }
            self._channels: dict[str, _Channel] = {}
            #: Channel ids that name no conversation (deleted, or never there).
            self._missing: set[str] = set()
            self._response_urls: dict[str, _ResponseUrl] = {}
            self.scopes: set[str] = set(MANIFEST_SCOPES)
            self._usergroups: dict[str, list[str]] = {}
            self._faults: dict[str, deque[_Fault]] = {}
            self._limits: dict[str, Limit | None] = {}
            self._buckets: dict[tuple[str, str], _Bucket] = {}
            self._outage: int | None = None
            self._outage_methods: frozenset[str] | None = None
            #: Seconds every call waits before it is answered (`slow`).
            self.latency = 0.0
            self._ts_seq = 0
            self._id_seq = 0

    def add_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        real_name: str | None = None,
        tz: str = "UTC",
    ) -> None:
        """Give users.info a real profile; unregistered U…/W… ids get a generated one."""
        ZoneInfo(tz)  # an unknown zone fails here, not in the middle of a test's request
        with self._lock:
            self._users[user_id] = _User(
                user_id, name or user_id.lower(), real_name or f"User {user_id}", tz
            )

    def add_usergroup(self, group_id: str, users: list[str]) -> None:
        """A user group (S…) and its members, for usergroups.users.list."""
        with self._lock:
            self._usergroups[group_id] = list(users)

    def add_channel(
        self,
        channel_id: str,
        name: str,
        *,
        is_private: bool = False,
        member: bool = True,
        archived: bool = False,
        shared: bool = False,
    ) -> None:
        """Name a channel, so `#name` resolves and conversations.info answers with it;
        `member=False`: the bot was never invited (posting there fails as in Slack)."""
        with self._lock:
            self._missing.discard(channel_id)
            self._channels[channel_id] = _Channel(
                channel_id, name, is_private, member, archived, shared
            )

    def archive_channel(self, channel_id: str) -> None:
        """Archive a channel: every post and edit there is refused with is_archived."""
        with self._lock:
            self._declared(channel_id).archived = True

    def remove_bot(self, channel_id: str) -> None:
        """Take the bot out of a channel (someone typed /kick @rollbot)."""
        with self._lock:
            self._declared(channel_id).member = False

    def delete_channel(self, channel_id: str) -> None:
        """A channel id that names nothing from now on: channel_not_found."""
        with self._lock:
            self._channels.pop(channel_id, None)
            self._missing.add(channel_id)

    def is_member(self, channel_id: str) -> bool:
        with self._lock:
            return self._conversation(channel_id).member

    def response_url(self, channel: str, user: str) -> str:
        """A command's response_url, as Slack hands one out with each slash command:
        it posts to `channel` as `user` sees it, whether the bot is a member or not."""
        with self._lock:
            token = self._next_id("R")
            self._response_urls[token] = _ResponseUrl(channel, user, self._clock())
            return f"{self.origin}{_RESPONSE_PATH}{token}"

    def fail_next(
        self, method: str, status: int = 429, retry_after: int = 1, times: int = 1
    ) -> None:
        """Make the next `times` calls of `method` fail at the HTTP level, as Slack's edge
        does: 429 with Retry-After and error "ratelimited", or a 5xx "internal_error".
        Queued after any faults already pending for that method."""
        self._known(method)
        if status != 429 and not 500 <= status <= 599:
            raise ValueError(f"fail_next answers 429 or a 5xx, not {status}")
        if times < 1 or retry_after < 0:
            raise ValueError("times must be at least 1 and retry_after not negative")
        with self._lock:
            self._faults.setdefault(method, deque()).append(_Fault(status, retry_after, times))

    def outage(self, status: int | None, methods: list[str] | None = None) -> None:
        """Answer every call (of `methods` only, if given: a files outage, say) with
        `status` — a 5xx "internal_error", or 429 with Retry-After 1 — until
        `outage(None)`: Slack down for as long as a test likes."""
        if status is not None and status != 429 and not 500 <= status <= 599:
            raise ValueError(f"an outage answers 429 or a 5xx, not {status}")
        for method in methods or []:
            self._known(method)
        with self._lock:
            self._outage = status
            self._outage_methods = frozenset(methods) if methods else None

    def slow(self, seconds: float) -> None:
        """Answer every call (Web API and response_url) `seconds` late: Slack far away
        or struggling, still answering. 0 makes it prompt again."""
        if seconds < 0:
            raise ValueError("a delay is not negative")
        self.latency = seconds

    def realistic_limits(self, enabled: bool = True) -> None:
        """Limit every method as Slack does (`SLACK_LIMITS`: chat.postMessage about one
        a second per channel, the others by their tier), answering 429 with Retry-After
        past a limit; on unless the server was made with `realistic_limits=False`.
        `rate_limit()` overrides one method either way."""
        with self._lock:
            self._realistic = enabled
            self._buckets.clear()

    def rate_limit(self, method: str, per_second: float | None) -> None:
        """Answer 429 + Retry-After once `method` is called faster than `per_second`
        across the workspace (bursts of one second's worth pass); None lifts any limit,
        Slack's own included."""
        self._known(method)
        if per_second is not None and per_second <= 0:
            raise ValueError("per_second must be positive")
        with self._lock:
            if per_second is None:
                self._limits[method] = None
            else:
                self._limits[method] = Limit(per_second, max(1, math.floor(per_second)))
            for key in [k for k in self._buckets if k[0] == method]:
                del self._buckets[key]

    def _limit(self, method: str) -> Limit | None:
        if method in self._limits:
            return self._limits[method]
        return SLACK_LIMITS.get(method) if self._realistic else None

    def _known(self, method: str) -> None:
        if method not in self._methods:
            raise ValueError(f"{method!r} is not a method FakeSlackApi serves")

    # -- what the test reads back ----------------------------------------------------------

    def calls(self, method: str | None = None) -> list[RecordedCall]:
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def messages(self, channel: str | None = None) -> list[Message]:
        """Every message posted, ephemeral and deleted ones included, in posting order."""
        with self._lock:
            return [m.snapshot() for m in self._messages if channel in (None, m.channel)]

    def thread(self, channel: str, ts: str) -> list[Message]:
        """What everyone in the channel sees of a thread: the root, then its replies in
        order; ephemeral and deleted replies are left out. KeyError if there is no root."""
        with self._lock:
            root = self._find(channel, ts)
            replies = [
                m
                for m in self._messages
                if m.channel == channel
                and m.thread_ts == ts
                and m.ts != ts
                and m.ephemeral_user is None
                and not m.deleted
            ]
            return [root.snapshot()] + [m.snapshot() for m in replies]

    def versions(self, channel: str, ts: str) -> list[Message]:
        """Every state a message was in, as first posted to now: what each chat.update
        replaced. KeyError if there is no such message."""
        with self._lock:
            message = self._find(channel, ts)
            now = message.snapshot()
            return [
                dataclasses.replace(now, text=text, blocks=copy.deepcopy(blocks), updated=number)
                for number, (text, blocks) in enumerate(message.earlier)
            ] + [now]

    def user_info(self, user_id: str) -> Args:
        """The `user` users.info answers for an id, without recording a call; SlackError
        ("user_not_found") as users.info would."""
        with self._lock:
            user: Args = self._users_info({"user": user_id})["user"]
            return user

    def files(self) -> list[UploadedFile]:
        """Files completed with files.completeUploadExternal, in completion order."""
        with self._lock:
            return list(self._files)

    def views(self) -> list[Args]:
        """Modals opened with views.open (with their id), as any views.update left them."""
        with self._lock:
            return copy.deepcopy(self._views)

    def view(self, view_id: str) -> Args:
        """A modal as it is now, after any views.update (KeyError if never opened)."""
        with self._lock:
            for view in reversed(self._views):
                if view["id"] == view_id:
                    return copy.deepcopy(view)
        raise KeyError(f"no view {view_id}")

    def home(self, user: str) -> Args | None:
        """The Home tab published for `user`, if any."""
        with self._lock:
            return copy.deepcopy(self._homes.get(user))

    def issue_trigger(self) -> str:
        """A trigger_id as Slack puts into a command, shortcut or click: views.open
        takes it once, within TRIGGER_TTL seconds."""
        with self._lock:
            self._id_seq += 1
            trigger = f"{FIRST_TS_SECONDS + self._id_seq}.{self._id_seq:06d}.t{self._id_seq:x}"
            self._triggers[trigger] = _Trigger(self._clock())
            return trigger

    def _find(self, channel: str, ts: str) -> _StoredMessage:
        for m in self._messages:
            if m.channel == channel and m.ts == ts and m.ephemeral_user is None and not m.deleted:
                return m
        raise KeyError(f"no message {ts} in {channel}")

    # -- HTTP ------------------------------------------------------------------------------

    def handle(
        self, path: str, authorization: str | None, content_type: str, body: bytes
    ) -> _Reply:
        """Answer one request; the HTTP handler only moves bytes in and out."""
        at = self._clock()
        parts = urlsplit(path)
        if parts.path.startswith(_UPLOAD_PATH):
            return self._receive_upload(parts.path.removeprefix(_UPLOAD_PATH), body)
        if parts.path.startswith(_RESPONSE_PATH):
            return self._respond(parts.path.removeprefix(_RESPONSE_PATH), body, at)
        if not parts.path.startswith("/api/"):
            return _Reply(404, b"not found", "text/plain")
        method = parts.path.removeprefix("/api/")
        with self._lock:
            args: Args = {}
            try:
                args = _parse_args(content_type, body, parts.query)
                token = args.pop("token", None)
                if authorization and authorization.startswith("Bearer "):
                    token = authorization.removeprefix("Bearer ").strip()
                reply = self._answer(method, token, args)
            except SlackError as err:
                reply = _json_reply(_error_payload(err))
            payload = json.loads(reply.body)
            self._calls.append(RecordedCall(method, args, at, reply.status, payload.get("error")))
            return reply

    def _answer(self, method: str, token: object, args: Args) -> _Reply:
        handler = self._methods.get(method)
        if handler is None:
            raise SlackError("unknown_method")
        if self._outage is not None and (
            self._outage_methods is None or method in self._outage_methods
        ):
            if self._outage == 429:
                return _ratelimited(1)
            return _json_reply({"ok": False, "error": "internal_error"}, self._outage)
        faults = self._faults.get(method)
        if faults:
            fault = faults[0]
            fault.times -= 1
            if fault.times == 0:
                faults.popleft()
            if fault.status == 429:
                return _ratelimited(fault.retry_after)
            return _json_reply({"ok": False, "error": "internal_error"}, fault.status)
        if not token:
            raise SlackError("not_authed")
        if not isinstance(token, str) or not token.startswith("xox"):
            raise SlackError("invalid_auth")
        limit = self._limit(method)
        if limit is not None:
            scope = str(args.get("channel", "")) if limit.per_channel else ""
            now = self._clock()
            bucket = self._buckets.setdefault(
                (method, scope), _Bucket(limit, float(limit.burst), now)
            )
            if wait := bucket.take(now):
                return _ratelimited(wait)
        return _json_reply({"ok": True, **handler(args)})

    def _receive_upload(self, file_id: str, body: bytes) -> _Reply:
        """Step 2 of files_upload_v2: the bytes, POSTed raw with no token, like the
        pre-signed URL Slack hands out."""
        with self._lock:
            upload = self._uploads.get(file_id)
            if upload is None:
                return _Reply(404, b"upload not found", "text/plain")
            upload.content = body
        return _Reply(200, f"OK - {len(body)}".encode(), "text/plain")

    def _respond(self, token: str, body: bytes, at: float) -> _Reply:
        """A post to a command's response_url: JSON {text, blocks, response_type,
        thread_ts}; ephemeral to the person unless response_type is in_channel. It needs
        no token and no membership; Slack takes 5 posts within 30 minutes."""
        with self._lock:
            url = self._response_urls.get(token)
            args: Args = {}
            try:
                parsed = json.loads(body or b"{}")
                args = parsed if isinstance(parsed, dict) else {}
            except ValueError:
                pass
            reply: _Reply
            if url is None or at - url.issued > RESPONSE_URL_SECONDS:
                reply = _Reply(404, b"expired_url", "text/plain")
            elif url.uses >= RESPONSE_URL_USES:
                reply = _Reply(404, b"used_url", "text/plain")
            else:
                try:
                    text, blocks = _content(args, required=True)
                except SlackError as err:
                    reply = _Reply(400, err.error.encode(), "text/plain")
                else:
                    url.uses += 1
                    in_channel = args.get("response_type") == "in_channel"
                    self._messages.append(
                        _StoredMessage(
                            url.channel,
                            self._next_ts(),
                            text or "",
                            blocks or [],
                            _thread_ts(args),
                            None if in_channel else url.user,
                        )
                    )
                    reply = _Reply(200, b"ok", "text/plain")
            error = None if reply.status == 200 else reply.body.decode()
            self._calls.append(RecordedCall("response_url", args, at, reply.status, error))
            return reply

    def expire_response_urls(self) -> None:
        """Every response_url handed out so far answers 404 expired_url from now on."""
        with self._lock:
            for url in self._response_urls.values():
                url.issued = -math.inf

    # -- the methods -----------------------------------------------------------------------

    def _next_ts(self) -> str:
        self._ts_seq += 1
        micros = self._ts_seq * 100
        return f"{FIRST_TS_SECONDS + micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _next_id(self, prefix: str) -> str:
        self._id_seq += 1
        return f"{prefix}{self._id_seq:010d}"

    def _dm_or_channel(self, args: Args) -> str:
        """chat.postMessage takes a user id too: it posts in the app's DM with them."""
        raw = args.get("channel")
        if isinstance(raw, str) and _USER_ID.match(raw):
            return "D" + raw
        return self._channel(args)

    def _channel(self, args: Args, key: str = "channel") -> str:
        raw = args.get(key)
        if not isinstance(raw, str) or not raw:
            raise SlackError("channel_not_found")
        if raw in self._channels or _CHANNEL_ID.match(raw):
            return raw
        name = raw.removeprefix("#")
        for channel in self._channels.values():
            if channel.name == name:
                return channel.id
        raise SlackError("channel_not_found")

    def _conversation(self, channel_id: str) -> _Channel:
        """The channel as the test declared it, or the joined public one it stands for."""
        channel = self._channels.get(channel_id)
        if channel is None:
            if channel_id[:1] in ("U", "W"):  # a user id: the app's DM with that person
                return _Channel(channel_id, channel_id.lower())
            return _Channel(channel_id, channel_id.lower(), is_private=channel_id[:1] == "G")
        return channel

    def _declared(self, channel_id: str) -> _Channel:
        return self._channels.setdefault(channel_id, self._conversation(channel_id))

    def _may_write(self, channel_id: str, *, public_ok: bool = False) -> None:
        """Refuse a write where Slack would: a channel that is gone, an archived one, one
        the bot is not in (chat:write.public opens public ones to `public_ok` calls)."""
        if channel_id in self._missing:
            raise SlackError("channel_not_found")
        channel = self._conversation(channel_id)
        if not channel.member:
            if channel.is_private or channel.is_dm:
                raise SlackError("channel_not_found")  # the bot cannot even see it
            if not (public_ok and "chat:write.public" in self.scopes):
                raise SlackError("not_in_channel")
        if channel.archived:
            raise SlackError("is_archived")

    def _in_thread(self, channel: str, thread_ts: str | None) -> str | None:
        """A reply to a message that was deleted fails (a thread_ts naming nothing at
        all is taken and hidden: see `_thread_ts`)."""
        if thread_ts is not None and any(
            m.channel == channel and m.ts == thread_ts and m.deleted for m in self._messages
        ):
            raise SlackError("message_not_found")
        return thread_ts

    def _message(self, channel: str, ts: object) -> _StoredMessage:
        try:
            return self._find(channel, str(ts))
        except KeyError:
            raise SlackError("message_not_found") from None

    def _auth_test(self, args: Args) -> Args:
        return {
            "url": "https://rollbot-testbed.slack.com/",
            "team": "rollbot testbed",
            "user": "rollbot",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, args: Args) -> Args:
        channel = self._dm_or_channel(args)
        self._may_write(channel, public_ok=True)
        text, blocks = _content(args, required=True)
        message = _StoredMessage(
            channel,
            self._next_ts(),
            text or "",
            blocks or [],
            self._in_thread(channel, _thread_ts(args)),
            reply_broadcast=_flag(args.get("reply_broadcast")),
        )
        self._messages.append(message)
        return {"channel": channel, "ts": message.ts, "message": message.as_json()}

    def _chat_update(self, args: Args) -> Args:
        channel = self._channel(args)
        self._may_write(channel, public_ok=True)
        message = self._message(channel, args.get("ts"))
        text, blocks = _content(args, required=True)
        message.earlier.append((message.text, copy.deepcopy(message.blocks)))
        # Like Slack, a field left out keeps its old value.
        if text is not None:
            message.text = text
        if blocks is not None:
            message.blocks = blocks
        message.updated += 1
        return {
            "channel": channel,
            "ts": message.ts,
            "text": message.text,
            "message": message.as_json(),
        }

    def _chat_post_ephemeral(self, args: Args) -> Args:
        channel = self._channel(args)
        self._may_write(channel)
        user = args.get("user")
        if not isinstance(user, str) or not user:
            raise SlackError("user_not_found")
        text, blocks = _content(args, required=True)
        message = _StoredMessage(
            channel, self._next_ts(), text or "", blocks or [], _thread_ts(args), user
        )
        self._messages.append(message)
        return {"message_ts": message.ts}

    def _chat_delete(self, args: Args) -> Args:
        channel = self._channel(args)
        message = self._message(channel, args.get("ts"))
        message.deleted = True
        return {"channel": channel, "ts": message.ts}

    def _reactions_add(self, args: Args) -> Args:
        channel = self._channel(args)
        name = args.get("name")
        if not isinstance(name, str) or not name:
            raise SlackError("invalid_name")
        message = self._message(channel, args.get("timestamp"))
        if name in message.reactions:
            raise SlackError("already_reacted")
        message.reactions.append(name)
        return {}

    def _users_info(self, args: Args) -> Args:
        user_id = args.get("user")
        user = self._users.get(user_id) if isinstance(user_id, str) else None
        if user is None:
            if not isinstance(user_id, str) or not _USER_ID.match(user_id):
                raise SlackError("user_not_found")
            user = _User(user_id, user_id.lower(), f"User {user_id}", "UTC")
        return {"user": user.as_json()}

    def _usergroups_users_list(self, args: Args) -> Args:
        group = args.get("usergroup")
        if not isinstance(group, str) or group not in self._usergroups:
            raise SlackError("no_such_subteam")
        return {"users": list(self._usergroups[group])}

    def _conversations_info(self, args: Args) -> Args:
        channel_id = self._channel(args)
        channel = self._conversation(channel_id)
        if channel_id in self._missing or (
            not channel.member and (channel.is_private or channel.is_dm)
        ):
            raise SlackError("channel_not_found")
        return {"channel": channel.as_json()}

    def _conversations_join(self, args: Args) -> Args:
        """Join a public channel (scope channels:join); private ones and DMs take an
        invitation, as in Slack."""
        if "channels:join" not in self.scopes:
            raise SlackError("missing_scope", needed="channels:join")
        channel_id = self._channel(args)
        channel = self._conversation(channel_id)
        if channel_id in self._missing or (
            not channel.member and (channel.is_private or channel.is_dm)
        ):
            raise SlackError("channel_not_found")
        if channel.is_private or channel.is_dm:
            raise SlackError("method_not_supported_for_channel_type")
        if channel.archived:
            raise SlackError("is_archived")
        channel.member = True
        self._channels[channel_id] = channel
        return {"channel": channel.as_json()}

    def _conversations_open(self, args: Args) -> Args:
        """The app's direct message with one person (scope im:write): the D… id that
        calls taking only a conversation id need (files); chat.postMessage alone takes
        the user id. Group DMs (several users) are not modelled."""
        if "im:write" not in self.scopes:
            raise SlackError("missing_scope", needed="im:write")
        users = str(args.get("users") or "")
        if not users:
            raise SlackError("users_list_not_supplied")
        if "," in users:
            raise SlackError("invalid_arguments", ["[ERROR] the local Slack opens 1:1 DMs only"])
        if users == BOT_USER_ID:
            raise SlackError("cannot_dm_bot")
        if not _USER_ID.match(users):
            raise SlackError("user_not_found")
        return {"channel": {"id": "D" + users}}  # as chat.postMessage to the user lands

    def _views_open(self, args: Args) -> Args:
        trigger_id = args.get("trigger_id") or args.get("interactivity_pointer")
        if not trigger_id:
            raise SlackError("invalid_arguments", ["[ERROR] missing required field: trigger_id"])
        trigger = self._triggers.get(str(trigger_id))
        if trigger is None:
            raise SlackError("invalid_trigger_id")
        if trigger.used:
            raise SlackError("exchanged_trigger_id")
        if self._clock() - trigger.issued > TRIGGER_TTL:
            raise SlackError("expired_trigger_id")
        view = _checked_view(args.get("view"), "modal")
        trigger.used = True
        opened = {
            **view,
            "id": self._next_id("V"),
            "team_id": TEAM_ID,
            "bot_id": BOT_ID,
            "state": {"values": {}},
            "hash": f"{self._id_seq}.fake",
        }
        self._views.append(opened)
        return {"view": opened}

    def _views_update(self, args: Args) -> Args:
        """A modal replaced by id (or external_id); a stale `hash` is refused, as Slack
        does when the view changed since the payload that carried it."""
        view_id, external_id = args.get("view_id"), args.get("external_id")
        if not view_id and not external_id:
            raise SlackError("invalid_arguments", ["[ERROR] view_id or external_id required"])
        index = next(
            (
                i
                for i in range(len(self._views) - 1, -1, -1)
                if (view_id and self._views[i]["id"] == view_id)
                or (external_id and self._views[i].get("external_id") == external_id)
            ),
            None,
        )
        if index is None:
            raise SlackError("not_found")
        current = self._views[index]
        if args.get("hash") and args["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        view = _checked_view(args.get("view"), "modal")
        self._id_seq += 1
        updated = {**view, **{k: current[k] for k in ("id", "team_id", "bot_id", "state")}}
        updated["hash"] = f"{self._id_seq}.fake"
        self._views[index] = updated
        return {"view": updated}

    def _views_publish(self, args: Args) -> Args:
        user = args.get("user_id")
        if not isinstance(user, str) or not _USER_ID.match(user):
            raise SlackError("invalid_arguments", ["[ERROR] missing required field: user_id"])
        view = _checked_view(args.get("view"), "home")
        current = self._homes.get(user)
        if current is not None and args.get("hash") and args["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        self._id_seq += 1
        published = {
            **view,
            "id": current["id"] if current else self._next_id("V"),
            "team_id": TEAM_ID,
            "bot_id": BOT_ID,
            "hash": f"{self._id_seq}.fake",
        }
        self._homes[user] = published
        return {"view": published}

    def _files_get_upload_url_external(self, args: Args) -> Args:
        filename = args.get("filename")
        if not isinstance(filename, str) or not filename:
            raise SlackError("invalid_arguments", ["[ERROR] missing required field: filename"])
        try:
            length = int(args["length"])
        except (KeyError, TypeError, ValueError):
            raise SlackError(
                "invalid_arguments", ["[ERROR] missing required field: length"]
            ) from None
        file_id = self._next_id("F")
        self._uploads[file_id] = _PendingUpload(file_id, filename, length)
        return {"upload_url": f"{self.origin}{_UPLOAD_PATH}{file_id}", "file_id": file_id}

    def _files_complete_upload_external(self, args: Args) -> Args:
        entries = _parse_json_arg(args.get("files"), "files", "invalid_arguments")
        if not isinstance(entries, list) or not entries:
            raise SlackError("invalid_arguments", ["[ERROR] must be a non-empty array: files"])
        channel: str | None = None
        if _USER_ID.match(str(args.get("channel_id") or "")):
            # Unlike chat.postMessage, a user id is no channel here (conversations.open).
            raise SlackError(
                "invalid_arguments",
                [
                    "[ERROR] input must match regex pattern: ^[CGDZ][A-Z0-9]{8,}$ "
                    "[json-pointer:/channel_id]"
                ],
            )
        if args.get("channel_id"):
            channel = self._channel(args, "channel_id")
        elif args.get("channels"):
            channel = self._channel({"channel": str(args["channels"]).split(",")[0]})
        if channel is not None:
            self._may_write(channel)  # sharing a file takes membership, public or not
        thread_ts = (
            _thread_ts(args) if channel is None else self._in_thread(channel, _thread_ts(args))
        )
        if thread_ts is not None and channel is None:
            raise SlackError("invalid_arguments", ["[ERROR] thread_ts needs channel_id"])
        comment = args.get("initial_comment")
        completed: list[UploadedFile] = []
        for entry in entries:
            file_id = entry.get("id") if isinstance(entry, dict) else None
            upload = self._uploads.get(str(file_id))
            if upload is None or upload.content is None:
                raise SlackError("file_not_found")
            title = entry.get("title") or upload.filename
            completed.append(
                UploadedFile(
                    upload.file_id,
                    upload.filename,
                    str(title),
                    upload.content,
                    channel,
                    thread_ts,
                    str(comment) if comment else None,
                )
            )
        for done in completed:
            del self._uploads[done.id]
        self._files.extend(completed)
        return {
            "files": [
                {
                    "id": f.id,
                    "name": f.filename,
                    "title": f.title,
                    "size": len(f.content),
                    "channels": [f.channel] if f.channel else [],
                }
                for f in completed
            ]
        }


def _ratelimited(retry_after: int) -> _Reply:
    return _json_reply(
        {"ok": False, "error": "ratelimited"}, 429, {"Retry-After": str(retry_after)}
    )


def _parse_args(content_type: str, body: bytes, query: str) -> Args:
    """Slack takes both: slack_sdk sends chat.* and views.* as JSON, the rest as a form."""
    args: Args = dict(parse_qsl(query, keep_blank_values=True))
    kind = content_type.split(";")[0].strip().lower()
    if not body:
        return args
    if kind == "application/json":
        try:
            parsed = json.loads(body)
        except ValueError:
            raise SlackError("invalid_json") from None
        if not isinstance(parsed, dict):
            raise SlackError("invalid_json")
        args.update(parsed)
    elif kind in ("", "application/x-www-form-urlencoded"):
        args.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    else:
        raise SlackError("invalid_form_data")
    return args


def _parse_json_arg(value: object, name: str, error: str) -> Any:
    """A structured argument arrives as JSON text in a form and as itself in JSON."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        raise SlackError(error, [f"[ERROR] {name} is not valid JSON"]) from None


def _flag(value: object) -> bool:
    return value is True or value in ("1", "true", "True")


def _thread_ts(args: Args) -> str | None:
    """Slack rejects a malformed thread_ts but, given a well-formed one naming no message,
    posts a reply nobody sees: this does the same, so thread() shows the bug."""
    value = args.get("thread_ts")
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _TS.match(value):
        raise SlackError("invalid_thread_ts", [f"[ERROR] {value} is not a valid thread_ts"])
    return value


def _content(args: Args, *, required: bool) -> tuple[str | None, list[Args] | None]:
    """The text and blocks of a message, refused with the error codes Slack uses."""
    text = args.get("text")
    if text is not None:
        text = str(text)
        if len(text) > MAX_TEXT:
            raise SlackError("msg_too_long")
    blocks = _blocks(args.get("blocks"))
    if required and not text and not blocks and not args.get("attachments"):
        raise SlackError("no_text")
    return text, blocks


def _blocks(raw: object) -> list[Args] | None:
    if raw is None:
        return None
    blocks = _parse_json_arg(raw, "blocks", "invalid_blocks")
    if not isinstance(blocks, list):
        raise SlackError("invalid_blocks", ["[ERROR] must be an array [json-pointer:/blocks]"])
    problems: list[str] = []
    _check_blocks(
        lambda where, why: problems.append(f"[ERROR] {why} [json-pointer:{where}]"),
        "/blocks",
        blocks,
        MAX_MESSAGE_BLOCKS,
    )
    if problems:
        raise SlackError("invalid_blocks", problems)
    return blocks


# -- views (https://docs.slack.dev/reference/views) --------------------------------------------


def _checked_view(raw: object, kind: str) -> Args:
    """A view argument, refused with Slack's errors when its shape is wrong."""
    view = _parse_json_arg(raw, "view", "invalid_arguments")
    if not isinstance(view, dict):
        raise SlackError("invalid_arguments", ["[ERROR] must be an object [json-pointer:/view]"])
    problems: list[str] = []

    def bad(where: str, why: str) -> None:
        problems.append(f"[ERROR] {why} [json-pointer:{where}]")

    if view.get("type") != kind:
        bad("/view/type", f"must be {kind}")
    if kind == "modal" or view.get("title") is not None:
        _check_text(bad, "/view/title", view.get("title"), 24, plain_only=True)
    for button in ("submit", "close"):
        if view.get(button) is not None:
            _check_text(bad, f"/view/{button}", view[button], 24, plain_only=True)
    for key, limit in (("callback_id", 255), ("external_id", 255), ("private_metadata", 3000)):
        value = view.get(key)
        if value is not None and value != "":
            _check_length(bad, f"/view/{key}", value, limit)
    blocks = view.get("blocks")
    if isinstance(blocks, list):
        _check_blocks(bad, "/view/blocks", blocks, MAX_MODAL_BLOCKS)
        inputs = [b for b in blocks if isinstance(b, dict) and b.get("type") == "input"]
        for i, block in enumerate(blocks):
            if isinstance(block, dict) and block.get("type") == "input":
                _check_input(bad, f"/view/blocks/{i}", block)
        if inputs and kind == "modal" and view.get("submit") is None:
            bad("/view/submit", "must be provided when the view holds input blocks")
        if inputs and kind == "home":
            bad("/view/blocks", "input blocks are not allowed in a home tab")
    else:
        bad("/view/blocks", "must be an array")
    if problems:
        raise SlackError("invalid_arguments", problems)
    return view


INPUT_ELEMENTS = frozenset(
    {
        "checkboxes",
        "conversations_select",
        "channels_select",
        "users_select",
        "datepicker",
        "email_text_input",
        "external_select",
        "multi_static_select",
        "number_input",
        "plain_text_input",
        "radio_buttons",
        "static_select",
        "timepicker",
        "url_text_input",
    }
)


def _check_input(bad: Report, at: str, block: Args) -> None:
    _check_text(bad, f"{at}/label", block.get("label"), 2000, plain_only=True)
    if block.get("hint") is not None:
        _check_text(bad, f"{at}/hint", block["hint"], 2000, plain_only=True)
    element = block.get("element")
    if not isinstance(element, dict) or element.get("type") not in INPUT_ELEMENTS:
        bad(f"{at}/element", "must be an input element")
        return
    if "action_id" in element:
        _check_length(bad, f"{at}/element/action_id", element["action_id"], 255)
    if element["type"] in ("static_select", "checkboxes", "radio_buttons"):
        limit = 100 if element["type"] == "static_select" else 10
        options = _check_elements(bad, f"{at}/element/options", element.get("options"), limit)
        values = []
        for j, option in enumerate(options):
            here = f"{at}/element/options/{j}"
            if not isinstance(option, dict):
                bad(here, "must be an option object")
                continue
            _check_text(bad, f"{here}/text", option.get("text"), 75)
            _check_length(bad, f"{here}/value", option.get("value"), 150)
            if option.get("description") is not None:
                _check_text(bad, f"{here}/description", option["description"], 75)
            values.append(option.get("value"))
        initial = element.get("initial_option")
        if isinstance(initial, dict) and initial.get("value") not in values:
            bad(f"{at}/element/initial_option", "must match one of the options")
    if element["type"] == "plain_text_input" and element.get("initial_value") is not None:
        limit = int(element.get("max_length") or 3000)
        _check_length(bad, f"{at}/element/initial_value", element["initial_value"], limit)


# -- Block Kit limits (https://docs.slack.dev/reference/block-kit) -----------------------------


def _check_blocks(bad: Report, at: str, blocks: list[Any], limit: int) -> None:
    if len(blocks) > limit:
        bad(at, f"no more than {limit} items allowed")
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        here = f"{at}/{i}"
        if not isinstance(block, dict):
            bad(here, "must be an object")
            continue
        kind = block.get("type")
        if kind not in BLOCK_TYPES:
            bad(f"{here}/type", f"unsupported block type: {kind}")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            _check_length(bad, f"{here}/block_id", block_id, 255)
            if block_id in block_ids:
                bad(f"{here}/block_id", f"duplicate block_id: {block_id}")
            block_ids.add(str(block_id))
        check = _BLOCK_CHECKS.get(str(kind))
        if check is not None:
            check(bad, here, block)


def _check_length(bad: Report, at: str, value: object, limit: int) -> None:
    if not isinstance(value, str):
        bad(at, "must be a string")
    elif len(value) > limit:
        bad(at, f"must be less than {limit + 1} characters")
    elif not value:
        bad(at, "must be more than 0 characters")


def _check_text(bad: Report, at: str, obj: object, limit: int, *, plain_only: bool = False) -> None:
    kinds = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if not isinstance(obj, dict):
        bad(at, "must be a text object")
        return
    if obj.get("type") not in kinds:
        bad(f"{at}/type", f"must be one of: {', '.join(kinds)}")
    _check_length(bad, f"{at}/text", obj.get("text"), limit)


def _check_elements(bad: Report, at: str, elements: object, limit: int) -> list[Any]:
    if not isinstance(elements, list) or not elements:
        bad(at, "must be a non-empty array")
        return []
    if len(elements) > limit:
        bad(at, f"no more than {limit} items allowed")
    return elements


def _check_element(bad: Report, at: str, element: object) -> None:
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        bad(at, "must be an element object with a type")
        return
    if "action_id" in element:
        _check_length(bad, f"{at}/action_id", element["action_id"], 255)
    if element["type"] == "button":
        _check_text(bad, f"{at}/text", element.get("text"), 75, plain_only=True)
        if "value" in element:
            _check_length(bad, f"{at}/value", element["value"], 2000)
        if "url" in element:
            _check_length(bad, f"{at}/url", element["url"], 3000)
    if isinstance(element.get("confirm"), dict):
        confirm = element["confirm"]
        _check_text(bad, f"{at}/confirm/title", confirm.get("title"), 100, plain_only=True)
        _check_text(bad, f"{at}/confirm/text", confirm.get("text"), 300)
        for key in ("confirm", "deny"):
            _check_text(bad, f"{at}/confirm/{key}", confirm.get(key), 30, plain_only=True)


def _check_section(bad: Report, at: str, block: Args) -> None:
    text, fields = block.get("text"), block.get("fields")
    if text is None and fields is None:
        bad(at, "must provide either text or fields")
    if text is not None:
        _check_text(bad, f"{at}/text", text, 3000)
    if fields is not None:
        for j, item in enumerate(_check_elements(bad, f"{at}/fields", fields, 10)):
            _check_text(bad, f"{at}/fields/{j}", item, 2000)
    if block.get("accessory") is not None:
        _check_element(bad, f"{at}/accessory", block["accessory"])


def _check_header(bad: Report, at: str, block: Args) -> None:
    _check_text(bad, f"{at}/text", block.get("text"), 150, plain_only=True)


def _check_actions(bad: Report, at: str, block: Args) -> None:
    for j, element in enumerate(_check_elements(bad, f"{at}/elements", block.get("elements"), 25)):
        _check_element(bad, f"{at}/elements/{j}", element)


def _check_context(bad: Report, at: str, block: Args) -> None:
    for j, element in enumerate(_check_elements(bad, f"{at}/elements", block.get("elements"), 10)):
        if not isinstance(element, dict) or "type" not in element:
            bad(f"{at}/elements/{j}", "must be an element object with a type")


def _check_markdown(bad: Report, at: str, block: Args) -> None:
    _check_length(bad, f"{at}/text", block.get("text"), 12_000)


_BLOCK_CHECKS: dict[str, Callable[[Report, str, Args], None]] = {
    "section": _check_section,
    "header": _check_header,
    "actions": _check_actions,
    "context": _check_context,
    "markdown": _check_markdown,
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's backlog of 5 drops connections from a burst of concurrent clients,
    # which then wait a second for TCP to retry.
    request_queue_size = 128
    api: FakeSlackApi


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.server.api.latency:
            time.sleep(self.server.api.latency)
        reply = self.server.api.handle(
            self.path,
            self.headers.get("Authorization"),
            self.headers.get("Content-Type") or "",
            body,
        )
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the recorded calls are the log a test reads."""
