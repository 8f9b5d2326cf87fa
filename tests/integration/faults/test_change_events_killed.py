"""The change events' deliverer killed (SIGKILL) between two destinations, in a
worker process that is also rolling back: another worker finishes the rollback
and the delivery, and neither PagerDuty nor the webhook hears anything twice."""

from __future__ import annotations

from bot.records import RollbackState
from bot.store import RollbackStore
from testbed.pagerduty import ROUTING_KEY, FakePagerDuty
from testbed.slack_api import FakeSlackApi
from testbed.webhook_receiver import SECRET, WebhookReceiver
from tests.integration.faults.conftest import finished, request_and_approve
from tests.integration.faults.harness import wait_until
from tests.integration.workloads import Workloads


def test_a_deliverer_killed_between_destinations_tells_each_once_after_all(
    rollbot, workloads: Workloads, slack: FakeSlackApi, store: RollbackStore, monkeypatch
) -> None:
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    workloads.create("web", ["app:v1", "app:v2"])
    with FakePagerDuty() as pagerduty, WebhookReceiver() as webhook:
        bot = rollbot(
            notify={
                "timeout_seconds": 2,  # the deliverer's lease: 2 × 2 + 5 s
                "pagerduty": {"url": pagerduty.url},
                "webhooks": [{"url": webhook.url, "secret_env": "WEBHOOK_SECRET"}],
            }
        )
        doomed = bot.start_worker(failpoint="told_one_destination")
        record_id = request_and_approve(bot, slack, f"web -n {workloads.namespace}")
        assert bot.wait_exit(doomed) == -9, f"the deliverer was not reached:\n{bot.logs()}"
        assert len(pagerduty.events) == 1 and webhook.events == []  # killed in between
        pagerduty.fail_next(2, status=503)  # and PagerDuty is down for a moment, too
        bot.start_worker()

        record = finished(store, record_id)
        assert record.state is RollbackState.SUCCEEDED, (record.error, bot.logs())
        wait_until("both events at both", lambda: len(pagerduty.events) == len(webhook.events) == 2)
        wait_until("the queue empty", lambda: store.redis.llen("rollbot:changes") == 0)
        summaries = [e["payload"]["summary"].split(":")[0] for e in pagerduty.events]
        assert summaries == [
            f"Rollback of {workloads.namespace}/web started",
            f"Rollback of {workloads.namespace}/web succeeded",
        ]
        assert [e["type"] for e in webhook.events] == ["rollback.started", "rollback.finished"]
        assert webhook.duplicates == 0
        assert pagerduty.answers.count(503) == 2 and pagerduty.answers.count(202) == 2
