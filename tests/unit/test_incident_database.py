"""The reports' Database section: a rollback across a migration says the schema
versions, whether the catalog calls it compatible, the DBA by name, each schema
Job and its outcome, where the backup went and, when a schema step failed, the
state things are in. A rollback that crossed no migration says nothing of it."""

from __future__ import annotations

import pytest

from bot.incident import people, report_context
from bot.migrations import SchemaCrossing
from bot.records import RollbackRecord, RollbackState, requested
from bot.reports import TemplateRenderer, render_report_files

S = RollbackState
NAMES = {"U0ALICE": "alice", "U0BOB": "bob", "U0DANA": "dana"}
CROSSING = SchemaCrossing(
    current_label="revision 42",
    target_label="revision 41",
    current="0042_add_memory_store",
    target="0041",
    source="env var SCHEMA_VERSION",
    compatible=False,
    approvers=("S0DBAS",),
    downgrade=True,
)
LOCATION = "pvc/db-backups/{id}.sql.gz"
APP_FIRST_FAILED = (
    "the app was rolled back to revision 41, but the schema downgrade failed: revision 41 "
    "now runs on a schema it cannot run on (still at 0042_add_memory_store, or part-way to "
    "0041: check it (alembic current)). The database backup taken before it is at {where}. "
    "Restore the pre-rollback state to put the app back on the schema it expects, or "
    "finish the downgrade by hand.\n"
    "the downgrade Job rollbot-{id}-downgrade failed; its last lines:\n"
    "FAILED: Can't locate revision identified by '0041'"
)


def approved(migration: SchemaCrossing | None = CROSSING) -> RollbackRecord:
    """web 42 → 41, asked by alice, approved by bob and, as DBA, dana."""
    record = requested("prod", "web", "U0ALICE", reason="memory bug")
    record = record.transition(
        S.ASSESSED, "revision 42 → 41", from_revision=42, target_revision=41, migration=migration
    )
    record = record.transition(S.AWAITING_APPROVAL, "confirmation posted")
    record = record.note("schema change approved by U0DANA (DBA)", "U0DANA").model_copy(
        update={"schema_approved_by": "U0DANA"} if migration and migration.gated else {}
    )
    return record.transition(S.APPROVED, "approved", actor="U0BOB", approved_by="U0BOB")


def succeeded(record: RollbackRecord, steps: tuple[str, ...]) -> RollbackRecord:
    record = record.transition(S.BACKING_UP, "backing up")
    if "backup" in steps:
        record = record.model_copy(
            update={"schema_backup": LOCATION.format(id=record.id), "schema_steps": ("backup",)}
        )
    for state in (S.ROLLING_BACK, S.VERIFYING, S.SUCCEEDED):
        record = record.transition(state, f"now {state.value}")
    return record.model_copy(update={"schema_steps": steps})


def app_first_downgrade_failed() -> RollbackRecord:
    record = approved(CROSSING.model_copy(update={"order": "app-first"}))
    record = record.transition(S.BACKING_UP, "backing up").model_copy(
        update={"schema_backup": LOCATION.format(id=record.id), "schema_steps": ("backup",)}
    )
    record = record.transition(S.ROLLING_BACK, "backup saved")
    record = record.transition(S.VERIFYING, "verifying").model_copy(
        update={"schema_failed": "downgrade"}
    )
    error = APP_FIRST_FAILED.format(id=record.id, where=record.schema_backup)
    return record.transition(S.FAILED, error, error=error)


@pytest.fixture(scope="module")
def renderer() -> TemplateRenderer:
    return TemplateRenderer()


def reports(record: RollbackRecord, renderer: TemplateRenderer) -> tuple[str, str, str]:
    summary, files = render_report_files(record, renderer, NAMES)
    incident = files[f"{record.id}-incident-report.md"]
    return summary, incident, files[f"{record.id}-rollback-report.md"]


def section(report: str) -> str:
    """The Database section of a report, up to the next heading."""
    start = report.index("## Database\n")
    end = report.find("\n## ", start + 1)
    return report[start : end if end != -1 else None]


def test_a_rollback_across_a_migration_reports_every_database_fact(renderer):
    record = succeeded(approved(), ("backup", "downgrade", "check"))

    database = report_context(record, NAMES)["database"]

    assert database == {
        "from_schema": "0042_add_memory_store",
        "to_schema": "0041",
        "source": "env var SCHEMA_VERSION",
        "compatible": False,
        "dba_approved_by": "dana",
        "order": "schema-first",
        "backup": {"job": f"rollbot-{record.id}-backup", "outcome": "succeeded"},
        "downgrade": {"job": f"rollbot-{record.id}-downgrade", "outcome": "succeeded"},
        "backup_location": f"pvc/db-backups/{record.id}.sql.gz",
        "check": {"job": f"rollbot-{record.id}-check", "outcome": "succeeded"},
        "check_configured": None,
        "state": None,
    }
    summary, incident, rollback = reports(record, renderer)
    for report in (incident, rollback):
        assert section(report).splitlines() == [
            "## Database",
            "- Schema: 0042_add_memory_store → 0041 (read from the env var SCHEMA_VERSION)",
            "- Declared compatible: no, the older code cannot run on the newer schema",
            "- DBA approval: dana",
            f"- Backup: Job rollbot-{record.id}-backup succeeded; the dump is at "
            f"pvc/db-backups/{record.id}.sql.gz",
            f"- Downgrade (before the app rollback): Job rollbot-{record.id}-downgrade succeeded",
            f"- Check: Job rollbot-{record.id}-check succeeded",
        ]
    assert (
        "Database: schema 0042_add_memory_store → 0041; backup succeeded, downgrade succeeded, "
        "check succeeded\n"
    ) in summary


def test_the_dba_is_among_the_people_whose_names_are_looked_up():
    assert "U0DANA" in people(approved().model_copy(update={"timeline": ()}))


def test_without_a_name_the_dba_is_shown_by_id(renderer):
    record = succeeded(approved(), ("backup", "downgrade", "check"))
    _, files = render_report_files(record, renderer)
    assert "- DBA approval: U0DANA" in files[f"{record.id}-incident-report.md"]


@pytest.mark.parametrize(
    "migration",
    [
        None,
        CROSSING.model_copy(update={"current": "0041", "target": "0041"}),  # none crossed
    ],
    ids=["no migration known", "same schema at both revisions"],
)
def test_a_rollback_that_crossed_no_migration_has_no_database_section(renderer, migration):
    record = succeeded(approved(migration), ("check",))

    assert report_context(record, NAMES)["database"] is None
    summary, incident, rollback = reports(record, renderer)
    assert "## Database" not in incident and "## Database" not in rollback
    assert "Database:" not in summary


def test_an_app_first_downgrade_that_failed_says_the_state_app_and_schema_are_in(renderer):
    record = app_first_downgrade_failed()

    database = report_context(record, NAMES)["database"]

    assert database is not None
    assert database["order"] == "app-first"
    assert database["backup"] == {"job": f"rollbot-{record.id}-backup", "outcome": "succeeded"}
    assert database["downgrade"] == {
        "job": f"rollbot-{record.id}-downgrade",
        "outcome": "failed",
    }
    assert database["check"]["outcome"] == "not run"
    assert database["state"] == record.error
    summary, incident, rollback = reports(record, renderer)
    for report in (incident, rollback):
        shown = section(report)
        assert (
            f"- Downgrade (after the app rollback): Job rollbot-{record.id}-downgrade failed"
        ) in shown
        assert "- Check: none run" in shown
        assert "- State after the failure:\n  > the app was rolled back to revision 41" in shown
        assert f"  > the downgrade Job rollbot-{record.id}-downgrade failed" in shown
        assert "  > FAILED: Can't locate revision identified by '0041'" in shown
    assert "backup succeeded, downgrade failed (see the incident report)" in summary


def test_a_failed_backup_leaves_the_downgrade_not_run_and_no_location(renderer):
    record = approved().transition(S.BACKING_UP, "backing up")
    record = record.model_copy(update={"schema_failed": "backup"})
    error = f"the backup Job rollbot-{record.id}-backup failed; its last lines:\npg_dump: error"
    record = record.transition(S.FAILED, error, error=error)

    database = report_context(record, NAMES)["database"]

    assert database is not None
    assert database["backup"] == {"job": f"rollbot-{record.id}-backup", "outcome": "failed"}
    assert database["downgrade"] == {
        "job": f"rollbot-{record.id}-downgrade",
        "outcome": "not run",
    }
    assert database["backup_location"] is None and database["state"] == error
    _, incident, _ = reports(record, renderer)
    assert f"- Backup: Job rollbot-{record.id}-backup failed\n" in section(incident)


def test_a_failed_backup_says_where_its_dump_was_to_go(renderer):
    record = approved().transition(S.BACKING_UP, "backing up")
    where = "s3://dumps/todo-app/pre-rollback.sql?X-Amz-Credential=AKIAIOSFODNN7EXAMPLE"
    record = record.model_copy(update={"schema_failed": "backup", "schema_backup": where})
    error = f"the backup Job rollbot-{record.id}-backup failed; its last lines:\npg_dump: error"
    record = record.transition(S.FAILED, error, error=error)

    _, incident, rollback = reports(record, renderer)

    for report in (incident, rollback):
        [line] = [x for x in section(report).splitlines() if x.startswith("- Backup:")]
        assert line.startswith(
            f"- Backup: Job rollbot-{record.id}-backup failed; the dump was to be written to "
            "s3://dumps/todo-app/pre-rollback.sql"
        )
        assert line.endswith("what is there may be partial or missing")
        assert "AKIAIOSFODNN7EXAMPLE" not in report


def test_a_compatible_migration_is_a_note_with_no_dba_and_no_schema_step(renderer):
    compatible = CROSSING.model_copy(update={"compatible": True, "approvers": ()})
    record = succeeded(approved(compatible), ("check",))

    database = report_context(record, NAMES)["database"]

    assert database is not None
    assert database["compatible"] is True and database["dba_approved_by"] is None
    assert database["backup"] is None and database["downgrade"] is None
    assert database["order"] is None
    summary, incident, _ = reports(record, renderer)
    assert section(incident).splitlines()[2:] == [
        "- Declared compatible: yes, the older code runs on the newer schema, which is left "
        "as it is",
        "- DBA approval: not needed",
        f"- Check: Job rollbot-{record.id}-check succeeded",
    ]
    assert (
        "Database: schema 0042_add_memory_store → 0041; declared compatible, left as it is, "
        "check succeeded\n"
    ) in summary


def test_an_incompatible_migration_without_a_downgrade_job_says_rollbot_left_the_schema(
    renderer,
):
    record = succeeded(approved(CROSSING.model_copy(update={"downgrade": False})), ())
    summary, incident, _ = reports(record, renderer)
    assert (
        "- Schema step: none configured; rollbot did not back up or roll back the schema"
        in section(incident)
    )
    assert "- Check: none run" in section(incident)
    assert "0041; not rolled back by rollbot (no schema step)\n" in summary


def test_a_check_not_run_says_whether_there_was_one_to_run(renderer):
    none_configured = CROSSING.model_copy(update={"downgrade": False, "check": False})
    _, incident, _ = reports(succeeded(approved(none_configured), ()), renderer)
    assert "- Check: none configured\n" in section(incident)

    stopped = app_first_downgrade_failed()
    crossing = stopped.migration
    assert crossing is not None
    stopped = stopped.model_copy(update={"migration": crossing.model_copy(update={"check": True})})
    _, incident, _ = reports(stopped, renderer)
    assert (
        f"- Check: Job rollbot-{stopped.id}-check not run: the rollback stopped before it\n"
    ) in section(incident)


def test_an_unreadable_schema_version_is_unknown_not_none(renderer):
    unknown = CROSSING.model_copy(update={"current": None, "downgrade": False})
    record = succeeded(approved(unknown), ())
    _, incident, _ = reports(record, renderer)
    assert "- Schema: unknown → 0041" in section(incident)
    assert "None" not in incident
