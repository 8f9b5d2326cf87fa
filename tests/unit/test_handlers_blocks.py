"""Block Kit from records: quoted text escaped, rollbot's own decoration kept."""

from __future__ import annotations

import json

from bot.records import RollbackState, requested
from handlers.blocks import (
    as_dicts,
    confirmation_blocks,
    entry_text,
    outcome_blocks,
    reassessment_blocks,
    summary_text,
)
from handlers.ids import ActionId

S = RollbackState
HOSTILE = "<!channel> <https://evil.example|Approved by SRE lead> & @here"


def hostile_record(**fields):
    record = requested("prod", "web", "U0ALICE", channel="C0PROD", reason=HOSTILE, **fields)
    return record.transition(
        S.ASSESSED,
        "assessed",
        from_revision=2,
        target_revision=1,
        from_images=("app=app:v2",),
        to_images=("app=app:v1<!here>",),
        facts=(f"Warning event: {HOSTILE}",),
        assessment=("Severity: high", f"web-1: ERROR {HOSTILE}"),
        changes=(f"container app: env MODE: {HOSTILE}",),
    )


def rendered(blocks) -> str:
    return json.dumps(as_dicts(blocks), ensure_ascii=False)


def test_quoted_text_in_a_confirmation_is_escaped_everywhere():
    shown = rendered(confirmation_blocks(hostile_record()))
    assert "<!channel>" not in shown and "<https://evil" not in shown and "<!here>" not in shown
    assert "@here" not in shown
    assert "&lt;!channel&gt; &lt;https://evil.example|Approved by SRE lead&gt; &amp;" in shown
    assert shown.count("&lt;!channel&gt;") == 4, "reason, fact, assessment and change"


def test_rollbots_own_decoration_stays_markup():
    text = summary_text(hostile_record())
    assert text.startswith("*Rollback* `")
    assert "Requested by <@U0ALICE>: &lt;!channel&gt;" in text
    assert "Target: revision 1 `app:v1&lt;!here&gt;`" in text


def test_a_requester_that_is_not_a_slack_id_is_not_a_mention():
    record = requested("prod", "web", "<!channel>", channel="C0PROD")
    assert "Requested by &lt;!channel&gt;" in summary_text(record)


def test_the_outcome_mentions_the_approver_and_escapes_the_last_step():
    record = hostile_record().transition(S.AWAITING_APPROVAL, "asked")
    record = record.transition(S.APPROVED, "approved by U0BOB", actor="U0BOB", approved_by="U0BOB")
    record = record.transition(S.BACKING_UP, "backup").transition(S.ROLLING_BACK, "rolling")
    record = record.transition(S.FAILED, f"pod said {HOSTILE}")
    blocks = as_dicts(outcome_blocks(record))
    [text] = [b["text"]["text"] for b in blocks if b.get("block_id") == "rollback_outcome"]
    assert text.startswith(":x: *failed* — approved by <@U0BOB>\npod said &lt;!channel&gt;")


def test_a_timeline_entry_names_its_actor_as_a_mention_and_nothing_else():
    record = requested("prod", "web", "U0ALICE").transition(
        S.CANCELLED, "cancelled by U0BOB <!channel>", actor="U0BOB"
    )
    assert entry_text(record.timeline[-1]) == "cancelled by <@U0BOB> &lt;!channel&gt;"


def test_a_reassessment_is_escaped_and_keeps_its_button():
    record = hostile_record()
    blocks = as_dicts(reassessment_blocks(record, f"Re-assessed: {HOSTILE}", True))
    assert "&lt;!channel&gt;" in blocks[0]["text"]["text"]
    assert blocks[1]["elements"][0]["action_id"] == ActionId.REQUEST_AGAIN


def test_huge_quoted_text_stays_within_slacks_section_limit():
    record = hostile_record().model_copy(update={"assessment": ("<" * 5000,)})
    for block in as_dicts(confirmation_blocks(record)):
        text = block.get("text", {}).get("text", "")
        assert len(text) <= 3000
        assert not text.rstrip("…").endswith(("&", "&l", "&lt")), "no half entity"


def test_a_finished_dry_run_keeps_its_plan_in_view():
    record = hostile_record(dry_run=True).transition(S.CANCELLED, "dry run: nothing was changed")
    ids = [b.get("block_id") for b in as_dicts(outcome_blocks(record))]
    assert ids[-3:] == ["rollback_assessment", "rollback_changes", "rollback_outcome"]
    plain_ids = [
        b.get("block_id")
        for b in as_dicts(outcome_blocks(record.model_copy(update={"dry_run": False})))
    ]
    assert "rollback_changes" not in plain_ids


def test_a_confirmation_across_an_incompatible_migration_calls_its_dbas_until_one_approved():
    from bot.migrations import SchemaCrossing

    crossing = SchemaCrossing(
        current_label="revision 2",
        target_label="revision 1",
        current="0042",
        target="0041",
        source="env var SCHEMA_VERSION",
        compatible=False,
        approvers=("S0DBAS", "U0DBA", "<!channel>"),
    )
    record = hostile_record().transition(S.AWAITING_APPROVAL, "asked", migration=crossing)
    shown = rendered(confirmation_blocks(record))
    assert "<!subteam^S0DBAS>, <@U0DBA>, &lt;!channel&gt; must approve it too" in shown
    approved = record.model_copy(update={"schema_approved_by": "U0DBA"})
    assert "must approve it too" not in rendered(confirmation_blocks(approved))
    compatible = record.model_copy(
        update={"migration": crossing.model_copy(update={"compatible": True})}
    )
    assert "must approve it too" not in rendered(confirmation_blocks(compatible))
