"""The test bed's made-up container logs: stable, growing, steered by the template."""

from __future__ import annotations

from typing import Any

import pytest

from testbed.container_logs import (
    LOG_ERRORS_ANNOTATION,
    LOG_ERRORS_ENV,
    SECOND,
    LogQuery,
    NoLog,
    nanos,
    read_log,
)

STARTED = "2026-11-21T10:00:00Z"
T0 = nanos(STARTED)


def pod(
    *, env: dict[str, str] | None = None, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "metadata": {"name": "web-1", "uid": "0b1c", "annotations": annotations or {}},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "app:v1",
                    "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
                }
            ]
        },
        "status": {
            "startTime": STARTED,
            "containerStatuses": [
                {"name": "app", "restartCount": 0, "state": {"running": {"startedAt": STARTED}}}
            ],
        },
    }


def crash_looping(restarts: int) -> dict[str, Any]:
    body = pod()
    body["spec"]["containers"][0]["image"] = "app:v2-broken"
    body["status"]["containerStatuses"][0] = {
        "name": "app",
        "restartCount": restarts,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2026-11-21T10:01:00Z"}},
    }
    return body


def lines(body: dict[str, Any], at_second: float, **query: Any) -> list[str]:
    now = T0 + int(at_second * SECOND)
    return read_log(body, "app", LogQuery(**query), now).decode().splitlines()


def test_a_serving_container_logs_its_start_then_two_requests_a_second() -> None:
    log = lines(pod(), 10.9)
    assert log[:4] == [
        "INFO  starting app app:v1 (pid 1)",
        "INFO  loaded 0 settings from the environment",
        "INFO  listening on 0.0.0.0:8080",
        "INFO  ready to serve requests",
    ]
    assert len(log) == 4 + 20  # from 1 s after the start, every 0.5 s
    assert all('HTTP/1.1" ' in line for line in log[4:])


def test_the_same_pod_read_later_gives_the_same_lines_and_more() -> None:
    early, late = lines(pod(), 30), lines(pod(), 60)
    assert late[: len(early)] == early
    assert len(late) > len(early)


def test_tail_is_taken_before_since_as_the_kubelet_does() -> None:
    whole = lines(pod(), 60)
    assert lines(pod(), 60, tail_lines=3) == whole[-3:]
    assert lines(pod(), 60, tail_lines=0) == []
    since = T0 + 50 * SECOND
    assert len(lines(pod(), 60, since=since)) in (19, 20, 21)
    assert lines(pod(), 60, tail_lines=5, since=since) == whole[-5:]


def test_timestamps_are_rfc3339_with_nanoseconds_and_in_order() -> None:
    stamped = lines(pod(), 5, timestamps=True)
    stamps = [line.split(" ", 1)[0] for line in stamped]
    assert stamps[0] == "2026-11-21T10:00:00.000000000Z"
    assert all(len(s) == len("2026-11-21T10:00:00.000000000Z") for s in stamps)
    assert stamps == sorted(stamps)


@pytest.mark.parametrize(
    "steer",
    [{"env": {LOG_ERRORS_ENV: "0.3"}}, {"annotations": {LOG_ERRORS_ANNOTATION: "0.3"}}],
    ids=["env", "annotation"],
)
def test_an_error_fraction_makes_that_share_of_requests_error_lines(steer: Any) -> None:
    requests = lines(pod(**steer), 500.5)[4:]
    errors = [line for line in requests if line.startswith("ERROR")]
    assert abs(len(errors) - 0.3 * len(requests)) <= 1
    assert all(" 50" in line for line in errors)  # 5xx answers


def test_the_container_env_wins_over_the_annotation() -> None:
    body = pod(env={LOG_ERRORS_ENV: "0"}, annotations={LOG_ERRORS_ANNOTATION: "1"})
    assert not any(line.startswith("ERROR") for line in lines(body, 60))


def test_a_crash_looping_container_logs_a_traceback_and_its_previous_attempt() -> None:
    log = lines(crash_looping(3), 90)
    assert log[2].startswith("ERROR startup failed: ")
    assert "Traceback (most recent call last):" in log
    assert lines(crash_looping(3), 90, previous=True) == log  # it fails the same way each time
    with pytest.raises(NoLog, match="previous terminated"):
        lines(crash_looping(1), 90, previous=True)


def test_a_container_not_started_has_no_log_yet() -> None:
    body = pod()
    body["status"] = {}
    with pytest.raises(NoLog, match="waiting to start: ContainerCreating"):
        lines(body, 1)
