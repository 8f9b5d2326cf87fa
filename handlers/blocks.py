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
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
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
    mention_listed,
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
    return drill_marked(record, f"{VERBS.get(record.strategy, 'Roll back')} {record.workload}")


def drill_marked(record: RollbackRecord, text: str) -> str:
    """A drill's messages say so first, so nobody takes one for an incident."""
    if record.trigger == "drill-forward":
        return f"DRILL (forward again) · {text}"
    return f"DRILL · {text}" if record.drill else text


def _state_line(label: str, text: str, images: tuple[str, ...]) -> str:
    line = f"{label}: {untrusted(text)}"
    return f"{line} {_images(images)}" if images else line


#: Where a section that does not fit says the rest is.
REST_IN_FILE = "\n_…the whole assessment is in the file in the thread._"


def _fit(escaped: str) -> str:
    """A section's text within Slack's limit, saying where the rest is when cut."""
    if len(escaped) <= MAX_SECTION:
        return escaped
    return clip(escaped, MAX_SECTION - len(REST_IN_FILE)) + REST_IN_FILE


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
    return _fit("\n".join(lines))


def changes_text(record: RollbackRecord) -> str:
    shown = list(record.changes[:MAX_CHANGE_LINES])
    more = len(record.changes) - len(shown)
    lines = [f"• {untrusted(c)}" for c in shown]
    if more:
        lines.append(f"…and {more} more, in the assessment file in the thread")
    return _fit("*What changes*\n" + ("\n".join(lines) or "nothing"))


def _assessment_lines(record: RollbackRecord) -> list[str]:
    """The assessment as plain text: the severity's headline, then each finding."""
    facts = list(record.assessment)
    lines: list[str] = []
    if record.severity and record.recommendation is not None:
        lines.append(f"Severity: {record.severity} — {record.recommendation}")
        if facts and facts[0] == headline(record.severity, record.recommendation):
            facts = facts[1:]  # the same headline
    return lines + facts


def assessment_text(record: RollbackRecord) -> str:
    lines = _assessment_lines(record)
    shown = [untrusted(line) for line in lines]
    if record.severity and record.recommendation is not None:
        shown[0] = f"Severity: *{escape(record.severity)}* — {untrusted(record.recommendation)}"
    return _fit("*Assessment*\n" + ("\n".join(shown) or "not available"))


def needs_assessment_file(record: RollbackRecord) -> bool:
    """Whether the confirmation had to leave part of the plan out (Slack takes 3,000
    characters a section): the whole of it then goes into the thread as a file."""
    return len(record.changes) > MAX_CHANGE_LINES or any(
        text.endswith(REST_IN_FILE)
        for text in (summary_text(record), assessment_text(record), changes_text(record))
    )


def assessment_file(record: RollbackRecord) -> str:
    """The whole plan and assessment, plain text (the sink redacts it on upload)."""
    parts = [
        f"Rollback {record.id} of {record.workload} in {record.namespace}",
        f"Current: {record.from_text} {', '.join(record.from_images)}".rstrip(),
        f"Target: {record.to_text} {', '.join(record.to_images)}".rstrip(),
        *record.facts,
        "",
        "Assessment",
        *(_assessment_lines(record) or ["not available"]),
        "",
        "What changes",
        *(f"- {change}" for change in record.changes or ("nothing",)),
    ]
    return "\n".join(parts) + "\n"


def approval_question(record: RollbackRecord, where: str) -> str:
    """ "Roll back family-assistant in prod to revision 41?" (plain text)."""
    to = ""
    if record.target_label or record.target_revision or record.to_tag:
        to = f" to {record.to_text}"
    return f"{title(record)} in {where}{to}?"


def approve_button(record: RollbackRecord, protected_in: str | None = None) -> ButtonElement:
    """Approve; where policy protects the environment, it asks first, so that a stray
    tap on a phone does nothing."""
    confirm = None
    if protected_in:
        confirm = ConfirmObject(
            title="Approve this rollback?",
            text=PlainTextObject(text=plain(approval_question(record, protected_in))[:300]),
            confirm="Approve",
            deny="Not yet",
        )
    return ButtonElement(
        text="Approve",
        action_id=ActionId.APPROVE,
        value=record.id,
        style="primary",
        confirm=confirm,
    )


def confirmation_blocks(record: RollbackRecord, protected_in: str | None = None) -> list[Block]:
    """`protected_in`: the environment whose policy asks "are you sure?" on Approve."""
    blocks: list[Block] = [
        HeaderBlock(text=plain(f"{title(record)}?")[:150]),
        SectionBlock(block_id=BlockId.SUMMARY, text=MarkdownTextObject(text=summary_text(record))),
        SectionBlock(
            block_id=BlockId.ASSESSMENT, text=MarkdownTextObject(text=assessment_text(record))
        ),
        SectionBlock(block_id=BlockId.CHANGES, text=MarkdownTextObject(text=changes_text(record))),
    ]
    if record.emergency and record.state is not RollbackState.AWAITING_APPROVAL:
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
    if record.migration is not None and record.migration.gated and not record.schema_approved_by:
        dbas = ", ".join(mention_listed(a) for a in record.migration.approvers) or "a DBA"
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=f":file_cabinet: It crosses an incompatible database migration: "
                        f"{dbas} must approve it too."
                    )
                ]
            )
        )
    if record.emergency:  # across an incompatible migration: a DBA must still approve
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=":rotating_light: Emergency rollback: the usual approval is skipped"
                        " by policy; it crosses an incompatible migration, so a DBA approves."
                    )
                ]
            )
        )
    expires = int(record.expires_at.timestamp()) if record.expires_at else None
    blocks.append(
        ActionsBlock(
            block_id=BlockId.DECISION,
            elements=[
                approve_button(record, protected_in),
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
    if record.strategy not in ("scale", "divert", "flag", "argo-rollouts"):
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
    return blocks + held_blocks(record)


def held_blocks(record: RollbackRecord) -> list[Block]:
    """While the rollback holds GitOps reconciliation: since when, and Resume."""
    if not record.holding:
        return []
    lines = [
        f":pause_button: Reconciliation held: {untrusted(h.held_text())}"
        + (
            f", since <!date^{int(h.held_at.timestamp())}^{{date_short}} {{time}}|then>"
            if h.held_at
            else ""
        )
        for h in record.holding
    ]
    return [
        SectionBlock(
            block_id=BlockId.RESUME,
            text=MarkdownTextObject(text=clip("\n".join(lines), MAX_SECTION)),
            accessory=ButtonElement(text="Resume…", action_id=ActionId.RESUME, value=record.id),
        )
    ]


def resume_question_blocks(record: RollbackRecord, text: str) -> list[Block]:
    """What Git holds against what runs, and the button that resumes."""
    return [
        SectionBlock(
            block_id=BlockId.RESUME,
            text=MarkdownTextObject(text=clip(untrusted(text), MAX_SECTION)),
        ),
        ActionsBlock(
            elements=[
                ButtonElement(
                    text="Resume reconciliation",
                    action_id=ActionId.RESUME_CONFIRM,
                    value=record.id,
                    style="danger",
                    confirm=ConfirmObject(
                        title="Resume reconciliation?",
                        text=PlainTextObject(
                            text="Git decides what runs again from its next reconciliation."
                        ),
                        confirm="Resume",
                        deny="Keep it held",
                    ),
                )
            ]
        ),
    ]


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
