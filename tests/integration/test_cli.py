"""`rollbot` as a CI job runs it: a real process, real exit codes, a real cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.integration.workloads import container

pytestmark = pytest.mark.cluster
#: The key the bot seals its records with (the chart's Secret): a terminal that
#: records a rollback needs it too.
STORE_KEY = "test-store-key"


def rollbot(
    control_plane, *args: str, kubeconfig: str | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KUBECONFIG": kubeconfig or str(control_plane.kubeconfig),
        "ROLLBOT_ACTOR": "ci-job",
    }
    env.pop("ROLLBOT_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        env=env,
        input=stdin,
        timeout=120,
    )


def test_rollback_with_yes_exits_zero_once_healthy(control_plane, workloads):
    workloads.create("web", ["app:v1", "app:v2"])
    result = rollbot(
        control_plane,
        "rollback",
        "web",
        "-n",
        workloads.namespace,
        "--yes",
        "--reason",
        "smoke tests failed",
    )
    assert result.returncode == 0, result.stderr
    assert "rolled back to app:v1 and healthy" in result.stdout
    assert "successfully rolled out" in result.stdout  # CI logs get one line per state
    dep = workloads.get("web")
    assert dep["status"]["availableReplicas"] == 2
    assert dep["metadata"]["annotations"]["kubernetes.io/change-cause"] == (
        "rollbot: rolled back by ci-job from revision 2 to 1: smoke tests failed"
    )


def test_dry_run_shows_the_diff_and_changes_nothing(control_plane, workloads):
    workloads.create("web", ["app:v1", "app:v2"])
    generation = workloads.get("web")["metadata"]["generation"]
    result = rollbot(control_plane, "rollback", "web", "-n", workloads.namespace, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "container app: image: app:v2 → app:v1" in result.stdout
    assert "dry run: nothing was changed" in result.stdout
    assert workloads.get("web")["metadata"]["generation"] == generation


def test_without_a_terminal_and_without_yes_it_refuses_and_changes_nothing(
    control_plane, workloads
):
    workloads.create("web", ["app:v1", "app:v2"])
    result = rollbot(control_plane, "rollback", "web", "-n", workloads.namespace, stdin="y\n")
    assert result.returncode == 2
    assert "pass --yes" in result.stderr
    assert workloads.images_of("web") == ["app:v2"]


def test_a_rollout_that_fails_exits_one(control_plane, workloads):
    workloads.create("web", ["app:v1-broken", "app:v2"], progress_deadline=4)
    result = rollbot(
        control_plane, "rollback", "web", "-n", workloads.namespace, "--yes", "--timeout", "60s"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    # The controller's condition, or rollbot's own watch of the deadline when it notices first.
    assert "progress deadline" in result.stderr


def test_a_rollout_slower_than_the_timeout_exits_one(control_plane, workloads):
    workloads.create("web", ["app:v1-broken", "app:v2"])
    result = rollbot(
        control_plane, "rollback", "web", "-n", workloads.namespace, "--yes", "--timeout", "2s"
    )
    assert result.returncode == 1
    assert "timed out after 2s" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rollback", "web", "--to-revision", "7"], "unable to find specified revision 7"),
        (["rollback", "ghost"], "deployment 'ghost' not found"),
        (["rollback", "Web_App"], "not a valid deployment name"),
        (["rollback", "web", "--timeout", "soon"], "is not a duration"),
        (["rollback", "web", "--to-revision", "-1"], "--to-revision takes 0 (the previous"),
        (["rollback", "web", "--to-revision", "two"], "takes a revision number, not 'two'"),
        (["rollback"], "the following arguments are required: deployment"),
    ],
)
def test_bad_input_exits_two_with_a_clear_message(control_plane, workloads, args, message):
    workloads.create("web", ["app:v1", "app:v2"])
    result = rollbot(control_plane, *args, "-n", workloads.namespace)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert workloads.images_of("web") == ["app:v2"]


def test_already_at_target_is_a_success_that_changes_nothing(control_plane, workloads):
    workloads.create("web", ["app:v1", "app:v2"])
    result = rollbot(
        control_plane, "rollback", "web", "-n", workloads.namespace, "--to-revision", "2", "--yes"
    )
    assert result.returncode == 0
    assert "already matches revision 2" in result.stdout


def test_history_lists_revisions_with_change_causes_and_images(control_plane, workloads):
    workloads.create("web", ["app:v1", "app:v2"])
    result = rollbot(control_plane, "history", "web", "-n", workloads.namespace, "-o", "json")
    assert result.returncode == 0, result.stderr
    assert '"change_cause": "revision 2: app:v2"' in result.stdout
    assert '"images": [\n      "app=app:v1"' in result.stdout


def test_status_reports_a_missed_deadline_with_exit_one(control_plane, workloads):
    workloads.create("web", ["app:v1", "app:v2-broken"], progress_deadline=3, wait=False)
    workloads.wait_deadline_exceeded("web")
    result = rollbot(control_plane, "status", "web", "-n", workloads.namespace, "--no-watch")
    assert result.returncode == 1
    assert 'deployment "web" exceeded its progress deadline' in result.stdout


def test_an_unreachable_api_exits_three(control_plane, tmp_path, workloads):
    config = tmp_path / "kubeconfig"
    config.write_text(
        control_plane.kubeconfig.read_text().replace(control_plane.server, "https://127.0.0.1:1")
    )
    result = rollbot(
        control_plane, "rollback", "web", "-n", workloads.namespace, "--yes", kubeconfig=str(config)
    )
    assert result.returncode == 3
    assert "Kubernetes API is unavailable" in result.stderr


def test_rollback_to_an_image_tag_like_rollback_sh_v1_2_3(control_plane, workloads):
    workloads.create(
        "web",
        [
            {"containers": [container("app", "reg.local/app:v1"), container("proxy", "envoy:1")]},
            {"containers": [container("app", "reg.local/app:v2"), container("proxy", "envoy:2")]},
        ],
    )
    never = rollbot(
        control_plane,
        "rollback",
        "web",
        "-n",
        workloads.namespace,
        "--yes",
        "--to-tag",
        "v7",
        "--container",
        "app",
    )
    assert never.returncode == 2 and "'v7' was never deployed" in never.stderr
    result = rollbot(
        control_plane,
        "rollback",
        "web",
        "-n",
        workloads.namespace,
        "--yes",
        "--to-tag",
        "v1",
        "--container",
        "app",
        "--reason",
        "v2 leaks memory",
    )
    assert result.returncode == 0, result.stderr
    assert workloads.images_of("web") == ["reg.local/app:v1", "envoy:2"]
    assert workloads.get("web")["metadata"]["annotations"]["kubernetes.io/change-cause"] == (
        "rollbot: rolled back by ci-job from revision 2 to image tag v1: v2 leaks memory"
    )


def test_rollbot_worker_runs_jobs_and_answers_its_probes(
    control_plane, redis_server, redis_client, workloads
):
    import httpx

    from bot.store import Job, JobQueue
    from testbed.controlplane import free_port
    from testbed.slack_api import FakeSlackApi

    workloads.create("web", ["app:v1", "app:v2"])
    port = free_port()
    with FakeSlackApi() as slack:
        env = {
            **os.environ,
            "KUBECONFIG": str(control_plane.kubeconfig),
            "REDIS_URL": redis_server.url,
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_API_URL": slack.base_url,
            "ROLLBOT_BIND": "127.0.0.1",
        }
        env.pop("ROLLBOT_CONFIG", None)
        worker = subprocess.Popen(
            [sys.executable, "-c", "from handlers.main import main; main()", "worker"],
            env={**env, "ROLLBOT_WORKER_PORT": str(port)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the worker's /readyz never answered"
                time.sleep(0.2)
            assert httpx.post(f"http://127.0.0.1:{port}/slack/events").status_code == 404

            JobQueue(redis_client).enqueue(
                Job(
                    kind="history",
                    args={
                        "namespace": workloads.namespace,
                        "workload": "web",
                        "user": "U0ALICE",
                        "channel": "C0INCIDENT",
                    },
                )
            )
            deadline = time.monotonic() + 30
            while not slack.calls("chat.postEphemeral"):
                assert time.monotonic() < deadline, "the worker never ran the job"
                time.sleep(0.2)
            assert "Rollout history of deployment" in str(slack.calls("chat.postEphemeral")[0])
        finally:
            worker.terminate()
            worker.wait(10)


def test_a_terminal_rollback_is_refused_while_slack_holds_the_workload(
    control_plane, workloads, redis_server, redis_client, monkeypatch
):
    from bot.store import RollbackStore

    workloads.create("web", ["app:v1", "app:v2"])
    generation = workloads.get("web")["metadata"]["generation"]
    key = f"{workloads.namespace}/web"
    assert RollbackStore(redis_client).lock_workload(key, "rb-1a2b3c4d") is None
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    result = rollbot(control_plane, "rollback", "web", "-n", workloads.namespace, "--yes")
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"rollback rb-1a2b3c4d of {key} is in progress" in result.stderr
    assert workloads.get("web")["metadata"]["generation"] == generation


def test_a_terminal_rollback_holds_the_workload_while_it_runs_and_lets_go(
    control_plane, workloads, redis_server, redis_client
):
    workloads.create("web", ["app:v1", "app:v2"])
    workloads.patch("web", {"spec": {"minReadySeconds": 3}})
    workloads.wait_complete("web")
    env = {
        **os.environ,
        "KUBECONFIG": str(control_plane.kubeconfig),
        "ROLLBOT_ACTOR": "ci-job",
        "REDIS_URL": redis_server.url,
        "ROLLBOT_STORE_KEY": STORE_KEY,
    }
    env.pop("ROLLBOT_CONFIG", None)
    cli = subprocess.Popen(
        [sys.executable, "-m", "bot", "rollback", "web", "-n", workloads.namespace, "--yes"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    key = f"rollbot:lock:{workloads.namespace}/web"
    holders = set()
    while cli.poll() is None:
        if holder := redis_client.get(key):
            holders.add(holder)
        time.sleep(0.05)
    output = cli.stdout.read() if cli.stdout else ""
    assert cli.returncode == 0, output
    (holder,) = holders  # held in the name of the rollback's record
    assert f"recorded as {holder}" in output
    assert redis_client.get(key) is None, "let go"


def test_a_terminal_rollback_is_on_the_record_slack_reads(
    control_plane, workloads, redis_server, redis_client, monkeypatch
):
    from bot.change_events import CHANGES
    from bot.records import RollbackState
    from bot.store import RollbackStore

    workloads.create("web", ["app:v1", "app:v2"])
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("ROLLBOT_STORE_KEY", STORE_KEY)
    result = rollbot(
        control_plane, "rollback", "web", "-n", workloads.namespace, "--yes",
        "--reason", "v2 leaks memory; token xoxb-1234567890-abcdefghij",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    (record,) = RollbackStore(redis_client).recent(5)
    assert (record.trigger, record.workload) == ("cli", "web")
    assert record.state is RollbackState.SUCCEEDED
    assert (record.requested_by, record.approved_by) == ("ci-job", "ci-job")
    assert (record.from_revision, record.target_revision) == (2, 1)
    assert "xoxb-1234567890" not in record.reason, "redacted, as a Slack reason is"
    assert [e.state for e in record.timeline] == [
        RollbackState.REQUESTED, RollbackState.ASSESSED, RollbackState.AWAITING_APPROVAL,
        RollbackState.APPROVED, RollbackState.BACKING_UP, RollbackState.ROLLING_BACK,
        RollbackState.VERIFYING, RollbackState.SUCCEEDED,
    ]  # fmt: skip
    assert "confirmed with --yes by ci-job" in [e.message for e in record.timeline]
    told = [json.loads(e)["kind"] for e in redis_client.lrange(CHANGES, 0, -1)]
    assert told == ["started", "finished"], "the incident tools hear of it too"
    assert redis_client.keys("rollbot:lock:*") == []


def test_a_terminal_rollback_that_fails_ends_its_record_failed(
    control_plane, workloads, redis_server, redis_client, monkeypatch
):
    from bot.records import RollbackState
    from bot.store import RollbackStore

    workloads.create("web", ["app:v1-broken", "app:v2"])
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("ROLLBOT_STORE_KEY", STORE_KEY)
    result = rollbot(
        control_plane, "rollback", "web", "-n", workloads.namespace, "--yes", "--timeout", "2s"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    (record,) = RollbackStore(redis_client).recent(5)
    assert record.state is RollbackState.FAILED and record.trigger == "cli"
    assert record.error and "timed out after 2s" in record.error
    assert redis_client.keys("rollbot:lock:*") == []


def test_a_refused_terminal_rollback_writes_no_record(
    control_plane, workloads, redis_server, redis_client, monkeypatch
):
    from bot.store import RollbackStore

    workloads.create("web", ["app:v1", "app:v2"])
    store = RollbackStore(redis_client)
    assert store.lock_workload(f"{workloads.namespace}/web", "rb-0badc0de") is None
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("ROLLBOT_STORE_KEY", STORE_KEY)
    result = rollbot(control_plane, "rollback", "web", "-n", workloads.namespace, "--yes")
    assert result.returncode == 2, result.stdout + result.stderr
    assert store.recent(5) == []


def test_a_terminal_rollback_interrupted_ends_failed_and_lets_go(
    redis_server, redis_client, monkeypatch
):
    from bot.cli_record import on_the_record
    from bot.records import RollbackState
    from bot.store import RollbackStore
    from bot.strategies.base import Plan, Request

    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.setenv("ROLLBOT_STORE_KEY", STORE_KEY)
    request = Request("prod", "web")
    plan = Plan(
        "undo", "prod", "deployment web", "revision 4", "revision 3", (), {}, ("web",),
        from_revision=4, target_revision=3,
    )  # fmt: skip
    with (
        pytest.raises(KeyboardInterrupt),
        on_the_record(request, plan, "alice", "", "confirmed at the prompt", 60, print) as record,
    ):
        assert record is not None
        assert redis_client.get("rollbot:lock:prod/web") == record.id
        raise KeyboardInterrupt
    saved = RollbackStore(redis_client).get(record.id)
    assert saved.state is RollbackState.FAILED and saved.error == "interrupted in the terminal"
    assert redis_client.keys("rollbot:lock:*") == []


def test_redis_lost_after_the_cluster_changed_is_said_and_the_outcome_stands(monkeypatch):
    from bot.cli_record import on_the_record
    from bot.strategies.base import Plan, Request
    from testbed.redis_server import RedisServer

    server = RedisServer().start()
    monkeypatch.setenv("REDIS_URL", server.url)
    monkeypatch.setenv("ROLLBOT_STORE_KEY", STORE_KEY)
    plan = Plan("undo", "prod", "deployment web", "revision 4", "revision 3", (), {}, ("web",))
    said: list[str] = []
    try:
        with on_the_record(Request("prod", "web"), plan, "alice", "", "--yes", 60, said.append):
            server.stop()  # the rollout goes on; the record's store is gone
    finally:
        server.stop()
    assert said and "could not be updated" in said[0], said
    assert "its locks expire on their own" in said[-1]


def test_without_the_store_key_a_terminal_rollback_holds_the_workloads_unrecorded(
    control_plane, workloads, redis_server, redis_client, monkeypatch
):
    """A record the bot could not check would be left out of its lists: none is made."""
    from bot.store import RollbackStore

    workloads.create("web", ["app:v1", "app:v2"])
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.delenv("ROLLBOT_STORE_KEY", raising=False)
    result = rollbot(control_plane, "rollback", "web", "-n", workloads.namespace, "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "not recorded in rollbot's store: ROLLBOT_STORE_KEY is not set" in result.stderr
    assert RollbackStore(redis_client).recent(5) == []
    assert workloads.images_of("web") == ["app:v1"]
