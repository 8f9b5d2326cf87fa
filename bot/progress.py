"""Where a rollback reports to, as the domain sees it: a person watching.

The worker speaks only to this protocol. The Slack thread is one
implementation (in `handlers/`); a terminal or a test recorder are others.
"""

from __future__ import annotations

from typing import Protocol

from bot.records import RollbackRecord
from bot.rollout import RolloutState


class ProgressSink(Protocol):
    def confirmation(self, record: RollbackRecord) -> str | None:
        """Ask for approval of an assessed rollback; the id of the thread it starts."""

    def milestone(self, record: RollbackRecord, text: str) -> None:
        """A step worth its own line in the thread (backup saved, rollback applied...)."""

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

    def tell(self, channel: str, user: str, text: str) -> None:
        """An answer for one person alone (history, status)."""

    def refused(self, record: RollbackRecord, text: str) -> None:
        """The rollback could not go on, for a reason its requester must read."""
