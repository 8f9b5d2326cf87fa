"""After the question or the rollback: the runbooks' +5/+15/+30 minute
follow-ups, the re-assessment of a "monitor" recommendation, and the expiry of
a confirmation nobody answered."""

from __future__ import annotations

from bot.assessment import compared
from bot.checks import run_checks
from bot.errors import PermanentError
from bot.pipeline.assess import assess_again, monitor_minutes
from bot.pipeline.holding import reminder_text
from bot.pipeline.verify import readiness
from bot.pipeline.wiring import Pipeline
from bot.progress import Tone
from bot.records import RollbackRecord, RollbackState
from bot.store import Job

S = RollbackState


def on_follow_up(p: Pipeline, job: Job) -> None:
    record = p.store.get(job.record_id)
    if record.state is S.SUCCEEDED:
        follow_up(p, record, int(job.args["index"]))


def on_reassess(p: Pipeline, job: Job) -> None:
    record = p.store.get(job.record_id)
    if record.state in (S.AWAITING_APPROVAL, S.CANCELLED, S.EXPIRED):
        reassess(p, record)


def on_expire(p: Pipeline, job: Job) -> None:
    record = p.store.get(job.record_id)
    if record.state is S.AWAITING_APPROVAL and not record.expired() and record.expires_at:
        # Early (this pod's clock is behind the one that set it): come back on time.
        p.queue.enqueue(job.model_copy(update={"not_before": record.expires_at.timestamp()}))
        return
    if record.state is S.AWAITING_APPROVAL and record.expired():
        record = p.store.update(
            record.id,
            lambda r: r.transition(S.EXPIRED, "confirmation expired: nobody approved in time"),
        )
        p.sink.finished(record)


def follow_up(p: Pipeline, record: RollbackRecord, index: int) -> None:
    """Is it staying healthy? The runbooks' +5/+15/+30 minute checks."""
    minutes = p.config.follow_up_minutes
    last = index == len(minutes) - 1
    counts = readiness(p, record)
    entry = p.entry(record)
    results = run_checks(entry.health_checks) if entry and record.verify_checks else []
    problems = [r.line() for r in results if not r.ok]
    problems[:0] = [
        f"{name}: only {have}/{want} replicas available"
        for name, (have, want) in counts.items()
        if have < want
    ]
    available = sum(have for have, _ in counts.values())
    desired = sum(want for _, want in counts.values())
    label = f"Follow-up +{minutes[index]:g} min"
    # While reconciliation is held, every follow-up says so (rollbot never resumes it).
    held = reminder_text(record)
    if problems:
        headline = f"{label}: unhealthy again"
        problems += [held] if held else []
        p.store.update(record.id, lambda r: r.note(headline))
        p.sink.milestone(
            record, headline + ":\n" + "\n".join(problems), Tone.WARNING, record.requested_by
        )
        return
    if held:
        text, tone = f"{label}: healthy ({available}/{desired} available). {held}", Tone.WARNING
    elif last:
        text, tone = f"{label}: stable; the incident can be closed", Tone.GOOD
    else:
        checks = f", {len(results)} checks passing" if results else ""
        text, tone = f"{label}: healthy ({available}/{desired} available{checks})", Tone.INFO
    p.store.update(record.id, lambda r: r.note(text))
    p.sink.milestone(record, text, tone)


def reassess(p: Pipeline, record: RollbackRecord) -> None:
    """The runbook's "monitor for 5–10 minutes, roll back if it gets worse": the
    assessment again, compared with the first, posted in the thread."""
    try:
        now = assess_again(p, record)
    except PermanentError as err:  # the workload gone meanwhile, say
        text = f"Could not re-assess after {monitor_minutes(p, record) or 0:g} min: {err}"
        p.store.update(record.id, lambda r: r.note(text))
        p.sink.milestone(record, text, Tone.WARNING, record.requested_by)
        return
    before = record.severity or "unknown"
    verdict = compared(record.severity, now.severity)
    minutes = monitor_minutes(p, record) or 0
    text = (
        f"Re-assessed after {minutes:g} min: severity {before} → {now.severity} "
        f"({verdict}) — {now.recommendation}"
    )
    lines = [text, *now.facts]
    p.store.update(record.id, lambda r: r.note(text))
    waiting = record.state is S.AWAITING_APPROVAL
    if waiting:
        lines.append("The confirmation above is still open: approve it to roll back.")
    p.sink.reassessed(record, "\n".join(lines), offer_rollback=not waiting and verdict != "better")
