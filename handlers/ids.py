"""Every action_id and block_id rollbot's messages use, in one place."""

from __future__ import annotations

from enum import StrEnum


class ActionId(StrEnum):
    APPROVE = "rollback_approve"
    CANCEL = "rollback_cancel"
    ROLL_FURTHER = "rollback_further"
    RESTORE = "rollback_restore"
    REQUEST_AGAIN = "rollback_request_again"


class BlockId(StrEnum):
    SUMMARY = "rollback_summary"
    ASSESSMENT = "rollback_assessment"
    CHANGES = "rollback_changes"
    DECISION = "rollback_decision"
    OUTCOME = "rollback_outcome"
    RECOVERY = "rollback_recovery"
    REASSESSED = "rollback_reassessed"
