"""Every action_id, block_id and callback_id rollbot's messages and views use, in one place."""

from __future__ import annotations

from enum import StrEnum


class ActionId(StrEnum):
    APPROVE = "rollback_approve"
    CANCEL = "rollback_cancel"
    ROLL_FURTHER = "rollback_further"
    RESTORE = "rollback_restore"
    REQUEST_AGAIN = "rollback_request_again"
    #: Resume… on a rollback that holds GitOps reconciliation (asks what Git holds first).
    RESUME = "rollback_resume"
    #: Resume reconciliation, under the question that showed what Git holds.
    RESUME_CONFIRM = "rollback_resume_confirm"
    # The form's fields (each input block holds one element with its action_id).
    FORM_SERVICE = "form_service"
    FORM_NAMESPACE = "form_namespace"
    FORM_TARGET = "form_target"
    FORM_REASON = "form_reason"
    FORM_CHANNEL = "form_channel"
    FORM_OPTIONS = "form_options"


class BlockId(StrEnum):
    SUMMARY = "rollback_summary"
    ASSESSMENT = "rollback_assessment"
    CHANGES = "rollback_changes"
    DECISION = "rollback_decision"
    OUTCOME = "rollback_outcome"
    RECOVERY = "rollback_recovery"
    REASSESSED = "rollback_reassessed"
    RESUME = "rollback_resume"
    FORM_SERVICE = "form_service"
    FORM_NAMESPACE = "form_namespace"
    FORM_TARGET = "form_target"
    FORM_REASON = "form_reason"
    FORM_CHANNEL = "form_channel"
    FORM_OPTIONS = "form_options"
    HOME_RUNNING = "home_running"
    HOME_OUTCOMES = "home_outcomes"
    HOME_HELD = "home_held"
    HOME_RECONCILIATION = "home_reconciliation"


class CallbackId(StrEnum):
    #: The global shortcut "Roll back…" (the manifest declares it with this id).
    SHORTCUT = "rollback_form"
    #: The rollback form, a modal.
    FORM = "rollback_request"


#: The form's checkbox values: a dry run; an Argo Rollout's abort made permanent.
DRY_RUN = "dry_run"
PERMANENT = "permanent"
