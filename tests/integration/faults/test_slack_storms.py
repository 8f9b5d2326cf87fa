"""Slack storms: every call answered 5xx or 429 for longer than any retry budget,
while the question waits, mid-rollout and during the report (files included),
and one method rate-limited hard while progress streams. No worker dies, the
rollback finishes in the cluster, each message and file arrives once after the
storm (counted from the local Slack's record of calls), and readiness says so
while Slack cannot take messages. (test_outages.py has Slack answering 500 from
the approval to after the end.)"""

from __future__ import annotations

import os
import time

import pytest

from bot.records import RollbackRecord, RollbackState
from bot.store import RollbackStore
from testbed.slack_api import FakeSlackApi
from testbed.slack_user import SlackUser
from tests.integration.faults.conftest import (
    ALICE,
    CHANNEL,
    REPORT_FILES,
    approve,
    finished,
    lock_released,
    observe,
    outcome_replies,
    question,
    request_and_approve,
    rollback_under_way,
)
from tests.integration.faults.harness import SECRET, Rollbot, wait_until
from tests.integration.workloads import Workloads

#: The longest one client call waits out 429s: RateLimitErrorRetryHandler(max_retry_count=3)
#: (handlers/app.py) sleeps Retry-After (1 s in a storm) and up to 1 s of jitter, three
#: times. The outbox's deliverer has no budget: it tries again until Slack answers.
CLIENT_RETRY_BUDGET = 3 * (1 + 1)
#: A storm outlasts the client's budget by ROLLBOT_FAULTS_OUTAGE_SECONDS (3 s in CI,
#: 20 s under `make faults`).
STORM = CLIENT_RETRY_BUDGET + float(os.environ.get("ROLLBOT_FAULTS_OUTAGE_SECONDS", "3"))
STATUSES = [pytest.param(500, id="5xx"), pytest.param(429, id="429")]
#: Seconds between the chat.update calls Slack takes in the rate-limit storm.
EDIT_EVERY = 20


def posts(slack: FakeSlackApi, thread_ts: str | None) -> list[str]:
    """What Slack took from chat.postMessage into the channel (`thread_ts` None) or a
    thread, from its record of calls: one entry per message that arrived."""
    return [
        str(call.args.get("text"))
        for call in slack.calls("chat.postMessage")
        if call.status == 200 and call.error is None
        and call.args.get("channel") == CHANNEL and call.args.get("thread_ts") == thread_ts
    ]  # fmt: skip


def assert_each_arrived_once(slack: FakeSlackApi, record: RollbackRecord) -> None:
    assert len(posts(slack, None)) == 1, f"one question: {posts(slack, None)}"
    replies = posts(slack, record.thread_ts)
    assert len(replies) == len(set(replies)), f"a reply posted twice: {replies}"
    assert len(outcome_replies(slack, record)) == 1
    files = [f.filename for f in slack.files() if f.thread_ts == record.thread_ts]
    assert len(files) == REPORT_FILES == len(set(files)), files
    assert [f for f in slack.files() if f.thread_ts != record.thread_ts] == []


def applied(workloads: Workloads, generation: int) -> int:
    return int(workloads.get("web")["metadata"]["generation"]) - generation


def ready_again(bot: Rollbot, probe: int | None) -> None:
    wait_until("readiness again", lambda: bot.readyz(probe).status_code == 200, timeout=90)


def storm_seen_by_readiness(bot: Rollbot, probe: int | None) -> None:
    wait_until("readiness to say Slack is away", lambda: bot.readyz(probe).status_code == 503)
    assert "slack" in bot.readyz(probe).text


@pytest.mark.parametrize("status", STATUSES)
def test_a_storm_while_the_question_waits_asks_it_once_when_slack_is_back(
    status: int, rollbot, workloads: Workloads, slack: FakeSlackApi, store: RollbackStore
) -> None:
    workloads.create("web", ["app:v1", "app:v2"])
    generation = int(workloads.get("web")["metadata"]["generation"])
    bot = rollbot(serve_worker=True, outbox_stale_seconds=2)  # the chart's one process
    alice = SlackUser(bot.events_url, ALICE, CHANNEL, SECRET)
    # The storm starts before rollbot's first request: the command typed in it is
    # taken (no auth.test on the way in, which Bolt would do and fail).
    slack.outage(status)
    try:
        answer = alice.command(f"web -n {workloads.namespace}")
        assert answer.status_code == 200 and "Assessing" in answer.json()["text"], answer.text
        storm_seen_by_readiness(bot, None)
        time.sleep(STORM)
        assert question(slack) is None
    finally:
        slack.outage(None)
    record_id = approve(bot, slack)
    ready_again(bot, None)

    record = finished(store, record_id)
    observe(
        f"Slack {status} storm {STORM:g}s while the question waits", store, slack, record_id,
        applied=applied(workloads, generation),
    )  # fmt: skip
    assert record.state is RollbackState.SUCCEEDED, (record.error, bot.logs())
    assert applied(workloads, generation) == 1
    wait_until("the report", lambda: len(slack.files()) >= REPORT_FILES)
    assert_each_arrived_once(slack, record)
    assert bot.serve is not None and bot.serve.poll() is None, "rollbot serve still runs"


def test_a_429_storm_mid_rollout_lets_the_rollback_finish_and_loses_nothing(
    rollbot, workloads: Workloads, slack: FakeSlackApi, store: RollbackStore
) -> None:
    bot = rollbot(outbox_stale_seconds=2)
    worker = bot.start_worker()
    record_id, generation = rollback_under_way(bot, workloads, slack, store)
    slack.outage(429)
    began = time.monotonic()
    try:
        record = finished(store, record_id)  # in the cluster, while Slack says 429
        assert record.state is RollbackState.SUCCEEDED, (record.error, bot.logs())
        storm_seen_by_readiness(bot, worker)
        time.sleep(max(0.0, STORM - (time.monotonic() - began)))
    finally:
        slack.outage(None)
    observe(
        f"Slack 429 storm {STORM:g}s+ mid-rollout", store, slack, record_id,
        applied=applied(workloads, generation),
    )  # fmt: skip
    ready_again(bot, worker)
    assert applied(workloads, generation) == 1
    wait_until("the report", lambda: len(slack.files()) >= REPORT_FILES)
    assert_each_arrived_once(slack, record)
    assert lock_released(store.redis, f"{workloads.namespace}/web")
    assert bot.workers[worker][0].poll() is None, "the worker is still running"


@pytest.mark.parametrize("status", STATUSES)
def test_a_files_storm_during_the_report_uploads_each_file_once_when_it_passes(
    status: int, rollbot, workloads: Workloads, slack: FakeSlackApi, store: RollbackStore
) -> None:
    workloads.create("web", ["app:v1", "app:v2"])
    generation = int(workloads.get("web")["metadata"]["generation"])
    bot = rollbot(outbox_stale_seconds=2)
    worker = bot.start_worker()
    # Upload URLs are granted and the bytes taken; sharing them fails: the report's
    # summary is posted, its files wait.
    slack.outage(status, methods=["files.completeUploadExternal"])
    try:
        record_id = request_and_approve(bot, slack, f"web -n {workloads.namespace}")
        record = finished(store, record_id)
        assert record.state is RollbackState.SUCCEEDED, (record.error, bot.logs())
        wait_until("the outcome", lambda: outcome_replies(slack, record))
        storm_seen_by_readiness(bot, worker)
        time.sleep(STORM)
        assert slack.files() == []
        assert len(slack.calls("files.getUploadURLExternal")) > REPORT_FILES, "tried again"
    finally:
        slack.outage(None)
    observe(
        f"Slack files {status} storm {STORM:g}s during the report", store, slack, record_id,
        applied=applied(workloads, generation),
    )  # fmt: skip
    wait_until("the report", lambda: len(slack.files()) >= REPORT_FILES)
    ready_again(bot, worker)
    assert applied(workloads, generation) == 1
    assert_each_arrived_once(slack, record)
    assert bot.workers[worker][0].poll() is None, "the worker is still running"


def test_chat_update_limited_hard_while_progress_streams_delays_no_outcome(
    rollbot, workloads: Workloads, slack: FakeSlackApi, store: RollbackStore
) -> None:
    slack.rate_limit("chat.update", per_second=1 / EDIT_EVERY)
    bot = rollbot()
    worker = bot.start_worker()
    workloads.create("web", ["app:v1", "app:v2"], replicas=3)
    workloads.patch("web", {"spec": {"minReadySeconds": 2}})
    generation = int(workloads.wait_complete("web")["metadata"]["generation"])
    record_id = request_and_approve(bot, slack, f"web -n {workloads.namespace}")
    approved = time.monotonic()

    record = finished(store, record_id)
    took = time.monotonic() - approved
    observe(
        f"chat.update limited to 1 per {EDIT_EVERY}s while progress streams",
        store, slack, record_id, applied=applied(workloads, generation),
    )  # fmt: skip
    assert record.state is RollbackState.SUCCEEDED, (record.error, bot.logs())
    assert [c.status for c in slack.calls("chat.update")].count(429) > 0, "the limit was hit"
    # Three pods, each available 2 s after it is ready: well under 30 s, unless the
    # worker sits out the progress line's Retry-Afters (up to EDIT_EVERY s each).
    assert took < 30, f"the rollback took {took:.0f}s"
    wait_until("the report", lambda: len(slack.files()) >= REPORT_FILES)
    assert_each_arrived_once(slack, record)
    assert bot.workers[worker][0].poll() is None, "the worker is still running"
