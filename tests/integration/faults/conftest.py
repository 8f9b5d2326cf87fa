"""The fault suite's components: the real control plane (shared with the
integration tests), a persistent redis-server, the local Slack Web API, and
rollbot's processes."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from bot.records import RollbackRecord, RollbackState
from bot.store import RollbackStore, connect
from handlers.ids import ActionId
from testbed.slack_api import FakeSlackApi
from testbed.slack_user import SlackUser
from tests.conftest import unavailable
from tests.integration.faults.harness import SECRET, PersistentRedis, Rollbot, wait_until

CHANNEL = "C0FAULTS"
REPORT_FILES = 4  # incident report, rollback report, backup, communications
ALICE, BOB = "U0ALICE", "U0BOB"


@pytest.fixture
def persistent_redis() -> Iterator[PersistentRedis]:
    server = PersistentRedis()
    try:
        server.start()
    except (RuntimeError, OSError, AssertionError) as err:
        unavailable(f"redis-server could not start: {err}")
    yield server
    server.stop()


@pytest.fixture
def store(persistent_redis: PersistentRedis) -> RollbackStore:
    return RollbackStore(connect(persistent_redis.url))


@pytest.fixture
def slack() -> Iterator[FakeSlackApi]:
    with FakeSlackApi() as api:
        yield api


@pytest.fixture
def rollbot(
    control_plane: Any, persistent_redis: PersistentRedis, slack: FakeSlackApi, namespace: str
) -> Iterator[Callable[..., Rollbot]]:
    started: list[Rollbot] = []

    def start(serve_worker: bool = False, **config: Any) -> Rollbot:
        settings = {
            "default_namespace": namespace,
            "worker_lease_seconds": 2,
            "follow_up_minutes": [],
            **config,
        }
        bot = Rollbot(control_plane.kubeconfig, persistent_redis.url, slack.base_url, settings)
        started.append(bot)
        bot.start_serve(with_worker=serve_worker)
        return bot

    yield start
    for bot in started:
        bot.stop()


def question(slack: FakeSlackApi) -> tuple[str, str] | None:
    """The confirmation in the channel, once posted: (record id, its ts)."""
    for message in slack.messages(CHANNEL):
        for block in message.blocks:
            for element in block.get("elements", []):
                if element.get("action_id") == ActionId.APPROVE:
                    return str(element["value"]), message.ts
    return None


def approve(bot: Rollbot, slack: FakeSlackApi, timeout: float = 120) -> str:
    """Bob approves the confirmation once it is there; the record's id."""
    record_id, ts = wait_until("the confirmation", lambda: question(slack), timeout)
    bob = SlackUser(bot.events_url, BOB, CHANNEL, SECRET)
    assert bob.click(ActionId.APPROVE, record_id, ts).status_code == 200
    return str(record_id)


def request_and_approve(bot: Rollbot, slack: FakeSlackApi, text: str) -> str:
    """Alice asks, Bob approves; the record's id."""
    alice = SlackUser(bot.events_url, ALICE, CHANNEL, SECRET)
    assert alice.command(text).status_code == 200
    return approve(bot, slack)


def finished(store: RollbackStore, record_id: str, timeout: float = 180) -> RollbackRecord:
    record: RollbackRecord = wait_until(
        "the rollback to finish",
        lambda: (r := store.get(record_id)).state.terminal and r,
        timeout,
    )
    return record


def outcome_replies(
    slack: FakeSlackApi, record: RollbackRecord, channel: str = CHANNEL
) -> list[str]:
    thread = slack.thread(channel, record.thread_ts or "")
    return [m.text for m in thread[1:] if m.text.startswith(f"Rollback {record.id} ")]


def report_files(slack: FakeSlackApi, record: RollbackRecord) -> list[str]:
    """The names of the files posted for `record` (each name starts with its id)."""
    return [f.filename for f in slack.files() if f.filename.startswith(f"{record.id}-")]


def lock_released(client: redis.Redis, key: str) -> bool:
    return client.get(f"rollbot:lock:{key}") is None


def observe(
    fault: str,
    store: RollbackStore,
    slack: FakeSlackApi,
    record_id: str,
    channel: str = CHANNEL,
    **counts: int,
) -> None:
    """One run's figures, for docs/reliability.md: appended as a JSON line to
    $ROLLBOT_FAULTS_LOG (when set) before the test asserts on them, so a failed
    run counts too. Waits a moment for the outcome and report to arrive."""
    path = os.environ.get("ROLLBOT_FAULTS_LOG")
    record = store.get(record_id)
    try:
        wait_until("the outcome and report", lambda: outcome_replies(slack, record, channel)
                   and len(report_files(slack, record)) >= REPORT_FILES, timeout=60)  # fmt: skip
    except AssertionError:
        pass  # lost: counted below, asserted by the test
    if not path:
        return
    reports = [f for f in report_files(slack, record) if f.endswith("-rollback-report.md")]
    line = {
        "fault": fault,
        "state": record.state.value,
        "outcomes": len(outcome_replies(slack, record, channel)),
        "reports": len(reports),
        **counts,
    }
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


def rollback_under_way(
    bot: Rollbot, workloads: Any, slack: FakeSlackApi, store: RollbackStore
) -> tuple[str, int]:
    """web taken to v2 with pods that count as available only after 4 s, then rolled
    back from Slack by the running worker; (record id, the Deployment's generation
    before), once the rollout is under way."""
    workloads.create("web", ["app:v1", "app:v2"])
    workloads.patch("web", {"spec": {"minReadySeconds": 4}})
    generation = int(workloads.wait_complete("web")["metadata"]["generation"])
    record_id = request_and_approve(bot, slack, f"web -n {workloads.namespace}")
    wait_until(
        "the rollout to start", lambda: store.get(record_id).state is RollbackState.ROLLING_BACK
    )
    return record_id, generation
