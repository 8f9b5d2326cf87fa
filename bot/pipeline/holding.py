"""GitOps holds around a rollback: reconciliation held before the rollback is
applied, the question before a person resumes it (what Git holds against what
runs), the resume itself, and reminders while it stays held. rollbot never
resumes on its own.

Each step is recorded before the next and skips what its record says is done,
so a worker that dies half-way leaves a record another worker finishes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.gitops.drift import drift_lines
from bot.gitops.holds import (
    ReconciliationHold,
    applied_revision,
    hold_ops,
    previous_setting,
    resume_ops,
)
from bot.gitops.owner import read_owner
from bot.pipeline.wiring import Pipeline
from bot.progress import Tone
from bot.records import RollbackRecord, now
from bot.store import Job


def _set_hold(
    index: int, note: str = "", actor: str | None = None, **fields: object
) -> Callable[[RollbackRecord], RollbackRecord]:
    """A store update that sets fields of the record's `index`th hold (and notes why)."""

    def change(record: RollbackRecord) -> RollbackRecord:
        holds = list(record.holds)
        holds[index] = holds[index].model_copy(update=fields)
        changed = record.model_copy(update={"holds": tuple(holds)})
        return changed.note(note, actor) if note else changed

    return change


def _note(text: str) -> Callable[[RollbackRecord], RollbackRecord]:
    return lambda record: record.note(text)


def _patch(p: Pipeline, hold: ReconciliationHold, ops: list[dict[str, object]]) -> None:
    if ops:
        spec = hold.ref.spec
        p.kube.json_patch_custom(spec.api, hold.namespace, spec.plural, hold.name, ops, False)


def hold_reconciliation(p: Pipeline, record: RollbackRecord) -> RollbackRecord:
    """Hold every owner the plan names that is not held yet: its setting recorded
    first, then patched, then marked held (with the time) and said in the thread."""
    for index, planned in enumerate(record.holds):
        if planned.held_at is not None:
            continue
        owner = read_owner(p.kube, planned.ref)
        if not owner.exists:
            text = f"{planned.ref} is gone since the assessment: nothing to hold"
            record = p.store.update(record.id, _note(text))
            p.sink.milestone(record, text, Tone.WARNING)
            continue
        if planned.previous is None:
            previous, revision = previous_setting(owner), applied_revision(owner)
            record = p.store.update(
                record.id, _set_hold(index, previous=previous, applied_revision=revision)
            )
        _patch(p, planned, hold_ops(owner))
        at = now()
        note = f"reconciliation held: {record.holds[index].held_text()}"
        record = p.store.update(record.id, _set_hold(index, note, held_at=at))
        hold = record.holds[index]
        p.sink.milestone(
            record,
            f"Reconciliation held since {at:%H:%M} UTC: {hold.held_text()}. rollbot does not "
            f"resume it on its own: Resume (or /rollback resume {record.id}) restores exactly "
            "that setting, after showing what Git holds.",
        )
    return record


def on_resume_check(p: Pipeline, job: Job) -> None:
    record = p.store.get(job.record_id)
    user, channel = str(job.args["user"]), str(job.args.get("channel") or record.channel)
    if not record.holding:
        p.sink.tell(channel, user, f"Rollback {record.id} holds no reconciliation now.")
        return
    deployments = [p.kube.get_deployment(record.namespace, d) for d in record.deployments]
    lines = [f"Resume reconciliation held by rollback {record.id}?"]
    for hold in record.holding:
        lines += drift_lines(p.kube, hold, deployments, record.from_images, record.to_images)
    asked = p.store.update(record.id, lambda r: r.note(f"resume asked by {user}", user))
    p.sink.resume_question(asked, "\n".join(lines))


def on_resume(p: Pipeline, job: Job) -> None:
    record = p.store.get(job.record_id)
    resume(p, record, str(job.args["user"]))


def resume(p: Pipeline, record: RollbackRecord, user: str) -> RollbackRecord:
    """Put back each held owner's recorded setting; a retry skips those done."""
    if not record.holding:
        return record
    for index, hold in enumerate(record.holds):
        if not hold.held:
            continue
        owner = read_owner(p.kube, hold.ref)
        if owner.exists:
            _patch(p, hold, resume_ops(owner, hold, now()))
        at = now()
        text = f"reconciliation resumed by {user}: {hold.ref} back to {hold.previous_text()}"
        record = p.store.update(
            record.id, _set_hold(index, text, user, resumed_at=at, resumed_by=user)
        )
        p.sink.milestone(record, text[0].upper() + text[1:], Tone.GOOD)
    return record


def reminder_text(record: RollbackRecord) -> str | None:
    """A line for a follow-up while reconciliation is held (None: nothing held)."""
    if not record.holding:
        return None
    held = ", ".join(f"{h.ref} (since {h.held_at:%H:%M} UTC)" for h in record.holding if h.held_at)
    return (
        f"Reconciliation still held: {held}. Git still decides what runs once it is "
        f"resumed; resume it (Resume, or /rollback resume {record.id}) when Git holds the "
        "good version."
    )


def on_hold_reminder(p: Pipeline, job: Job) -> None:
    """After the follow-ups: a reminder now and then, for as long as it is held."""
    record = p.store.get(job.record_id)
    if (text := reminder_text(record)) is None:
        return
    p.sink.milestone(record, text, Tone.WARNING, record.requested_by)
    schedule_reminder(p, record)


def schedule_reminder(p: Pipeline, record: RollbackRecord) -> None:
    at = time.time() + p.config.hold_reminder_minutes * 60
    p.queue.enqueue(Job(kind="hold_reminder", record_id=record.id, not_before=at))
