"""Where a rollback reports to, as the domain sees it: a person watching.

The worker speaks only to this protocol. The Slack thread is one
implementation (in `handlers/`); a terminal or a test recorder are others.

Every text handed to a sink is plain text: no mrkdwn, emoji or `<@user>`
mentions. Much of it quotes pods, events and people (untrusted), so the sink
escapes all of it for its medium; what a line means (good news, a warning)
travels as a `Tone`, and whom to alert as a user id, never as markup.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from bot.records import RollbackRecord
from bot.rollout import RolloutState


class Tone(StrEnum):
    """What a line of progress means to the person reading it."""

    INFO = "info"
    GOOD = "good"
    WARNING = "warning"


class ProgressSink(Protocol):
    def confirmation(self, record: RollbackRecord) -> str | None:
        """Ask for approval of an assessed rollback; the id of the thread it starts."""

    def milestone(
        self,
        record: RollbackRecord,
        text: str,
        tone: Tone = Tone.INFO,
        alert: str | None = None,
    ) -> None:
        """A step worth its own line in the thread (backup saved, rollback applied...);
        `alert`: the id of a person to notify by it (the requester, when it went bad)."""

    def rollout(
        self, record: RollbackRecord, state: RolloutState, workload: str | None = None
    ) -> None:
        """Live progress (of one of several Deployments, when `workload` is given);
        implementations coalesce these (they come fast)."""

    def reassessed(self, record: RollbackRecord, text: str, offer_rollback: bool) -> None:
        """A "monitor" recommendation assessed again; `offer_rollback`: with a one-click
        way to ask for the rollback (when the confirmation is no longer open)."""

    def finished(self, record: RollbackRecord) -> None:
        """The record reached a terminal state: say how it ended."""

    def report(
        self,
        record: RollbackRecord,
        summary: str,
        files: dict[str, str],
        announce_to: str | None = None,
    ) -> None:
        """The filled-in report: a short summary, and the full texts as files;
        the summary also goes to `announce_to` (an incidents channel) if given."""

    def tell(self, channel: str, user: str, text: str, tone: Tone = Tone.INFO) -> None:
        """An answer for one person alone (history, status)."""

    def resume_question(self, record: RollbackRecord, text: str) -> None:
        """Before reconciliation held by `record` is resumed: what Git holds against
        what runs, with a way to resume it (in the thread, for all to read)."""

    def refused(self, record: RollbackRecord, text: str) -> None:
        """The rollback could not go on, for a reason its requester must read."""
