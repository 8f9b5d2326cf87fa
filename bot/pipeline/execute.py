"""Stage two: an approved rollback, holding its workloads' locks —
backup → apply → verify → report, each step recorded before the next, so a
worker that dies half-way leaves a record another worker finishes."""

from __future__ import annotations

from typing import Any

from bot import failpoints
from bot.backup import take_backup
from bot.drills import drill_report
from bot.engine import pin_for
from bot.errors import RollbotError, TemporaryError
from bot.incident import people
from bot.pipeline import schema
from bot.pipeline.holding import hold_reconciliation, schedule_reminder
from bot.pipeline.verify import verify
from bot.pipeline.wiring import Pipeline
from bot.records import RollbackRecord, RollbackState
from bot.reports import TemplateRenderer, render_report_files
from bot.rollout import RolloutState
from bot.store import Job
from bot.strategies import OwnWorkload, change_cause
from bot.strategies import get as get_strategy

S = RollbackState


def on_execute(p: Pipeline, job: Job) -> None:
    record = p.store.get(job.record_id)
    if record.state.executing:
        execute(p, record)
    elif record.state.terminal and record.approved_by:
        # Its worker died after the outcome was written: say it, once (the outbox
        # drops what was said before), and let go of the workload.
        _wrap_up(p, record)
    # Otherwise a duplicate delivery: the record has moved on.


def _wrap_up(p: Pipeline, record: RollbackRecord) -> None:
    p.unlock(record)
    p.sink.finished(record)
    post_report(p, record)


def execute(p: Pipeline, record: RollbackRecord) -> None:
    if (problem := p.lock(record)) is not None:
        p.refuse(record, problem)
        return
    failpoints.reached("locked")
    try:
        if record.state in (S.APPROVED, S.BACKING_UP):
            record = _back_up(p, record)
            failpoints.reached("backed_up")
        if record.state is S.ROLLING_BACK:
            record = _roll_back(p, record)
        if record.state is S.VERIFYING:
            failpoints.reached("verifying")
            record = verify(p, schema.after_app(p, record))
    except TemporaryError:
        raise  # retried by the runner; the record says where to resume
    except RollbotError as err:
        fail_record(p, record.id, str(err) + schema.note_on_failure(p.store.get(record.id)))
        return
    _wrap_up(p, record)
    failpoints.reached("reported")


def fail_record(p: Pipeline, record_id: str, message: str) -> RollbackRecord:
    """End a record as failed, once: its locks released, the thread told and,
    if it had been approved, the report posted."""
    if (current := p.store.get(record_id)).state.terminal:
        return current  # already ended (a late or repeated failure): say nothing twice
    record = p.store.update(
        record_id,
        lambda r: r if r.state.terminal else r.transition(S.FAILED, message, error=message),
    )
    p.unlock(record)
    p.sink.finished(record)
    if record.approved_by:
        post_report(p, record)
    if record.holding:  # held, then failed: the hold stays until a person resumes it
        schedule_reminder(p, record)
    return record


def _back_up(p: Pipeline, record: RollbackRecord) -> RollbackRecord:
    if record.state is S.APPROVED:
        record = p.store.update(
            record.id,
            lambda r: r.transition(S.BACKING_UP, "backing up the workload before changing it"),
        )
    strategy = get_strategy(record.strategy)
    if isinstance(strategy, OwnWorkload):  # not a Deployment: it backs up its own kind
        own = strategy.backup(p.strategy_context(), record.namespace, _pins(record))
        p.store.save_backup(record.id, own)
        p.sink.milestone(record, "Backup saved: " + ", ".join(own["saved"]))
        return p.store.update(record.id, lambda r: r.transition(S.ROLLING_BACK, "backup saved"))
    names = record.deployments
    bundles = [take_backup(p.kube, record.namespace, name) for name in names]
    bundle: dict[str, Any] = (
        bundles[0] if len(bundles) == 1 else {"components": dict(zip(names, bundles, strict=True))}
    )
    p.store.save_backup(record.id, bundle)
    saved: list[str] = []
    for name, one in zip(names, bundles, strict=True):
        saved.append(f"deployment/{name}")
        saved += [f"service/{s['metadata']['name']}" for s in one["services"]]
        saved += [f"configmap/{c['metadata']['name']}" for c in one["config_maps"]]
        saved += [f"hpa/{h['metadata']['name']}" for h in one["autoscalers"]]
    p.sink.milestone(record, "Backup saved: " + ", ".join(dict.fromkeys(saved)))
    record = schema.before_app(p, record)
    return p.store.update(record.id, lambda r: r.transition(S.ROLLING_BACK, "backup saved"))


def _roll_back(p: Pipeline, record: RollbackRecord) -> RollbackRecord:
    """Hold GitOps reconciliation where the plan says so (else the owner reverts what
    follows), then apply what was approved with the record's strategy (it follows
    its rollouts)."""
    if record.holds:
        record = hold_reconciliation(p, record)
    cause = change_cause(
        record.strategy,
        record.approved_by or record.requested_by,
        record.reason,
        from_revision=record.from_revision,
        target_revision=record.target_revision,
        to_tag=record.to_tag,
    )
    done = get_strategy(record.strategy).apply(
        p.strategy_context(), record.namespace, _pins(record), cause, _RecordProgress(p, record)
    )
    p.sink.milestone(record, f"Applied: {done}")
    return p.store.update(
        record.id, lambda r: r.note(f"applied: {done}").transition(S.VERIFYING, "verifying")
    )


def _pins(record: RollbackRecord) -> dict[str, str]:
    """The record's pins. A Deployment undo assessed before undo was a strategy kept
    its target in fields instead: the same target, as a pin."""
    if record.pins or (record.target_replica_set is None and record.to_tag is None):
        return record.pins
    target = pin_for(
        record.target_replica_set or "", record.to_tag, record.options.get("container")
    )
    return {record.workload: target}


class _RecordProgress:
    """A strategy's progress, into the record's thread."""

    def __init__(self, p: Pipeline, record: RollbackRecord) -> None:
        self.p, self.record = p, record

    def milestone(self, text: str) -> None:
        self.p.sink.milestone(self.record, text)

    def rollout(self, workload: str, state: RolloutState) -> None:
        several = len(self.record.deployments) > 1
        self.p.sink.rollout(self.record, state, workload if several else None)


DRILL_NOTE = "DRILL — a rollback drill, not an incident: nothing here was sent to anyone.\n\n"


def post_report(p: Pipeline, record: RollbackRecord) -> None:
    """The runbooks' report and messages, filled in from the record and posted (with
    the backup redacted: the backup itself stays in the store)."""
    summary, files = render_report_files(
        record,
        TemplateRenderer(p.config.templates_dir),
        p.names_of(people(record)),
        backup=p.store.get_backup(record.id),
    )
    if record.drill:
        summary, files = _as_drill(p, record, summary, files)
        p.sink.report(record, summary, files, None)  # a drill tells its own channel only
        return
    p.sink.report(record, summary, files, p.config.incidents_channel)


def _as_drill(
    p: Pipeline, record: RollbackRecord, summary: str, files: dict[str, str]
) -> tuple[str, dict[str, str]]:
    """A drill's report and messages, marked as a drill (the communication
    simulation), and the drill report once the drill is over: after its forward
    step, or when the drill itself failed."""
    marked = {name: DRILL_NOTE + text for name, text in files.items()}
    if record.trigger == "drill-forward" and record.drill_of:
        drill = p.store.get(record.drill_of)
        marked[f"{drill.id}-drill-report.md"] = drill_report(drill, record)
    elif record.trigger == "drill" and record.state is S.FAILED:
        marked[f"{record.id}-drill-report.md"] = drill_report(record, None)
    return "DRILL — " + summary, marked
