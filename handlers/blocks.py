"""Block Kit for rollbot's messages: pure functions from a record to blocks, built
with slack_sdk.models so Slack's limits fail in tests, not in production."""

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

from bot.records import RollbackRecord, RollbackState
from handlers.ids import ActionId, BlockId

MAX_CHANGE_LINES = 15
OUTCOME_ICON = {
    RollbackState.SUCCEEDED: ":white_check_mark:",
    RollbackState.FAILED: ":x:",
    RollbackState.CANCELLED: ":no_entry_sign:",
    RollbackState.EXPIRED: ":hourglass:",
}


def _images(images: tuple[str, ...]) -> str:
    return ", ".join(f"`{i.split('=', 1)[-1]}`" for i in images) or "?"


def _clip(text: str, limit: int = 2900) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def requester_line(record: RollbackRecord) -> str:
    if record.trigger == "automatic":
        return f"Opened automatically by rollbot — {record.reason}"
    return f"Requested by <@{record.requested_by}>" + (
        f": {record.reason}" if record.reason else ""
    )


def summary_text(record: RollbackRecord) -> str:
    lines = [
        f"*Rollback* `{record.id}` of *{record.workload}* in `{record.namespace}`",
        requester_line(record),
        f"Current: revision {record.from_revision} {_images(record.from_images)}",
        f"Target: revision {record.target_revision} {_images(record.to_images)}",
    ]
    return _clip("\n".join(lines))


def changes_text(record: RollbackRecord) -> str:
    shown = list(record.changes[:MAX_CHANGE_LINES])
    more = len(record.changes) - len(shown)
    lines = [f"• {c}" for c in shown] + ([f"…and {more} more"] if more else [])
    return _clip("*What changes*\n" + ("\n".join(lines) or "nothing"))


def assessment_text(record: RollbackRecord) -> str:
    return _clip("*Assessment*\n" + ("\n".join(record.assessment) or "not available"))


def confirmation_blocks(record: RollbackRecord) -> list[Block]:
    blocks: list[Block] = [
        HeaderBlock(text=f"Roll back {record.workload}?"[:150]),
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


def outcome_blocks(record: RollbackRecord) -> list[Block]:
    icon = OUTCOME_ICON.get(record.state, ":arrows_counterclockwise:")
    last = record.timeline[-1].message if record.timeline else ""
    who = f" — approved by <@{record.approved_by}>" if record.approved_by else ""
    return [
        HeaderBlock(text=f"Rollback of {record.workload}: {record.state.value}"[:150]),
        SectionBlock(block_id=BlockId.SUMMARY, text=MarkdownTextObject(text=summary_text(record))),
        SectionBlock(
            block_id=BlockId.OUTCOME,
            text=MarkdownTextObject(
                text=_clip(f"{icon} *{record.state.value.replace('_', ' ')}*{who}\n{last}")
            ),
        ),
    ]


def as_dicts(blocks: list[Block]) -> list[dict[str, object]]:
    return [b.to_dict() for b in blocks]
