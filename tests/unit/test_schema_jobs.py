"""The Jobs of a schema step: their bodies from the catalog's templates, and how
one is followed to its end (over a fake of rollbot's own Kubernetes wrapper; the
real Jobs run in tests/integration/test_schema_steps.py)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.errors import Conflict, PermanentError
from bot.migrations import JobTemplate
from bot.schema_jobs import job_body, job_name, run_job

Body = dict[str, Any]

DOWNGRADE = JobTemplate(
    image="{{ current_image }}",
    command=["alembic", "downgrade", "{{ target_schema }}"],
    env=[
        {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}},
        {"name": "BACKUP", "value": "{{ backup_location }}"},
    ],
    pod_annotations={"example.com/for": "{{ service }}"},
    timeout_seconds=120,
)
VARIABLES = {
    "current_image": "ghcr.io/acme/todo:42",
    "target_schema": "0041",
    "backup_location": "s3://dumps/rb-1.sql.gz",
    "service": "todo",
}


def test_a_downgrade_job_is_named_after_its_rollback_and_runs_the_rendered_command_once():
    body = job_body(
        DOWNGRADE, record_id="rb-1a2b3c4d", step="downgrade", namespace="prod", variables=VARIABLES
    )
    assert body["metadata"]["name"] == job_name("rb-1a2b3c4d", "downgrade")
    assert body["metadata"]["name"] == "rollbot-rb-1a2b3c4d-downgrade"
    spec = body["spec"]
    assert spec["backoffLimit"] == 0 and spec["activeDeadlineSeconds"] == 120
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    [container] = pod["containers"]
    assert container["image"] == "ghcr.io/acme/todo:42"
    assert container["command"] == ["alembic", "downgrade", "0041"]
    assert container["env"][0]["valueFrom"] == {"secretKeyRef": {"name": "db", "key": "url"}}
    assert container["env"][1] == {"name": "BACKUP", "value": "s3://dumps/rb-1.sql.gz"}
    assert spec["template"]["metadata"]["annotations"] == {"example.com/for": "todo"}
    assert spec["template"]["metadata"]["labels"]["rollbot.dev/record"] == "rb-1a2b3c4d"


def test_an_unknown_template_variable_is_an_error_not_an_empty_argument():
    broken = JobTemplate(image="x", command=["alembic", "downgrade", "{{ target_revison }}"])
    with pytest.raises(PermanentError, match="migrations.downgrade: cannot render"):
        job_body(broken, record_id="rb-1", step="downgrade", namespace="p", variables=VARIABLES)


class FakeJobs:
    """Jobs that finish after a few looks, with a pod whose log grows."""

    def __init__(self, outcome: str = "Complete", looks: int = 2, exists: bool = False) -> None:
        self.outcome, self.looks = outcome, looks
        self.created: list[Body] = []
        self.exists = exists
        self.log: list[str] = []
        self.deleted: list[str] = []

    def create_job(self, namespace: str, body: Body) -> Body:
        if self.exists:
            raise Conflict("jobs.batch already exists")
        self.created.append(body)
        return body

    def get_job(self, namespace: str, name: str) -> Body:
        self.looks -= 1
        self.log.append(f"step {len(self.log) + 1} password=hunter2")
        if self.looks > 0:
            return {"status": {}}
        return {"status": {"conditions": [{"type": self.outcome, "status": "True"}]}}

    def delete_job(self, namespace: str, name: str) -> None:
        self.deleted.append(name)

    def list_pods(self, namespace: str, label_selector: str) -> list[Body]:
        assert label_selector.startswith("job-name=rollbot-")
        return [{"metadata": {"name": "pod-1"}}]

    def pod_log(
        self, namespace: str, pod: str, since_seconds: int, tail: int, container: str | None = None
    ) -> str:
        return "\n".join(self.log)


def _run(kube: FakeJobs, timeout: float = 30) -> tuple[Any, list[str]]:
    said: list[str] = []
    body = job_body(
        DOWNGRADE, record_id="rb-1", step="downgrade", namespace="p", variables=VARIABLES
    )
    return run_job(kube, "p", body, said.append, timeout=timeout, poll=0), said


def test_a_job_is_followed_to_its_end_with_each_log_line_said_once_and_redacted():
    kube = FakeJobs(looks=3)
    outcome, said = _run(kube)
    assert outcome.succeeded and len(kube.created) == 1
    lines = [line for text in said[1:] for line in text.split(": ", 1)[1].splitlines()]
    assert lines == [f"step {n} password=[redacted]" for n in (1, 2, 3)]
    assert "hunter2" not in "".join(said)


def test_a_job_a_previous_worker_created_is_followed_not_created_again():
    kube = FakeJobs(exists=True)
    outcome, said = _run(kube)
    assert outcome.succeeded and not kube.created
    assert "exists already" in said[0]


def test_a_failed_job_says_so_with_its_last_lines():
    outcome, _ = _run(FakeJobs(outcome="Failed"))
    assert not outcome.succeeded
    assert outcome.tail[-1] == "step 2 password=[redacted]"


def test_a_job_with_no_end_in_time_is_deleted_so_that_it_cannot_run_later():
    kube = FakeJobs(looks=10**6)
    outcome, _ = _run(kube, timeout=0)
    assert not outcome.succeeded
    assert kube.deleted == ["rollbot-rb-1-downgrade"]
    assert outcome.tail[-1] == "(no end after 0 s: the Job was deleted)"
