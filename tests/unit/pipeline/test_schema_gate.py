"""A rollback across an incompatible migration never runs by itself: what the
assess stage does with an automatic rollback and an --emergency that crosses one."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from bot.config import RollbotConfig
from bot.errors import PermanentError
from bot.migrations import SchemaCrossing
from bot.pipeline import Pipeline, assess, execute
from bot.policy import NotAllowed
from tests.unit.pipeline.conftest import DeploymentsOnly, RecordingSink, S, stored, web_request

INCOMPATIBLE = SchemaCrossing(
    current_label="revision 42",
    target_label="revision 41",
    current="0042",
    target="0041",
    source="env var SCHEMA_VERSION",
    compatible=False,
    approvers=("S0DBAS",),
)


def assessed(p: Pipeline, **kwargs: Any):
    record = stored(p, web_request(**kwargs), S.ASSESSED)
    return p.store.update(record.id, lambda r: r.model_copy(update={"migration": INCOMPATIBLE}))


def policy(p: Pipeline, **fields: Any) -> Pipeline:
    return replace(p, config=RollbotConfig(**fields))


def test_an_automatic_rollback_across_it_waits_for_approval_even_where_policy_runs_them_at_once(
    pipeline: Pipeline, sink: RecordingSink
) -> None:
    p = policy(pipeline, auto_execute=True, emergency_skips_approval=True)
    record = assessed(p, trigger="automatic", emergency=True)

    assess.ask(p, record)

    waiting = p.store.get(record.id)
    assert waiting.state is S.AWAITING_APPROVAL and not waiting.emergency
    assert "never run by itself, waiting for approval and a DBA's" in waiting.timeline[-1].message
    assert sink.kinds() == ["confirmation"]


def test_an_emergency_across_it_skips_the_usual_approval_but_waits_for_a_dba(
    pipeline: Pipeline, sink: RecordingSink
) -> None:
    p = policy(pipeline, emergency_skips_approval=True)
    record = assessed(p, emergency=True)

    assess.ask(p, record)

    waiting = p.store.get(record.id)
    assert waiting.state is S.AWAITING_APPROVAL and waiting.emergency
    assert "waiting for a DBA's approval" in waiting.timeline[-1].message


def test_an_emergency_where_policy_allows_none_is_still_refused(pipeline: Pipeline) -> None:
    record = assessed(pipeline, emergency=True)
    with pytest.raises(NotAllowed, match="may not skip approval"):
        assess.ask(pipeline, record)


class FailingJobs(DeploymentsOnly):
    """Deployments, and Jobs that fail at once with a line of log."""

    def __init__(self) -> None:
        super().__init__()
        self.created: list[str] = []

    def create_job(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self.created.append(body["metadata"]["name"])
        return body

    def get_job(self, namespace: str, name: str) -> dict[str, Any]:
        return {"status": {"conditions": [{"type": "Failed", "status": "True"}]}}

    def delete_job(self, namespace: str, name: str) -> None:
        raise AssertionError("a failed Job is kept for people to read")

    def list_pods(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        return [{"metadata": {"name": "p"}}]

    def pod_log(self, namespace: str, pod: str, since_seconds: int, tail: int, container=None):
        return "FAILED: Can't locate revision identified by '0041'"


def test_a_failed_downgrade_after_the_app_says_the_state_of_both_and_where_the_backup_is(
    pipeline: Pipeline, sink: RecordingSink
) -> None:
    kube = FailingJobs()
    kube.put("prod", "web", desired=2, available=2)
    settings = {
        "version_from": {"env": "SCHEMA_VERSION"},
        "approvers": ["S0DBAS"],
        "order": "app-first",
        "backup": {"image": "postgres:16", "command": ["pg_dump"]},
        "backup_location": "s3://dumps/x.sql",
        "downgrade": {"image": "web:42", "command": ["alembic", "downgrade", "0041"]},
    }
    config = RollbotConfig.model_validate(
        {"services": {"web": {"namespace": "prod", "migrations": settings}}}
    )
    p = replace(pipeline, kube=kube, config=config)  # type: ignore[arg-type]
    record = stored(
        p, web_request(), S.ASSESSED, S.AWAITING_APPROVAL, S.APPROVED, S.BACKING_UP,
        S.ROLLING_BACK, S.VERIFYING,
    )  # fmt: skip
    crossing = INCOMPATIBLE.model_copy(update={"downgrade": True, "order": "app-first"})
    record = p.store.update(
        record.id,
        lambda r: r.model_copy(
            update={
                "migration": crossing,
                "schema_steps": ("backup",),
                "schema_backup": "s3://dumps/x.sql",
            }
        ),
    )

    execute.execute(p, record)

    failed = p.store.get(record.id)
    assert failed.state is S.FAILED
    assert kube.created == [f"rollbot-{record.id}-downgrade"]
    assert failed.error is not None
    assert failed.error.startswith(
        "the app was rolled back to revision 41, but the schema downgrade failed: revision 41 "
        "now runs on a schema it cannot run on (still at 0042, or part-way to 0041: check it "
        "(alembic current)). The database backup taken before it is at s3://dumps/x.sql."
    )
    assert "Restore the pre-rollback state" in failed.error
    assert "Can't locate revision" in failed.error


class GoneDeployment(FailingJobs):
    def get_deployment(self, namespace: str, name: str) -> dict[str, Any]:
        raise PermanentError(f"deployment {name} is gone")


def test_a_rollback_that_fails_after_the_schema_went_back_says_to_upgrade_it_before_a_restore(
    pipeline: Pipeline,
) -> None:
    kube = GoneDeployment()
    record = stored(
        pipeline, web_request(), S.ASSESSED, S.AWAITING_APPROVAL, S.APPROVED, S.BACKING_UP,
        S.ROLLING_BACK, S.VERIFYING,
    )  # fmt: skip
    crossing = INCOMPATIBLE.model_copy(update={"downgrade": True})
    record = pipeline.store.update(
        record.id,
        lambda r: r.model_copy(
            update={
                "migration": crossing,
                "schema_steps": ("backup", "downgrade"),
                "schema_backup": "s3://dumps/x.sql",
            }
        ),
    )
    p = replace(pipeline, kube=kube)  # type: ignore[arg-type]
    execute.execute(p, record)

    failed = p.store.get(record.id)
    assert failed.state is S.FAILED
    assert failed.error == (
        "deployment web is gone\nThe schema was rolled back to 0041 (its backup is at "
        "s3://dumps/x.sql): to restore the pre-rollback state, upgrade the schema to 0042 "
        "again first, or revision 42 will not run."
    )
