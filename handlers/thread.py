"""The rollback's thread in Slack: the ProgressSink the worker reports to.

Live rollout progress edits one status message at most about once a second
(Slack rate-limits chat.update); milestones are replies of their own; the root
message is updated with the outcome. 429s are retried after Retry-After by the
client's retry handler.
"""

from __future__ import annotations

import threading
import time

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.progress import Tone
from bot.records import RollbackRecord
from bot.rollout import RolloutPhase, RolloutState
from handlers.blocks import (
    as_dicts,
    confirmation_blocks,
    outcome_blocks,
    reassessment_blocks,
    title,
)

MIN_EDIT_INTERVAL = 1.0
_TONE_PREFIX = {Tone.INFO: "", Tone.GOOD: ":white_check_mark: ", Tone.WARNING: ":warning: "}


class SlackThreadSink:
    def __init__(self, client: WebClient, min_interval: float = MIN_EDIT_INTERVAL) -> None:
        self.client = client
        self.min_interval = min_interval
        #: (record, workload) → (ts, at, text): one live line per Deployment being rolled out.
        self._status: dict[tuple[str, str], tuple[str, float, str]] = {}
        self._lock = threading.Lock()

    def confirmation(self, record: RollbackRecord) -> str | None:
        response = self.client.chat_postMessage(
            channel=record.channel,
            text=f"{title(record)}?",
            blocks=as_dicts(confirmation_blocks(record)),
        )
        return str(response["ts"])

    def milestone(
        self,
        record: RollbackRecord,
        text: str,
        tone: Tone = Tone.INFO,
        alert: str | None = None,
    ) -> None:
        text = _TONE_PREFIX[tone] + text + (f" <@{alert}>" if alert else "")
        self.client.chat_postMessage(channel=record.channel, thread_ts=record.thread_ts, text=text)

    def rollout(
        self, record: RollbackRecord, state: RolloutState, workload: str | None = None
    ) -> None:
        key = (record.id, workload or "")
        text = (
            f":arrows_counterclockwise: {state.message} "
            f"({state.available}/{state.desired} available)"
        )
        with self._lock:
            current = self._status.get(key)
            if current is None:
                response = self.client.chat_postMessage(
                    channel=record.channel, thread_ts=record.thread_ts, text=text
                )
                self._status[key] = (str(response["ts"]), time.monotonic(), text)
                return
            ts, at, shown = current
            final = state.phase is RolloutPhase.COMPLETE
            if text == shown or (not final and time.monotonic() - at < self.min_interval):
                return  # coalesced: the next edit (or the final one) shows it
            self.client.chat_update(channel=record.channel, ts=ts, text=text)
            self._status[key] = (ts, time.monotonic(), text)

    def reassessed(self, record: RollbackRecord, text: str, offer_rollback: bool) -> None:
        self.client.chat_postMessage(
            channel=record.channel,
            thread_ts=record.thread_ts,
            text=text.split("\n", 1)[0],
            blocks=as_dicts(reassessment_blocks(record, text, offer_rollback)),
        )

    def finished(self, record: RollbackRecord) -> None:
        with self._lock:
            for key in [k for k in self._status if k[0] == record.id]:
                del self._status[key]
        if record.thread_ts:
            self.client.chat_update(
                channel=record.channel,
                ts=record.thread_ts,
                text=f"{title(record)}: {record.state.value}",
                blocks=as_dicts(outcome_blocks(record)),
            )
            self.client.chat_postMessage(
                channel=record.channel,
                thread_ts=record.thread_ts,
                text=f"Rollback {record.id} {record.state.value.replace('_', ' ')}: "
                f"{record.timeline[-1].message if record.timeline else ''}",
            )
        else:
            self.client.chat_postMessage(
                channel=record.channel,
                text=f"Rollback {record.id}: {record.state.value}",
                blocks=as_dicts(outcome_blocks(record)),
            )

    def report(
        self,
        record: RollbackRecord,
        summary: str,
        files: dict[str, str],
        announce_to: str | None = None,
    ) -> None:
        if announce_to and announce_to != record.channel:
            self.client.chat_postMessage(channel=announce_to, text=summary[:3900])
        self.client.chat_postMessage(
            channel=record.channel, thread_ts=record.thread_ts, text=summary[:3900]
        )
        self.client.files_upload_v2(
            channel=record.channel,
            thread_ts=record.thread_ts,
            file_uploads=[
                {"content": text, "filename": name, "title": name} for name, text in files.items()
            ],
        )

    def tell(self, channel: str, user: str, text: str, tone: Tone = Tone.INFO) -> None:
        text = _TONE_PREFIX[tone] + text
        self.client.chat_postEphemeral(channel=channel, user=user, text=text[:3900])

    def refused(self, record: RollbackRecord, text: str) -> None:
        try:
            self.client.chat_postEphemeral(
                channel=record.channel, user=record.requested_by, text=f":warning: {text}"
            )
        except SlackApiError:
            # Ephemeral messages fail outside channels the bot is in; say it in the open.
            self.client.chat_postMessage(channel=record.channel, text=f":warning: {text}")
        if record.thread_ts:
            self.client.chat_postMessage(
                channel=record.channel, thread_ts=record.thread_ts, text=f":warning: {text}"
            )
