"""rollbot's App Home tab: a pure function from what the store holds (already
filtered to what the viewer may see) to the view.

In progress (with links to their threads), the last outcomes, the workloads
held by a lock, and the Flux or Argo CD reconciliations rollbacks hold (rollbot
never resumes one on its own: each waits for a person).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.records import RollbackRecord
from handlers.blocks import MAX_SECTION, OUTCOME_ICON, state_label, title
from handlers.form import age
from handlers.ids import BlockId
from handlers.mrkdwn import clip, code, mention, untrusted

#: How many finished rollbacks the tab lists.
OUTCOMES_SHOWN = 10
#: Slack's web form of a message's address; it opens the message in the workspace.
ARCHIVE_URL = "https://slack.com/archives/{channel}/p{ts}"


def thread_link(record: RollbackRecord) -> str:
    """The record's id, linked to its thread when it has one."""
    if not record.channel or not record.thread_ts:
        return code(record.id)
    url = ARCHIVE_URL.format(channel=record.channel, ts=record.thread_ts.replace(".", ""))
    return f"<{url}|{untrusted(record.id)}>"


def running_line(record: RollbackRecord, now: datetime) -> str:
    return (
        f"{thread_link(record)} *{untrusted(title(record))}* in {code(record.namespace)}: "
        f"{state_label(record.state)} — requested by {mention(record.requested_by)} "
        f"{age(record.created_at, now)}"
    )


def outcome_line(record: RollbackRecord, now: datetime) -> str:
    icon = OUTCOME_ICON.get(record.state, "")
    ended = record.timeline[-1].at if record.timeline else record.created_at
    return (
        f"{icon} {thread_link(record)} *{untrusted(title(record))}* in {code(record.namespace)}: "
        f"{state_label(record.state)} {age(ended, now)}"
    )


def held_line(workload: str, holder: str, records: Mapping[str, RollbackRecord]) -> str:
    if holder.startswith("cli:"):
        by = holder.split(":")[1] if holder.count(":") >= 2 else "someone"
        return f"{code(workload)}: from a terminal, by {untrusted(by)}"
    record = records.get(holder)
    return f"{code(workload)}: by {thread_link(record) if record else code(holder)}"


def reconciliation_lines(records: Sequence[RollbackRecord], now: datetime) -> list[str]:
    """Each owner a rollback holds now, with the rollback's thread, where Resume is."""
    return [
        f"{code(r.workload_key)}: {untrusted(str(hold.ref))} held {age(hold.held_at, now)} "
        f"by {thread_link(r)}"
        for r in records
        for hold in r.holding
    ]


def _section(block_id: BlockId, heading: str, lines: Sequence[str], empty: str) -> Block:
    body = "\n".join(lines) if lines else f"_{empty}_"
    return SectionBlock(
        block_id=block_id, text=MarkdownTextObject(text=clip(f"*{heading}*\n{body}", MAX_SECTION))
    )


def home_view(records: Sequence[RollbackRecord], held: Mapping[str, str], now: datetime) -> View:
    """`records`: newest first, those the viewer may see; `held`: workload → holder."""
    running = [r for r in records if not r.state.terminal]
    finished = [r for r in records if r.state.terminal][:OUTCOMES_SHOWN]
    by_id = {r.id: r for r in records}
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text="Rollbacks")),
        _section(
            BlockId.HOME_RUNNING,
            "In progress",
            [running_line(r, now) for r in running],
            "No rollback is in progress.",
        ),
        _section(
            BlockId.HOME_OUTCOMES,
            f"Last {OUTCOMES_SHOWN} outcomes",
            [outcome_line(r, now) for r in finished],
            "No rollback has finished yet.",
        ),
        DividerBlock(),
        _section(
            BlockId.HOME_HELD,
            "Services held",
            [held_line(w, h, by_id) for w, h in sorted(held.items())],
            "No workload is held: nothing is being rolled back.",
        ),
        _section(
            BlockId.HOME_RECONCILIATION,
            "Reconciliation held",
            reconciliation_lines(records, now),
            "No service's reconciliation is held.",
        ),
    ]
    blocks.append(
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=f"Updated <!date^{int(now.timestamp())}^{{time}}|now>. "
                    "Type `/rollback` or use the *Roll back…* shortcut to ask for one."
                )
            ]
        )
    )
    return View(type="home", blocks=blocks)
