"""A rollback across a database migration, as its users meet it: signed Slack
requests to the running bot, the real control plane running the backup,
downgrade and check Jobs (their commands run for real by the test bed's
kubelet: `pg_dump`, `alembic downgrade`, `psql`), against a real PostgreSQL
whose schema the test reads afterwards."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot.config import RollbotConfig
from bot.records import RollbackState
from handlers.ids import ActionId
from testbed.local_containers import RUN_LOCAL_ANNOTATION
from tests.integration.slack_helpers import (
    ALICE,
    BOB,
    MALLORY,
    SlackUser,
    confirmation,
    ephemerals,
    final,
    wait_for,
)
from tests.integration.test_cli import rollbot
from tests.integration.workloads import container

pytestmark = pytest.mark.cluster
S = RollbackState
MIGRATIONS = Path(__file__).parent.parent / "fixtures" / "sample_migrations"
ALEMBIC = ["alembic", "-c", str(MIGRATIONS / "alembic.ini")]
DBAS, DBA = "S0DBAS", "U0DBA"
LOCAL = {RUN_LOCAL_ANNOTATION: "true"}
DATABASE_URL = {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}}


def schema_version(dsn: str) -> str | None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("select version_num from alembic_version").fetchone()
    return str(row[0]) if row else None


def revision(schema: str) -> dict[str, Any]:
    """The app's pod spec at a schema: its image and the version it declares."""
    env = [{"name": "SCHEMA_VERSION", "value": schema}]
    return {"containers": [container("app", f"registry.example/web:{schema}", env=env)]}


@pytest.fixture
def app(workloads, postgres_dsn: str) -> str:
    """Revision 1 of `web` on schema 0041, revision 2 on 0042 (migrated, running)."""
    subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(MIGRATIONS / "alembic.ini"), "upgrade", "head"],
        env=dict(os.environ, DATABASE_URL=postgres_dsn),
        check=True,
        capture_output=True,
    )
    url = base64.b64encode(postgres_dsn.encode()).decode()
    workloads.core.create_namespaced_secret(
        workloads.namespace, {"metadata": {"name": "db"}, "data": {"url": url}}
    )
    workloads.create("web", [revision("0041"), revision("0042")])
    assert schema_version(postgres_dsn) == "0042"
    return postgres_dsn


def config(namespace: str, postgres, tmp_path: Path, **migrations: Any) -> RollbotConfig:
    """The catalog entry the runbooks' procedure becomes (todo-app, eli-maor)."""
    pg_dump, psql = postgres.tool("pg_dump"), postgres.tool("psql")
    job = {"env": [DATABASE_URL], "pod_annotations": LOCAL, "timeout_seconds": 60}
    settings = {
        "version_from": {"env": "SCHEMA_VERSION"},
        "compatible": False,
        "approvers": [DBAS],
        "backup": {
            **job,
            "image": "postgres:16",
            "command": ["sh", "-c", f'{pg_dump} "$DATABASE_URL" > {{{{ backup_location }}}}'],
        },
        "backup_location": str(tmp_path / "{{ record_id }}.sql"),
        "downgrade": {
            **job,
            "image": "{{ current_image }}",
            "command": [*ALEMBIC, "downgrade", "{{ target_schema }}"],
        },
        "check": {
            **job,
            "image": "postgres:16",
            "command": [
                "sh",
                "-c",
                f'{psql} "$DATABASE_URL" -tAc "select version_num from alembic_version"'
                " | grep -x {{ expected_schema }}",
            ],
        },
        **migrations,
    }
    return RollbotConfig.model_validate(
        {"services": {"web": {"namespace": namespace, "migrations": settings}}}
    )


def shown(slack, ts: str) -> str:
    return json.dumps([m.blocks or m.text for m in slack.thread("C0INCIDENT", ts)])


def database_section(slack, record_id: str) -> str:
    """The Database section of the incident report posted in the thread."""
    name = f"{record_id}-incident-report.md"
    report: str = wait_for(
        "the incident report",
        lambda: next((f.content.decode() for f in slack.files() if f.filename == name), None),
    )
    start = report.index("## Database\n")
    return report[start : report.index("\n## ", start)]


def test_an_incompatible_migration_waits_for_a_dba_then_backup_downgrade_and_app_roll_back(
    make_bot, slack, workloads, app, postgres, tmp_path
):
    slack.add_usergroup(DBAS, [DBA])
    slack.add_user(DBA, name="dana", real_name="Dana Bell")
    bot = make_bot(config(workloads.namespace, postgres, tmp_path))
    SlackUser(bot.url, ALICE).command(f'web -n {workloads.namespace} --reason "memory bug"')
    record_id, root_ts = confirmation(slack)
    root = shown(slack, root_ts)
    assert "revision 2 ran migration 0042; revision 1 expects 0041" in root
    assert "Severity: *high*" in root and "a DBA approves" in root

    # The usual approval alone does not run it; another approver cannot stand in.
    SlackUser(bot.url, BOB).click(ActionId.APPROVE, record_id, root_ts)
    told = wait_for("Bob told", lambda: ephemerals(slack, BOB))
    assert "it needs a DBA's approval (one of S0DBAS)" in told[-1].replace("&#39;", "'")
    SlackUser(bot.url, MALLORY).click(ActionId.APPROVE, record_id, root_ts)
    wait_for("Mallory refused", lambda: ephemerals(slack, MALLORY))
    assert "waits for a DBA" in ephemerals(slack, MALLORY)[-1]
    assert bot.store.get(record_id).state is S.AWAITING_APPROVAL
    assert workloads.images_of("web") == ["registry.example/web:0042"]
    assert schema_version(app) == "0042"

    SlackUser(bot.url, DBA).click(ActionId.APPROVE, record_id, root_ts)
    record = final(bot.store, record_id, timeout=180)

    assert record.state is S.SUCCEEDED, record.error
    assert record.schema_approved_by == DBA and record.approvals == (BOB,)
    assert schema_version(app) == "0041"
    assert workloads.images_of("web") == ["registry.example/web:0041"]
    assert record.schema_steps == ("backup", "downgrade", "check")
    dump = Path(record.schema_backup or "")
    assert dump == tmp_path / f"{record_id}.sql"
    assert "CREATE TABLE public.memory_store" in dump.read_text()
    thread = shown(slack, root_ts)
    # Backup, then downgrade, then the app: in that order in the thread.
    backup_at = thread.index(f"rollbot-{record_id}-backup succeeded")
    downgrade_at = thread.index(f"rollbot-{record_id}-downgrade succeeded")
    assert backup_at < downgrade_at < thread.index("Rollback applied")
    assert "Running downgrade 0042 -&gt; 0041" in thread  # alembic's own log line
    assert "database check passing" in record.timeline[-1].message
    assert database_section(slack, record_id).splitlines() == [
        "## Database",
        "- Schema: 0042 → 0041 (read from the env var SCHEMA_VERSION)",
        "- Declared compatible: no, the older code cannot run on the newer schema",
        "- DBA approval: Dana Bell",
        f"- Backup: Job rollbot-{record_id}-backup succeeded; the dump is at {dump}",
        f"- Downgrade (before the app rollback): Job rollbot-{record_id}-downgrade succeeded",
        f"- Check: Job rollbot-{record_id}-check succeeded",
    ]


def test_a_failing_downgrade_stops_the_rollback_with_the_app_untouched(
    make_bot, slack, control_plane, workloads, app, postgres, tmp_path
):
    failing = {
        "env": [DATABASE_URL],
        "pod_annotations": LOCAL,
        "image": "{{ current_image }}",
        "command": [*ALEMBIC, "downgrade", "0040_no_such_revision"],
    }
    settings = config(workloads.namespace, postgres, tmp_path, downgrade=failing)
    # From a terminal (a CI job's rollback.sh), no DBA can approve: refused, as it says.
    path = tmp_path / "rollbot.yaml"
    path.write_text(json.dumps(settings.model_dump(mode="json", exclude_unset=True)))
    refused = rollbot(control_plane, "--config", str(path), "rollback", "web", "--yes")
    assert refused.returncode == 2, refused.stderr
    assert "Schema: revision 2 ran migration 0042; revision 1 expects 0041." in refused.stdout
    assert "needs a DBA's approval" in refused.stderr

    slack.add_usergroup(DBAS, [DBA])
    bot = make_bot(settings)
    SlackUser(bot.url, ALICE).command(f"web -n {workloads.namespace}")
    record_id, root_ts = confirmation(slack)
    SlackUser(bot.url, DBA).click(ActionId.APPROVE, record_id, root_ts)
    SlackUser(bot.url, BOB).click(ActionId.APPROVE, record_id, root_ts)

    record = final(bot.store, record_id, timeout=180)

    assert record.state is S.FAILED
    assert "the app was not touched: it still runs revision 2" in (record.error or "")
    assert "Can't locate revision" in (record.error or "")
    assert workloads.images_of("web") == ["registry.example/web:0042"]
    assert schema_version(app) == "0042"
    assert record.schema_steps == ("backup",)
    assert "Roll back further" not in shown(slack, root_ts)  # nothing changed to recover
    database = database_section(slack, record_id)
    assert f"Job rollbot-{record_id}-downgrade failed" in database
    assert "  > the schema downgrade failed, so the app was not touched" in database


def test_a_compatible_migration_passes_with_only_a_note(
    make_bot, slack, workloads, app, postgres, tmp_path
):
    bot = make_bot(config(workloads.namespace, postgres, tmp_path, compatible=True))
    SlackUser(bot.url, ALICE).command(f"web -n {workloads.namespace}")
    record_id, root_ts = confirmation(slack)
    assert "Declared backward compatible" in shown(slack, root_ts)
    SlackUser(bot.url, BOB).click(ActionId.APPROVE, record_id, root_ts)

    record = final(bot.store, record_id, timeout=120)

    assert record.state is S.SUCCEEDED, record.error
    assert record.severity == "low" and record.schema_approved_by is None
    assert workloads.images_of("web") == ["registry.example/web:0041"]
    assert schema_version(app) == "0042"  # left as it is
    assert record.schema_steps == ("check",)


def test_app_first_rolls_the_app_back_before_the_schema(
    make_bot, slack, workloads, app, postgres, tmp_path
):
    slack.add_usergroup(DBAS, [DBA])
    bot = make_bot(config(workloads.namespace, postgres, tmp_path, order="app-first"))
    SlackUser(bot.url, ALICE).command(f"web -n {workloads.namespace}")
    record_id, root_ts = confirmation(slack)
    assert "a downgrade Job to 0041, after the app rollback" in shown(slack, root_ts)
    SlackUser(bot.url, DBA).click(ActionId.APPROVE, record_id, root_ts)
    SlackUser(bot.url, BOB).click(ActionId.APPROVE, record_id, root_ts)

    record = final(bot.store, record_id, timeout=180)

    assert record.state is S.SUCCEEDED, record.error
    assert schema_version(app) == "0041"
    thread = shown(slack, root_ts)
    backup_at = thread.index(f"rollbot-{record_id}-backup succeeded")
    applied_at = thread.index("Rollback applied")
    assert backup_at < applied_at < thread.index(f"rollbot-{record_id}-downgrade succeeded")
