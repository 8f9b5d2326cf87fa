"""The schema step of a rollback across an incompatible migration: a backup Job,
then a downgrade Job, before the app rollback (`schema-first`: if either fails,
the app is untouched) or after it (`app-first`: if the downgrade fails, the
thread says which state the app and the schema are in and offers the restore);
and, for a service whose catalog has one, the database check after the rollback.

Each step done is written on the record (`schema_steps`) before the next, and
its Job is named after the record, so a worker that takes over neither repeats a
finished step nor starts a second Job for one under way.
"""

from __future__ import annotations

from bot.errors import PermanentError
from bot.migrations import JobTemplate, Migrations, SchemaCrossing
from bot.pipeline.wiring import Pipeline
from bot.progress import Tone
from bot.records import RollbackRecord
from bot.schema_jobs import JobFailed, job_body, render, run_job

#: How much longer than a Job's own deadline rollbot waits for it (scheduling, pulls).
GRACE_SECONDS = 60


def _settings(p: Pipeline, record: RollbackRecord) -> Migrations | None:
    entry = p.entry(record)
    return entry.migrations if entry is not None else None


def variables(record: RollbackRecord, location: str | None = None) -> dict[str, object]:
    """What a Job template may use."""
    crossing = record.migration
    return {
        "record_id": record.id,
        "service": record.workload,
        "namespace": record.namespace,
        "current_schema": crossing.current if crossing else None,
        "target_schema": crossing.target if crossing else None,
        "current_image": crossing.current_image if crossing else "",
        "target_image": crossing.target_image if crossing else "",
        "from_revision": record.from_revision,
        "target_revision": record.target_revision,
        "backup_location": location if location is not None else record.schema_backup,
        # What the database should be at now: the target once downgraded, else as it was.
        "expected_schema": (
            crossing.target if "downgrade" in record.schema_steps else crossing.current
        )
        if crossing
        else None,
    }


def _runs(record: RollbackRecord, settings: Migrations | None) -> SchemaCrossing | None:
    crossing = record.migration
    if crossing is None or settings is None or not crossing.runs_downgrade:
        return None
    return crossing


def before_app(p: Pipeline, record: RollbackRecord) -> RollbackRecord:
    """While backing up: the database backup; then, schema first, the downgrade."""
    settings = _settings(p, record)
    crossing = _runs(record, settings)
    if crossing is None or settings is None:
        return record
    if "backup" not in record.schema_steps and settings.backup is not None:
        location = render(settings.backup_location or "", variables(record), "backup_location")
        p.sink.milestone(record, f"Backing up the database to {location}")
        record = _run(p, record, "backup", settings.backup, location)
    if settings.order == "schema-first" and "downgrade" not in record.schema_steps:
        record = _downgrade(p, record, settings, crossing)
    return record


def after_app(p: Pipeline, record: RollbackRecord) -> RollbackRecord:
    """After the app rolled back (app first): the downgrade."""
    settings = _settings(p, record)
    crossing = _runs(record, settings)
    if crossing is None or settings is None or settings.order != "app-first":
        return record
    if "downgrade" in record.schema_steps:
        return record
    return _downgrade(p, record, settings, crossing)


def check_database(p: Pipeline, record: RollbackRecord) -> str | None:
    """The catalog's database check, once the app is healthy: what passed, or None
    when there is none. A failing check is a PermanentError saying so."""
    settings = _settings(p, record)
    if settings is None or settings.check is None:
        return None
    if "check" not in record.schema_steps:
        try:
            _run(p, record, "check", settings.check)
        except JobFailed as err:
            raise PermanentError(
                f"rolled back, but the database check says the app and the schema do not "
                f"agree: {err}"
            ) from err
    return "database check passing"


def note_on_failure(record: RollbackRecord) -> str:
    """What a rollback that failed after its schema was rolled back must also say:
    putting the app back first needs the schema upgraded again."""
    crossing = record.migration
    if crossing is None or "downgrade" not in record.schema_steps:
        return ""
    return (
        f"\nThe schema was rolled back to {crossing.target} (its backup is at "
        f"{record.schema_backup}): to restore the pre-rollback state, upgrade the schema "
        f"to {crossing.current} again first, or {crossing.current_label} will not run."
    )


def _downgrade(
    p: Pipeline, record: RollbackRecord, settings: Migrations, crossing: SchemaCrossing
) -> RollbackRecord:
    assert settings.downgrade is not None  # runs_downgrade says so
    p.sink.milestone(
        record, f"Rolling the schema back: {crossing.current} → {crossing.target}", Tone.WARNING
    )
    try:
        return _run(p, record, "downgrade", settings.downgrade)
    except JobFailed as err:
        raise PermanentError(_downgrade_failed(record, crossing, settings, str(err))) from err


def _downgrade_failed(
    record: RollbackRecord, crossing: SchemaCrossing, settings: Migrations, problem: str
) -> str:
    backup = f" The database backup taken before it is at {record.schema_backup}."
    where = (
        f"still at {crossing.current}, or part-way to {crossing.target}: check it (alembic current)"
    )
    if settings.order == "schema-first":
        return (
            f"the schema downgrade failed, so the app was not touched: it still runs "
            f"{crossing.current_label}; the schema is {where}.{backup}\n{problem}"
        )
    return (
        f"the app was rolled back to {crossing.target_label}, but the schema downgrade "
        f"failed: {crossing.target_label} now runs on a schema it cannot run on ({where})."
        f"{backup} Restore the pre-rollback state to put the app back on the schema it "
        f"expects, or finish the downgrade by hand.\n{problem}"
    )


def _run(
    p: Pipeline,
    record: RollbackRecord,
    step: str,
    template: JobTemplate,
    location: str | None = None,
) -> RollbackRecord:
    """One Job to its end, its log in the thread; the step written on the record, done
    or (for the reports) failed: a Job that failed, or that could not be made or run."""
    try:
        body = job_body(
            template,
            record_id=record.id,
            step=step,
            namespace=record.namespace,
            variables=variables(record, location),
        )
        outcome = run_job(
            p.kube,
            record.namespace,
            body,
            lambda text: p.sink.milestone(record, text),
            template.timeout_seconds + GRACE_SECONDS,
        )
        if not outcome.succeeded:
            last = "\n".join(outcome.tail[-5:]) or "(no log)"
            raise JobFailed(f"the {step} Job {outcome.name} failed; its last lines:\n{last}")
    except PermanentError:
        # A failed backup still says where its dump was to go: what is there may be
        # partial, and whoever picks the incident up looks there first.
        failed: dict[str, object] = {"schema_failed": step}
        if location is not None:
            failed["schema_backup"] = location
        p.store.update(record.id, lambda r: r.model_copy(update=failed))
        raise
    p.sink.milestone(record, f"The {step} Job {outcome.name} succeeded", Tone.GOOD)
    update: dict[str, object] = {}
    if location is not None:
        update["schema_backup"] = location
    where = f"; the backup is at {location}" if location is not None else ""
    return p.store.update(
        record.id,
        lambda r: r.note(f"schema {step}: Job {outcome.name} succeeded{where}").model_copy(
            update={"schema_steps": (*r.schema_steps, step), **update}
        ),
    )
