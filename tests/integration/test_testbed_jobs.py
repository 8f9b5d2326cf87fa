"""The test bed runs Jobs for real: their pods run to completion on the fake
kubelet, the real job controller judges them, and pods marked to run locally run
their command as a real process, here against a real PostgreSQL."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from kubernetes import client

from testbed import binaries
from testbed.controlplane import ControlPlane
from testbed.local_containers import RUN_TIMEOUT_ANNOTATION
from testbed.postgres import PostgresServer
from tests.integration.jobs import LOCAL, Jobs, condition, job_body, terminated

pytestmark = pytest.mark.cluster
MIGRATIONS = Path(__file__).parent.parent / "fixtures" / "sample_migrations"
HOOK_CHART = Path(__file__).parent.parent / "fixtures" / "charts" / "family-assistant"
ALEMBIC = ["alembic", "-c", str(MIGRATIONS / "alembic.ini")]
DATABASE_URL = {
    "name": "DATABASE_URL",
    "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}},
}


@pytest.fixture
def jobs(api_client: client.ApiClient, namespace: str) -> Jobs:
    return Jobs(api_client, namespace)


@pytest.fixture
def db_secret(jobs: Jobs, postgres_dsn: str) -> str:
    """A Secret `db` whose `url` is the test's own database, as an app's would be."""
    data = {"url": base64.b64encode(postgres_dsn.encode()).decode()}
    jobs.core.create_namespaced_secret(jobs.namespace, {"metadata": {"name": "db"}, "data": data})
    return postgres_dsn


def schema_version(dsn: str) -> str | None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("select version_num from alembic_version").fetchone()
    return str(row[0]) if row else None


def table_exists(dsn: str, table: str) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("select to_regclass(%s)", (table,)).fetchone()
    return row is not None and row[0] is not None


def test_a_job_completes_and_its_log_is_served(jobs: Jobs) -> None:
    jobs.create(job_body("report", command=["make-report", "--daily"]))

    job = jobs.finished("report")

    assert condition(job, "Complete") is not None
    assert job["status"]["succeeded"] == 1
    [pod] = jobs.pods("report")
    assert pod["status"]["phase"] == "Succeeded"
    assert terminated(pod)["exitCode"] == 0
    assert terminated(pod)["reason"] == "Completed"
    log = jobs.log(pod["metadata"]["name"])
    assert "running make-report --daily" in log
    assert log.splitlines()[-1].endswith("exiting with code 0")


def test_a_failing_job_is_failed_by_the_job_controller(jobs: Jobs) -> None:
    jobs.create(job_body("migrate", image="registry.example/app:broken-42", backoff_limit=0))

    job = jobs.finished("migrate")

    failed = condition(job, "Failed")
    assert failed is not None and failed["reason"] == "BackoffLimitExceeded"
    assert condition(job, "Complete") is None
    assert job["status"]["failed"] == 1
    [pod] = jobs.pods("migrate")
    assert pod["status"]["phase"] == "Failed"
    assert terminated(pod)["exitCode"] == 1
    assert "ERROR job failed" in jobs.log(pod["metadata"]["name"])


def test_a_job_is_retried_up_to_its_backoff_limit(jobs: Jobs) -> None:
    jobs.create(job_body("flaky", image="registry.example/app:broken-1", backoff_limit=1))

    job = jobs.finished("flaky", timeout=90)  # the controller waits ~10 s before a retry

    assert condition(job, "Failed") is not None
    assert job["status"]["failed"] == 2
    assert len(jobs.pods("flaky")) == 2


def test_a_local_job_runs_its_command_with_its_env_and_exit_code(jobs: Jobs) -> None:
    jobs.core.create_namespaced_config_map(
        jobs.namespace, {"metadata": {"name": "settings"}, "data": {"greeting": "hello"}}
    )
    env = [
        {"name": "WHO", "value": "test bed"},
        {
            "name": "GREETING",
            "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "greeting"}},
        },
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    script = 'echo "$GREETING, $WHO from $POD"; echo "to stderr" >&2; exit 3'
    body = job_body("local", command=["sh", "-c", script], env=env, annotations=LOCAL)
    jobs.create(body)

    job = jobs.finished("local")

    assert condition(job, "Failed") is not None
    [pod] = jobs.pods("local")
    assert terminated(pod)["exitCode"] == 3
    assert terminated(pod)["reason"] == "Error"
    name = pod["metadata"]["name"]
    assert jobs.log(name).splitlines() == [f"hello, test bed from {name}", "to stderr"]


def test_an_on_failure_job_is_restarted_in_place_until_it_succeeds(
    jobs: Jobs, tmp_path: Path
) -> None:
    script = "if [ -e tried ]; then echo second; else touch tried; echo first; exit 1; fi"
    body = job_body(
        "retry",
        command=["sh", "-c", script],
        annotations=LOCAL,
        backoff_limit=2,
        restart_policy="OnFailure",
    )
    body["spec"]["template"]["spec"]["containers"][0]["workingDir"] = str(tmp_path)
    jobs.create(body)

    job = jobs.finished("retry")

    assert condition(job, "Complete") is not None
    [pod] = jobs.pods("retry")
    status = pod["status"]["containerStatuses"][0]
    assert status["restartCount"] == 1
    assert status["lastState"]["terminated"]["exitCode"] == 1
    assert terminated(pod)["exitCode"] == 0
    name = pod["metadata"]["name"]
    assert jobs.log(name).strip() == "second"
    previous = jobs.core.read_namespaced_pod_log(name, jobs.namespace, previous=True)
    assert previous.strip() == "first"


def test_a_local_job_expands_references_in_its_arguments(jobs: Jobs) -> None:
    env = [{"name": "TARGET", "value": "0041"}]
    command = ["echo", "downgrade $(TARGET)", "$$(TARGET)", "$(UNSET)"]
    jobs.create(job_body("expand", command=command, env=env, annotations=LOCAL))

    jobs.finished("expand")

    [pod] = jobs.pods("expand")
    assert jobs.log(pod["metadata"]["name"]).strip() == "downgrade 0041 $(TARGET) $(UNSET)"


def test_a_local_job_whose_secret_is_missing_waits_in_config_error(jobs: Jobs) -> None:
    jobs.create(job_body("nosecret", command=["true"], env=[DATABASE_URL], annotations=LOCAL))

    deadline = time.monotonic() + 30
    while True:
        pods = jobs.pods("nosecret")
        statuses = pods[0].get("status", {}).get("containerStatuses") if pods else None
        if statuses:
            break
        assert time.monotonic() < deadline, "no container status reported"
        time.sleep(0.2)
    waiting = statuses[0]["state"]["waiting"]
    assert waiting["reason"] == "CreateContainerConfigError"
    assert waiting["message"] == 'secret "db" not found'
    assert pods[0]["status"]["phase"] == "Pending"


def test_a_local_job_is_killed_after_its_timeout(jobs: Jobs) -> None:
    annotations = {**LOCAL, RUN_TIMEOUT_ANNOTATION: "1"}
    jobs.create(job_body("slow", command=["sleep", "60"], annotations=annotations))

    jobs.finished("slow", timeout=30)

    [pod] = jobs.pods("slow")
    assert terminated(pod)["exitCode"] == 137  # 128 + SIGKILL
    assert "killed after 1s" in terminated(pod)["message"]


def test_a_local_process_ends_when_its_pod_is_deleted(jobs: Jobs, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    script = f"echo $$$$ > {pid_file}; exec sleep 120"  # $$ is Kubernetes' escaped $
    jobs.create(job_body("long", command=["sh", "-c", script], annotations=LOCAL))
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline, "the local process did not start"
        time.sleep(0.2)
    pid = int(pid_file.read_text())

    jobs.delete("long")

    deadline = time.monotonic() + 30
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, f"process {pid} still runs after its pod went"
        time.sleep(0.2)


def test_local_jobs_upgrade_and_downgrade_a_real_postgres(jobs: Jobs, db_secret: str) -> None:
    upgrade = job_body(
        "upgrade", command=[*ALEMBIC, "upgrade", "head"], env=[DATABASE_URL], annotations=LOCAL
    )
    jobs.create(upgrade)
    assert condition(jobs.finished("upgrade"), "Complete") is not None
    assert schema_version(db_secret) == "0042"
    assert table_exists(db_secret, "memory_store")

    downgrade = job_body(
        "downgrade",
        image="registry.example/family-assistant:41",
        command=[*ALEMBIC, "downgrade", "$(TARGET)"],
        env=[DATABASE_URL, {"name": "TARGET", "value": "0041"}],
        annotations=LOCAL,
    )
    jobs.create(downgrade)

    assert condition(jobs.finished("downgrade"), "Complete") is not None
    assert schema_version(db_secret) == "0041"
    assert not table_exists(db_secret, "memory_store")
    assert table_exists(db_secret, "conversations")
    [pod] = jobs.pods("downgrade")
    assert "Running downgrade 0042 -> 0041" in jobs.log(pod["metadata"]["name"])


def test_a_local_downgrade_to_an_unknown_revision_fails_the_job(jobs: Jobs, db_secret: str) -> None:
    command = [*ALEMBIC, "downgrade", "0007"]
    jobs.create(job_body("bad", command=command, env=[DATABASE_URL], annotations=LOCAL))

    job = jobs.finished("bad")

    assert condition(job, "Failed") is not None
    [pod] = jobs.pods("bad")
    assert terminated(pod)["exitCode"] != 0
    assert "0007" in jobs.log(pod["metadata"]["name"])


def test_a_local_pg_dump_job_writes_its_dump(
    jobs: Jobs, db_secret: str, postgres: PostgresServer, tmp_path: Path
) -> None:
    alembic = str(Path(sys.executable).parent / "alembic")  # the tests' own, as the Job's is
    subprocess.run(
        [alembic, *ALEMBIC[1:], "upgrade", "head"],
        env={**os.environ, "DATABASE_URL": db_secret},
        check=True,
    )
    backups = tmp_path / "backups"  # a hostPath volume at its own path: the same here and there
    dump = backups / "before-downgrade.sql"
    body = job_body(
        "backup",
        command=["pg_dump", "--dbname=$(DATABASE_URL)", f"--file={dump}"],
        env=[DATABASE_URL],
        annotations=LOCAL,
    )
    pod_spec = body["spec"]["template"]["spec"]
    pod_spec["volumes"] = [
        {"name": "backups", "hostPath": {"path": str(backups), "type": "DirectoryOrCreate"}}
    ]
    pod_spec["containers"][0]["volumeMounts"] = [{"name": "backups", "mountPath": str(backups)}]
    jobs.create(body)

    assert condition(jobs.finished("backup"), "Complete") is not None
    text = dump.read_text()
    assert "CREATE TABLE public.memory_store" in text
    assert "0042" in text  # alembic_version's row


def test_a_helm_hook_job_migrates_the_database_before_the_release(
    jobs: Jobs,
    db_secret: str,
    control_plane: ControlPlane,
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "KUBECONFIG": str(control_plane.kubeconfig),
        **{
            f"HELM_{kind}_HOME": str(tmp_path / kind.lower())
            for kind in ("CACHE", "CONFIG", "DATA")
        },
    }

    def helm(*args: str) -> None:
        subprocess.run(
            [str(binaries.testbed_binaries() / "helm"), *args, "-n", jobs.namespace, "--wait"],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )

    values = ["--set", f"alembicConfig={MIGRATIONS / 'alembic.ini'}"]
    helm("install", "family-assistant", str(HOOK_CHART), *values)
    assert schema_version(db_secret) == "0041"

    helm("upgrade", "family-assistant", str(HOOK_CHART), *values, "--set", "schema=0042,tag=42")

    assert schema_version(db_secret) == "0042"
    job = jobs.get("family-assistant-migrate")
    assert job["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "0042"
    assert condition(job, "Complete") is not None
