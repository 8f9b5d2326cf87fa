"""Block Kit for rollbot's messages: pure functions from a record to blocks, built
with slack_sdk.models so Slack's limits fail in tests, not in production.

Every string taken from the record is the domain's plain text, often quoted from
pods, events and people: it goes through `untrusted()` (mrkdwn) or `plain()`
(plain_text), and rollbot's own emphasis and mentions are added around it."""

from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.assessment import headline
from bot.records import RollbackRecord, RollbackState, TimelineEntry
from bot.requests import DEFAULT_STRATEGY
from handlers.ids import ActionId, BlockId
from handlers.mrkdwn import (
    clip,
    code,
    escape,
    mention,
    mention_actor,
    mention_named,
    plain,
    untrusted,
)

MAX_CHANGE_LINES = 15
MAX_SECTION = 2900
OUTCOME_ICON = {
    RollbackState.SUCCEEDED: ":white_check_mark:",
    RollbackState.FAILED: ":x:",
    RollbackState.CANCELLED: ":no_entry_sign:",
    RollbackState.EXPIRED: ":hourglass:",
}


def state_label(state: RollbackState) -> str:
    return state.value.replace("_", " ")


def entry_text(entry: TimelineEntry) -> str:
    """A timeline entry for Slack: escaped, its actor (named by id) mentioned."""
    return mention_actor(untrusted(entry.message), entry.actor)


def _images(images: tuple[str, ...]) -> str:
    return ", ".join(code(i.split("=", 1)[-1]) for i in images)


def requester_line(record: RollbackRecord) -> str:
    if record.trigger == "automatic":
        return f"Opened automatically by rollbot — {untrusted(record.reason)}"
    return f"Requested by {mention(record.requested_by)}" + (
        f": {mention_named(untrusted(record.reason))}" if record.reason else ""
    )


#: How the headline names what a strategy does.
VERBS = {
    "restore": "Restore",
    "flag": "Set a feature flag on",
    "scale": "Scale",
    "divert": "Divert traffic of",
}


def title(record: RollbackRecord) -> str:
    """The headline, as plain text (escape it for mrkdwn)."""
    return f"{VERBS.get(record.strategy, 'Roll back')} {record.workload}"


def _state_line(label: str, text: str, images: tuple[str, ...]) -> str:
    line = f"{label}: {untrusted(text)}"
    return f"{line} {_images(images)}" if images else line


def summary_text(record: RollbackRecord) -> str:
    how = "" if record.strategy == DEFAULT_STRATEGY else f" ({untrusted(record.strategy)})"
    lines = [
        f"*Rollback* {code(record.id)} of *{untrusted(record.workload)}*{how}"
        f" in {code(record.namespace)}",
        requester_line(record),
        _state_line("Current", record.from_text, record.from_images),
        _state_line("Target", record.to_text, record.to_images),
        *(untrusted(fact) for fact in record.facts),
    ]
    return clip("\n".join(lines), MAX_SECTION)


def changes_text(record: RollbackRecord) -> str:
    shown = list(record.changes[:MAX_CHANGE_LINES])
    more = len(record.changes) - len(shown)
    lines = [f"• {untrusted(c)}" for c in shown] + ([f"…and {more} more"] if more else [])
    return clip("*What changes*\n" + ("\n".join(lines) or "nothing"), MAX_SECTION)


def assessment_text(record: RollbackRecord) -> str:
    facts = list(record.assessment)
    lines: list[str] = []
    if record.severity and record.recommendation is not None:
        lines.append(f"Severity: *{escape(record.severity)}* — {untrusted(record.recommendation)}")
        if facts and facts[0] == headline(record.severity, record.recommendation):
            facts = facts[1:]  # the same headline, as plain text
    lines += [untrusted(line) for line in facts]
    return clip("*Assessment*\n" + ("\n".join(lines) or "not available"), MAX_SECTION)


def confirmation_blocks(record: RollbackRecord) -> list[Block]:
    blocks: list[Block] = [
        HeaderBlock(text=plain(f"{title(record)}?")[:150]),
        SectionBlock(block_id=BlockId.SUMMARY, text=MarkdownTextObject(text=summary_text(record))),
        SectionBlock(
            block_id=BlockId.ASSESSMENT, text=MarkdownTextObject(text=assessment_text(record))
        ),
        SectionBlock(block_id=BlockId.CHANGES, text=MarkdownTextObject(text=changes_text(record))),
    ]
    if record.emergency:
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=":rotating_light: Emergency rollback: policy lets it run"
                        " without approval."
                    )
                ]
            )
        )
        return blocks
    if record.dry_run:
        blocks.append(
            ContextBlock(elements=[MarkdownTextObject(text="Dry run: nothing will be changed.")])
        )
        return blocks
    expires = int(record.expires_at.timestamp()) if record.expires_at else None
    blocks.append(
        ActionsBlock(
            block_id=BlockId.DECISION,
            elements=[
                ButtonElement(
                    text="Approve", action_id=ActionId.APPROVE, value=record.id, style="primary"
                ),
                ButtonElement(
                    text="Cancel", action_id=ActionId.CANCEL, value=record.id, style="danger"
                ),
            ],
        )
    )
    if expires:
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=f"Expires <!date^{expires}^{{time}}|in a while>. "
                        "Someone other than the requester must approve."
                    )
                ]
            )
        )
    return blocks


def recovery_buttons(record: RollbackRecord) -> list[ButtonElement]:
    """After a rollback that changed the cluster and then failed: the ways out."""
    changed = any(e.state is RollbackState.ROLLING_BACK for e in record.timeline)
    if record.state is not RollbackState.FAILED or not changed:
        return []
    buttons = []
    if record.strategy == "undo" and record.target_revision:  # "further": an older revision
        buttons.append(
            ButtonElement(
                text=f"Roll back further (before revision {record.target_revision})"[:75],
                action_id=ActionId.ROLL_FURTHER,
                value=record.id,
            )
        )
    if record.strategy not in ("scale", "divert", "flag"):
        buttons.append(
            ButtonElement(
                text="Restore the pre-rollback state",
                action_id=ActionId.RESTORE,
                value=record.id,
                style="danger",
            )
        )
    return buttons


def outcome_blocks(record: RollbackRecord) -> list[Block]:
    icon = OUTCOME_ICON.get(record.state, ":arrows_counterclockwise:")
    last = entry_text(record.timeline[-1]) if record.timeline else ""
    who = f" — approved by {mention(record.approved_by)}" if record.approved_by else ""
    blocks: list[Block] = [
        HeaderBlock(text=plain(f"{title(record)}: {record.state.value}")[:150]),
        SectionBlock(block_id=BlockId.SUMMARY, text=MarkdownTextObject(text=summary_text(record))),
    ]
    if record.dry_run:  # the plan is what a dry run was asked for: it stays
        blocks += [
            SectionBlock(
                block_id=BlockId.ASSESSMENT, text=MarkdownTextObject(text=assessment_text(record))
            ),
            SectionBlock(
                block_id=BlockId.CHANGES, text=MarkdownTextObject(text=changes_text(record))
            ),
        ]
    blocks.append(
        SectionBlock(
            block_id=BlockId.OUTCOME,
            text=MarkdownTextObject(
                text=clip(f"{icon} *{state_label(record.state)}*{who}\n{last}", MAX_SECTION)
            ),
        )
    )
    if buttons := recovery_buttons(record):
        blocks.append(ActionsBlock(block_id=BlockId.RECOVERY, elements=buttons))
    return blocks


def reassessment_blocks(record: RollbackRecord, text: str, offer: bool) -> list[Block]:
    blocks: list[Block] = [
        SectionBlock(
            block_id=BlockId.REASSESSED,
            text=MarkdownTextObject(text=clip(untrusted(text), MAX_SECTION)),
        )
    ]
    if offer:
        blocks.append(
            ActionsBlock(
                elements=[
                    ButtonElement(
                        text=plain(f"Ask for the rollback of {record.workload}")[:75],
                        action_id=ActionId.REQUEST_AGAIN,
                        value=record.id,
                        style="primary",
                    )
                ]
            )
        )
    return blocks


def as_dicts(blocks: list[Block]) -> list[dict[str, object]]:
    return [b.to_dict() for b in blocks]
