"""The test bed's run-to-completion pods: local processes, `$(VAR)` expansion, job logs."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from testbed.container_logs import SECOND, LogQuery, NoLog, nanos, read_log
from testbed.local_containers import (
    DEFAULT_TIMEOUT,
    RUN_LOCAL_ANNOTATION,
    RUN_TIMEOUT_ANNOTATION,
    LocalProcess,
    expand,
    process_env,
    run_timeout,
    runs_local,
)

STARTED, FINISHED = "2026-11-21T10:00:00Z", "2026-11-21T10:00:04Z"


def job_pod(state: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "migrate-x1", "uid": "9a7f", "annotations": {}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "app:42", "command": ["migrate", "up"]}],
            **spec,
        },
        "status": {
            "startTime": STARTED,
            "containerStatuses": [{"name": "main", "restartCount": 0, "state": state}],
        },
    }


def test_expansion_replaces_defined_names_and_keeps_the_rest_as_written() -> None:
    env = {"TARGET": "0041", "DB": "postgresql://db/app"}
    assert expand("downgrade $(TARGET) on $(DB)", env) == "downgrade 0041 on postgresql://db/app"
    assert expand("$(MISSING) stays", env) == "$(MISSING) stays"
    assert expand("$$(TARGET) and $$HOME", env) == "$(TARGET) and $HOME"
    assert expand("$TARGET", env) == "$TARGET"  # only $(…) is Kubernetes' syntax


def test_only_pods_marked_true_run_locally() -> None:
    def annotated(value: str) -> dict[str, Any]:
        return {"metadata": {"annotations": {RUN_LOCAL_ANNOTATION: value}}}

    assert runs_local(annotated("true")) and runs_local(annotated("True"))
    assert not runs_local(annotated("yes"))
    assert not runs_local({"metadata": {}})


def test_the_timeout_is_the_pods_deadline_else_the_annotation_else_the_default() -> None:
    assert run_timeout({"metadata": {}, "spec": {}}) == DEFAULT_TIMEOUT
    annotated = {"metadata": {"annotations": {RUN_TIMEOUT_ANNOTATION: "7"}}, "spec": {}}
    assert run_timeout(annotated) == 7
    assert run_timeout({**annotated, "spec": {"activeDeadlineSeconds": 30}}) == 30
    garbled = {"metadata": {"annotations": {RUN_TIMEOUT_ANNOTATION: "soon"}}, "spec": {}}
    assert run_timeout(garbled) == DEFAULT_TIMEOUT


def test_a_process_gets_the_containers_env_over_a_minimal_base(tmp_path: Path) -> None:
    env = process_env({"metadata": {"name": "job-x"}}, {"DATABASE_URL": "postgresql://x"}, tmp_path)
    assert env["DATABASE_URL"] == "postgresql://x"
    assert env["HOSTNAME"] == "job-x"
    assert env["PATH"].split(os.pathsep)[0] == os.path.dirname(sys.executable)
    assert "PYTHONPATH" not in env and "KUBECONFIG" not in env


def test_a_local_process_logs_its_output_and_ends_with_its_exit_code(tmp_path: Path) -> None:
    process = LocalProcess(
        ["sh", "-c", 'echo "one $WHO"; echo two >&2; exit 4'],
        {"PATH": os.defpath, "WHO": "there"},
        tmp_path,
        timeout=30,
    )
    ended = process.run()
    assert (ended.exit_code, ended.reason) == (4, "Error")
    assert [line.text for line in process.lines] == ["one there", "two"]


def test_a_local_process_past_its_timeout_is_killed(tmp_path: Path) -> None:
    ended = LocalProcess(["sleep", "30"], {"PATH": os.defpath}, tmp_path, timeout=0.5).run()
    assert ended.exit_code == 137
    assert "killed after 0.5s" in ended.message


def test_a_missing_command_is_a_start_error(tmp_path: Path) -> None:
    ended = LocalProcess(["no-such-tool"], {"PATH": os.defpath}, tmp_path, timeout=5).run()
    assert (ended.exit_code, ended.reason) == (128, "StartError")
    assert "no-such-tool" in ended.message
    assert LocalProcess([], {}, tmp_path, timeout=5).run().reason == "StartError"


def test_a_running_job_container_logs_what_it_runs() -> None:
    pod = job_pod({"running": {"startedAt": STARTED}})
    text = read_log(pod, "main", LogQuery(), nanos(STARTED) + 2 * SECOND).decode()
    assert text.splitlines() == ["INFO  starting main app:42 (pid 1)", "INFO  running migrate up"]


def test_a_finished_job_container_logs_how_it_ended() -> None:
    done = {"exitCode": 0, "reason": "Completed", "startedAt": STARTED, "finishedAt": FINISHED}
    text = read_log(job_pod({"terminated": done}), "main", LogQuery(), nanos(FINISHED)).decode()
    assert text.splitlines()[-2:] == ["INFO  done", "INFO  exiting with code 0"]

    failed = {**done, "exitCode": 2, "reason": "Error"}
    text = read_log(job_pod({"terminated": failed}), "main", LogQuery(), nanos(FINISHED)).decode()
    assert "ERROR job failed: " in text
    assert text.splitlines()[-1] == "ERROR exiting with code 2"


def test_a_job_container_has_no_previous_log_until_it_was_restarted() -> None:
    pod = job_pod({"running": {"startedAt": STARTED}})
    with pytest.raises(NoLog, match="previous terminated"):
        read_log(pod, "main", LogQuery(previous=True), nanos(FINISHED))
