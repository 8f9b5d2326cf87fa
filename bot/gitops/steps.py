"""The hold and the resume as steps on a rollback record, for the worker and
the terminal alike: each recorded before the next, each skipping what its
record says is done, so a worker that dies half-way leaves a record another
finishes — and the setting before a hold is on the record before the patch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from bot.bodies import Body
from bot.gitops.drift import drift_lines
from bot.gitops.holds import (
    ReconciliationHold,
    applied_revision,
    hold_ops,
    previous_setting,
    resume_ops,
)
from bot.gitops.owner import read_owner
from bot.gitops.planning import GitOpsKube
from bot.progress import Tone
from bot.records import RollbackRecord, now

Change = Callable[[RollbackRecord], RollbackRecord]
#: Where a step tells the person watching (the thread, a terminal).
Say = Callable[[RollbackRecord, str, Tone], None]


class RecordWriter(Protocol):
    def update(self, record_id: str, change: Change) -> RollbackRecord: ...


def _set_hold(index: int, note: str = "", actor: str | None = None, **fields: object) -> Change:
    """A record update that sets fields of its `index`th hold (and notes why)."""

    def change(record: RollbackRecord) -> RollbackRecord:
        holds = list(record.holds)
        holds[index] = holds[index].model_copy(update=fields)
        changed = record.model_copy(update={"holds": tuple(holds)})
        return changed.note(note, actor) if note else changed

    return change


def _note(text: str) -> Change:
    return lambda record: record.note(text)


def _patch(kube: GitOpsKube, hold: ReconciliationHold, ops: list[Body]) -> None:
    if ops:
        spec = hold.ref.spec
        kube.json_patch_custom(spec.api, hold.namespace, spec.plural, hold.name, ops, False)


def hold_owners(
    store: RecordWriter, kube: GitOpsKube, record: RollbackRecord, say: Say
) -> RollbackRecord:
    """Hold every owner the plan names that is not held yet: its setting recorded
    first, then patched, then marked held (with the time) and said."""
    for index, planned in enumerate(record.holds):
        if planned.held_at is not None:
            continue
        owner = read_owner(kube, planned.ref)
        if not owner.exists:
            text = f"{planned.ref} is gone since the assessment: nothing to hold"
            record = store.update(record.id, _note(text))
            say(record, text, Tone.WARNING)
            continue
        if planned.previous is None:
            previous, revision = previous_setting(owner), applied_revision(owner)
            record = store.update(
                record.id, _set_hold(index, previous=previous, applied_revision=revision)
            )
        _patch(kube, planned, hold_ops(owner))
        at = now()
        note = f"reconciliation held: {record.holds[index].held_text()}"
        record = store.update(record.id, _set_hold(index, note, held_at=at))
        hold = record.holds[index]
        say(
            record,
            f"Reconciliation held since {at:%H:%M} UTC: {hold.held_text()}. rollbot does not "
            f"resume it on its own: Resume (or /rollback resume {record.id}) restores exactly "
            "that setting, after showing what Git holds.",
            Tone.INFO,
        )
    return record


def resume_question(kube: GitOpsKube, record: RollbackRecord, running: Sequence[Body]) -> str:
    """What Git holds against what runs (`running`: the workloads the rollback
    changed, as they are now), for each hold in place (plain text)."""
    lines = [f"Resume reconciliation held by rollback {record.id}?"]
    for hold in record.holding:
        lines += drift_lines(kube, hold, running, record.from_images, record.to_images)
    return "\n".join(lines)


def resume_owners(
    store: RecordWriter, kube: GitOpsKube, record: RollbackRecord, user: str, say: Say
) -> RollbackRecord:
    """Put back each held owner's recorded setting; a retry skips those done."""
    for index, hold in enumerate(record.holds):
        if not hold.held:
            continue
        owner = read_owner(kube, hold.ref)
        if owner.exists:
            _patch(kube, hold, resume_ops(owner, hold, now()))
        text = f"reconciliation resumed by {user}: {hold.ref} back to {hold.previous_text()}"
        record = store.update(
            record.id, _set_hold(index, text, user, resumed_at=now(), resumed_by=user)
        )
        say(record, text[0].upper() + text[1:], Tone.GOOD)
    return record


def reminder_text(record: RollbackRecord) -> str | None:
    """A line for a follow-up while reconciliation is held (None: nothing held)."""
    held: Sequence[ReconciliationHold] = record.holding
    if not held:
        return None
    listed = ", ".join(f"{h.ref} (since {h.held_at:%H:%M} UTC)" for h in held if h.held_at)
    return (
        f"Reconciliation still held: {listed}. Git still decides what runs once it is "
        f"resumed; resume it (Resume, or /rollback resume {record.id}) when Git holds the "
        "good version."
    )
