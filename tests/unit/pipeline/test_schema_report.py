"""What the execute stage writes for the reports when a schema Job fails, and that
credentials in the catalog's database settings (a DSN with its password, a bucket
URL with its key) never reach the report, whatever the Jobs print."""

from __future__ import annotations

from dataclasses import dataclass, field
from dataclasses import replace as replaced
from typing import Any

import pytest

from bot.config import RollbotConfig
from bot.migrations import SchemaCrossing
from bot.pipeline import Pipeline, execute
from bot.records import RollbackRecord
from tests.unit.pipeline.conftest import DeploymentsOnly, RecordingSink, S, stored, web_request

PASSWORD, BUCKET_KEY = "hunter2-db-pass", "s3cr3t-bucket-key"
DSN = f"postgresql://rollbot:{PASSWORD}@db.prod:5432/todo"
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


@dataclass
class ReportSink(RecordingSink):
    """The recording sink, keeping what the report says too."""

    posted: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def report(
        self,
        record: RollbackRecord,
        summary: str,
        files: dict[str, str],
        announce_to: str | None = None,
    ) -> None:
        super().report(record, summary, files, announce_to)
        self.posted.append((summary, files))


class Jobs(DeploymentsOnly):
    """A Deployment to back up, and Jobs that end as `ends` says, each pod printing
    the connection string it was given (as a chatty tool does)."""

    def __init__(self, ends: dict[str, bool]) -> None:
        super().__init__()
        self.ends = ends
        self.created: list[str] = []
        self.put("prod", "web", desired=2, available=2)

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any]:
        deployment = super().get_deployment(namespace, name)
        template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": []}}
        return {**deployment, "spec": {**deployment["spec"], "template": template}}

    def list_services(self, namespace: str) -> list[dict[str, Any]]:
        return []

    def list_autoscalers(self, namespace: str) -> list[dict[str, Any]]:
        return []

    def create_job(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self.created.append(body["metadata"]["name"])
        return body

    def get_job(self, namespace: str, name: str) -> dict[str, Any]:
        kind = "Complete" if self.ends[name.rsplit("-", 1)[-1]] else "Failed"
        return {"status": {"conditions": [{"type": kind, "status": "True"}]}}

    def delete_job(self, namespace: str, name: str) -> None:
        raise AssertionError("a Job that ended is kept for people to read")

    def list_pods(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        return [{"metadata": {"name": label_selector.split("=", 1)[1]}}]

    def pod_log(self, namespace: str, pod: str, since_seconds: int, tail: int, container=None):
        return f"connecting to {DSN}\nPGPASSWORD={PASSWORD}\nFAILED: Can't locate revision"


def job(command: list[str]) -> dict[str, Any]:
    return {
        "image": "postgres:16",
        "command": command,
        "env": [{"name": "DATABASE_URL", "value": DSN}, {"name": "PGPASSWORD", "value": PASSWORD}],
    }


@pytest.fixture
def sink() -> ReportSink:
    return ReportSink()


def backing_up(pipeline: Pipeline, ends: dict[str, bool]) -> tuple[Pipeline, RollbackRecord]:
    """web, approved across an incompatible migration, about to be backed up; the
    catalog's database settings full of credentials."""
    settings = {
        "version_from": {"env": "SCHEMA_VERSION"},
        "approvers": ["S0DBAS"],
        "backup": job(["sh", "-c", f'pg_dump "{DSN}" | aws s3 cp - "$LOCATION"']),
        "backup_location": f"s3://backup:{BUCKET_KEY}@dumps/{{{{ record_id }}}}.sql.gz",
        "downgrade": job(["alembic", "-x", f"url={DSN}", "downgrade", "{{ target_schema }}"]),
    }
    config = RollbotConfig.model_validate(
        {"services": {"web": {"namespace": "prod", "migrations": settings}}}
    )
    p = replaced(pipeline, kube=Jobs(ends), config=config)  # type: ignore[arg-type]
    record = stored(p, web_request(), S.ASSESSED, S.AWAITING_APPROVAL, S.APPROVED)
    record = p.store.update(
        record.id,
        lambda r: r.model_copy(update={"migration": CROSSING, "schema_approved_by": "U0DANA"}),
    )
    return p, record


def test_a_failing_downgrade_is_written_on_the_record_and_reported_without_credentials(
    pipeline: Pipeline, sink: ReportSink
) -> None:
    p, record = backing_up(pipeline, {"backup": True, "downgrade": False})

    execute.execute(p, record)

    failed = p.store.get(record.id)
    assert failed.state is S.FAILED
    assert (failed.schema_steps, failed.schema_failed) == (("backup",), "downgrade")
    [(summary, files)] = sink.posted
    report = files[f"{record.id}-incident-report.md"]
    database = report[report.index("## Database") :]
    assert f"- Backup: Job rollbot-{record.id}-backup succeeded; the dump is at s3://backup:" in (
        database
    )
    assert f"Job rollbot-{record.id}-downgrade failed" in database
    assert "  > the schema downgrade failed, so the app was not touched" in database
    assert "downgrade failed (see the incident report)" in summary
    everything = summary + "\n".join(files.values())
    assert PASSWORD not in everything and BUCKET_KEY not in everything
    assert "rollbot:[redacted]@db.prod" in database  # the DSN's user and host still say which


def test_a_failing_backup_is_written_on_the_record_and_nothing_else_runs(
    pipeline: Pipeline, sink: ReportSink
) -> None:
    p, record = backing_up(pipeline, {"backup": False, "downgrade": True})

    execute.execute(p, record)

    failed = p.store.get(record.id)
    assert (failed.state, failed.schema_steps, failed.schema_failed) == (S.FAILED, (), "backup")
    assert failed.schema_backup == f"s3://backup:{BUCKET_KEY}@dumps/{record.id}.sql.gz"
    assert p.kube.created == [f"rollbot-{record.id}-backup"]  # type: ignore[attr-defined]
    [(_, files)] = sink.posted
    report = files[f"{record.id}-rollback-report.md"]
    assert (
        f"- Backup: Job rollbot-{record.id}-backup failed; the dump was to be written to "
        f"s3://backup:[redacted]@dumps/{record.id}.sql.gz: what is there may be partial"
    ) in report
    assert f"Job rollbot-{record.id}-downgrade not run" in report
    everything = "\n".join(files.values())
    assert PASSWORD not in everything and BUCKET_KEY not in everything
