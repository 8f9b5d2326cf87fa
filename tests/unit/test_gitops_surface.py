"""GitOps holds where people meet them: the outcome's Resume button, the resume
question, `/rollback resume ID`, and who may resume."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bot.commands import CommandError, parse_command
from bot.config import RollbotConfig
from bot.gitops.holds import ReconciliationHold
from bot.policy import NotAllowed, check_may_resume
from bot.records import RollbackRecord, RollbackState, requested
from handlers.blocks import as_dicts, outcome_blocks, resume_question_blocks
from handlers.ids import ActionId

S = RollbackState
HELD = ReconciliationHold(
    kind="Kustomization",
    namespace="flux-system",
    name="apps",
    previous=json.dumps({"suspend": None}),
    held_at=datetime(2026, 12, 2, 2, 31, tzinfo=UTC),
)


def _succeeded(*holds: ReconciliationHold) -> RollbackRecord:
    record = requested("prod", "web", "U0ALICE", channel="C0OPS")
    for state in (S.ASSESSED, S.AWAITING_APPROVAL, S.APPROVED, S.BACKING_UP):
        record = record.transition(state, str(state))
    record = record.transition(S.ROLLING_BACK, "x").transition(S.VERIFYING, "v")
    return record.transition(S.SUCCEEDED, "healthy", holds=holds)


def _buttons(blocks: list[dict[str, object]]) -> list[str]:
    text = json.dumps(blocks)
    return [a.value for a in ActionId if f'"{a.value}"' in text]


def test_the_outcome_of_a_holding_rollback_says_so_and_offers_resume() -> None:
    blocks = as_dicts(outcome_blocks(_succeeded(HELD)))
    text = json.dumps(blocks)
    assert "Reconciliation held: Flux Kustomization flux-system/apps: suspended" in text
    assert ActionId.RESUME.value in _buttons(blocks)


def test_no_resume_once_resumed() -> None:
    resumed = HELD.model_copy(update={"resumed_at": datetime.now(UTC), "resumed_by": "U0C"})
    assert ActionId.RESUME.value not in _buttons(as_dicts(outcome_blocks(_succeeded(resumed))))


def test_the_resume_question_escapes_what_it_quotes_and_asks_before_resuming() -> None:
    blocks = as_dicts(resume_question_blocks(_succeeded(HELD), "Git holds <!channel> main@sha1:1"))
    text = json.dumps(blocks)
    assert "<!channel>" not in text
    assert ActionId.RESUME_CONFIRM.value in _buttons(blocks)
    assert '"confirm"' in text  # Slack asks "Resume reconciliation?" before the click counts


def test_resume_takes_one_rollback_id() -> None:
    command = parse_command("resume rb-1a2b3c4d", "default", {})
    assert (command.action, command.record_id) == ("resume", "rb-1a2b3c4d")
    with pytest.raises(CommandError):
        parse_command("resume web", "default", {})
    with pytest.raises(CommandError):
        parse_command("resume", "default", {})


def test_only_those_who_may_approve_may_resume() -> None:
    config = RollbotConfig.model_validate(
        {"environments": {"prod": {"namespaces": ["prod"], "approvers": ["U0LEAD"]}}}
    )
    record = _succeeded(HELD)
    check_may_resume(config, record, "U0LEAD")
    with pytest.raises(NotAllowed, match="only those who may approve rollbacks in prod"):
        check_may_resume(config, record, "U0ALICE")
