"""The rollback's thread in Slack: the ProgressSink the worker reports to.

Live rollout progress edits one status message at most about once a second
(Slack rate-limits chat.update); milestones are replies of their own; the root
message is updated with the outcome. Progress is shown from the worker's own
thread, which must go on watching the rollout: a 429 there is not waited out;
the line is shown again after its Retry-After from a timer, with whatever state
is latest by then — so neither the worker nor another component's progress
waits for one line's rate limit.

The domain's text is plain and partly quoted from pods, events and people: it is
escaped here (`handlers.mrkdwn`), and the tone emoji and mentions added around it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.progress import Tone
from bot.records import RollbackRecord
from bot.rollout import RolloutPhase, RolloutState
from handlers.blocks import (
    as_dicts,
    assessment_file,
    confirmation_blocks,
    drill_marked,
    entry_text,
    needs_assessment_file,
    outcome_blocks,
    reassessment_blocks,
    resume_question_blocks,
    state_label,
    title,
)
from handlers.mrkdwn import clip, mention, redacted, untrusted
from handlers.people import NamesOf, with_names
from handlers.unwelcome import not_announced, slack_is_away

log = logging.getLogger("rollbot.thread")
MIN_EDIT_INTERVAL = 1.0
MAX_TEXT = 3900
TONE_PREFIX = {Tone.INFO: "", Tone.GOOD: ":white_check_mark: ", Tone.WARNING: ":warning: "}


def decorated(text: str, tone: Tone = Tone.INFO, alert: str | None = None) -> str:
    """Domain text as a line of the thread: escaped, with rollbot's tone and alert."""
    line = TONE_PREFIX[tone] + untrusted(text)
    return clip(line, MAX_TEXT) + (f" {mention(alert)}" if alert else "")


def answering_429_at_once(client: WebClient, timeout: int | None = None) -> WebClient:
    """`client`, less the retry handler that sleeps out a 429's Retry-After (and
    with `timeout` seconds for a call, if given)."""
    if not isinstance(client, WebClient):
        return client  # a stand-in (the outbox's once-only calls): used as it is
    return WebClient(
        token=client.token,
        base_url=client.base_url,
        timeout=client.timeout if timeout is None else timeout,
        ssl=client.ssl,
        proxy=client.proxy,
        headers=dict(client.headers),
        retry_handlers=[
            h for h in client.retry_handlers if not isinstance(h, RateLimitErrorRetryHandler)
        ],
    )


def _retry_after(err: SlackApiError) -> float | None:
    """The seconds a 429 asks to wait; None for any other error."""
    if getattr(err.response, "status_code", 200) != 429:
        return None
    headers = getattr(err.response, "headers", None) or {}
    value = headers.get("Retry-After") or headers.get("retry-after") or "1"
    try:
        return max(1.0, float(value))
    except ValueError:
        return 1.0


@dataclass
class _LiveLine:
    """One Deployment's live status message, and the edit it is waiting to show."""

    ts: str | None = None
    shown: str = ""
    at: float = 0.0
    wanted: str = ""
    wanted_final: bool = False
    #: A thread is talking to Slack for this line; others leave `wanted` for it.
    busy: bool = False


class SlackThreadSink:
    def __init__(
        self,
        client: WebClient,
        min_interval: float = MIN_EDIT_INTERVAL,
        protected: Callable[[str], str | None] = lambda namespace: None,
        names_of: NamesOf = lambda _ids: {},
    ) -> None:
        self.client = client
        #: namespace → the environment whose Approve asks first (`bot.policy.protected_where`).
        self.protected = protected
        #: People's names for the files (none: ids stay ids).
        self.names_of = names_of
        self._live_client = answering_429_at_once(client)
        self.min_interval = min_interval
        #: (record, workload) → its live line: one per Deployment being rolled out.
        self._status: dict[tuple[str, str], _LiveLine] = {}
        #: Guards `_status` and the lines' fields; never held over a Slack call.
        self._lock = threading.Lock()

    def confirmation(self, record: RollbackRecord) -> str | None:
        response = self.client.chat_postMessage(
            channel=record.channel,
            text=f"{untrusted(title(record))}?",
            blocks=as_dicts(confirmation_blocks(record, self.protected(record.namespace))),
        )
        thread = str(response["ts"])
        if needs_assessment_file(record):
            self._assessment_file(record, thread)
        return thread

    def _assessment_file(self, record: RollbackRecord, thread: str) -> None:
        """What the confirmation could not hold, whole, in its thread. A refusal of the
        file leaves the confirmation as it is (Slack down is retried: it is not one)."""
        name = f"{record.id}-assessment.txt"
        try:
            self.client.files_upload_v2(
                channel=record.channel,
                thread_ts=thread,
                file_uploads=[
                    {"content": redacted(assessment_file(record)), "filename": name, "title": name}
                ],
            )
        except SlackApiError as err:
            status = getattr(err.response, "status_code", 200)
            if status == 429 or status >= 500:
                raise
            log.warning("%s: the assessment file was refused: %s", record.id, err)

    def milestone(
        self,
        record: RollbackRecord,
        text: str,
        tone: Tone = Tone.INFO,
        alert: str | None = None,
    ) -> None:
        self.client.chat_postMessage(
            channel=record.channel,
            thread_ts=record.thread_ts,
            text=decorated(drill_marked(record, text), tone, alert),
        )

    def rollout(
        self, record: RollbackRecord, state: RolloutState, workload: str | None = None
    ) -> None:
        key = (record.id, workload or "")
        text = (
            f":arrows_counterclockwise: {untrusted(state.message)} "
            f"({state.available}/{state.desired} available)"
        )
        with self._lock:
            line = self._status.setdefault(key, _LiveLine())
            line.wanted = text
            line.wanted_final = line.wanted_final or state.phase is RolloutPhase.COMPLETE
            if line.busy:
                return  # the call under way shows it when it returns (if it must)
            line.busy = True
        self._show(record, line)

    def _show(self, record: RollbackRecord, line: _LiveLine) -> None:
        """Bring the live line up to date, holding the lock only between Slack calls:
        the first state is posted, a later one edited in at most every `min_interval`
        (the final one always), and what arrived meanwhile shown by the last call.
        Rate-limited, the line stays busy and is shown again after the Retry-After."""
        again_in: float | None = None
        try:
            while True:
                with self._lock:
                    text, ts = line.wanted, line.ts
                    due = time.monotonic() - line.at >= self.min_interval
                    if text == line.shown or (ts is not None and not (line.wanted_final or due)):
                        return  # coalesced: the next edit (or the final one) shows it
                try:
                    if ts is None:
                        response = self._live_client.chat_postMessage(
                            channel=record.channel, thread_ts=record.thread_ts, text=text
                        )
                        ts = str(response["ts"])
                    else:
                        self._live_client.chat_update(channel=record.channel, ts=ts, text=text)
                except SlackApiError as err:
                    again_in = _retry_after(err)
                    if again_in is None:
                        raise
                    return
                with self._lock:
                    line.ts, line.shown, line.at = ts, text, time.monotonic()
                    if line.wanted == text:
                        line.wanted_final = False
        finally:
            if again_in is None:
                with self._lock:
                    line.busy = False
            else:
                retry = threading.Timer(again_in, self._show_again, (record, line))
                retry.daemon = True
                retry.start()

    def _show_again(self, record: RollbackRecord, line: _LiveLine) -> None:
        try:
            self._show(record, line)
        except (SlackClientError, OSError) as err:  # progress is best effort
            log.info("live progress of %s not shown: %s", record.id, err)

    def reassessed(self, record: RollbackRecord, text: str, offer_rollback: bool) -> None:
        self.client.chat_postMessage(
            channel=record.channel,
            thread_ts=record.thread_ts,
            text=clip(untrusted(text.split("\n", 1)[0]), MAX_TEXT),
            blocks=as_dicts(reassessment_blocks(record, text, offer_rollback)),
        )

    def finished(self, record: RollbackRecord) -> None:
        with self._lock:
            for key in [k for k in self._status if k[0] == record.id]:
                del self._status[key]
        last = entry_text(record.timeline[-1]) if record.timeline else ""
        if record.thread_ts:
            self.client.chat_update(
                channel=record.channel,
                ts=record.thread_ts,
                text=f"{untrusted(title(record))}: {state_label(record.state)}",
                blocks=as_dicts(outcome_blocks(record)),
            )
            self.client.chat_postMessage(
                channel=record.channel,
                thread_ts=record.thread_ts,
                text=clip(
                    drill_marked(record, f"Rollback {record.id} {state_label(record.state)}: ")
                    + last,
                    MAX_TEXT,
                ),
            )
        else:
            self.client.chat_postMessage(
                channel=record.channel,
                text=drill_marked(record, f"Rollback {record.id}: {state_label(record.state)}"),
                blocks=as_dicts(outcome_blocks(record)),
            )

    def report(
        self,
        record: RollbackRecord,
        summary: str,
        files: dict[str, str],
        announce_to: str | None = None,
    ) -> None:
        text = clip(untrusted(summary), MAX_TEXT)
        self.client.chat_postMessage(channel=record.channel, thread_ts=record.thread_ts, text=text)
        # Files are not mrkdwn (nothing to escape), but they quote the same sources;
        # outside Slack an `@U123` a person wrote means nothing: their name does.
        self.client.files_upload_v2(
            channel=record.channel,
            thread_ts=record.thread_ts,
            file_uploads=[
                {
                    "content": with_names(redacted(content), self.names_of),
                    "filename": name,
                    "title": name,
                }
                for name, content in files.items()
            ],
        )
        if announce_to and announce_to != record.channel:
            self._announce(record, announce_to, text)

    def _announce(self, record: RollbackRecord, channel: str, text: str) -> None:
        """The summary in the incidents channel too: last, so a channel that is gone or
        closed to rollbot costs the thread nothing, and said there when it fails."""
        try:
            self.client.chat_postMessage(channel=channel, text=text)
        except SlackApiError as err:
            if slack_is_away(err):
                raise  # tried again later, with the calls already made kept
            self.client.chat_postMessage(
                channel=record.channel,
                thread_ts=record.thread_ts,
                text=decorated(
                    not_announced(channel, str(err.response.get("error"))), Tone.WARNING
                ),
            )

    def tell(self, channel: str, user: str, text: str, tone: Tone = Tone.INFO) -> None:
        self.client.chat_postEphemeral(channel=channel, user=user, text=decorated(text, tone))

    def resume_question(self, record: RollbackRecord, text: str) -> None:
        self.client.chat_postMessage(
            channel=record.channel,
            thread_ts=record.thread_ts,
            text=clip(untrusted(text.split("\n", 1)[0]), MAX_TEXT),
            blocks=as_dicts(resume_question_blocks(record, text)),
        )

    def refused(self, record: RollbackRecord, text: str) -> None:
        line = decorated(text, Tone.WARNING)
        try:
            self.client.chat_postEphemeral(
                channel=record.channel, user=record.requested_by, text=line
            )
        except SlackApiError:
            # Ephemeral messages fail outside channels the bot is in; say it in the open.
            self.client.chat_postMessage(channel=record.channel, text=line)
        if record.thread_ts:
            self.client.chat_postMessage(
                channel=record.channel, thread_ts=record.thread_ts, text=line
            )
