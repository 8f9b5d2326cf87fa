"""Telling the world, end to end: /rollback and Approve in the local Slack, the
worker rolls a real Deployment back, and PagerDuty, a webhook and the status
page (the local ones) hear of its start and its end, once each."""

from __future__ import annotations

import pytest

from bot.config import RollbotConfig
from bot.records import RollbackState
from handlers.ids import ActionId
from testbed.pagerduty import ROUTING_KEY, FakePagerDuty
from testbed.statuspage import API_KEY, FakeStatuspage
from testbed.webhook_receiver import SECRET, WebhookReceiver
from tests.integration.slack_helpers import (
    ALICE,
    BOB,
    CHANNEL,
    SlackUser,
    confirmation,
    final,
    wait_for,
)

pytestmark = pytest.mark.cluster


def test_an_approved_rollback_is_told_to_pagerduty_a_webhook_and_the_status_page(
    make_bot, slack, workloads, monkeypatch
):
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
    monkeypatch.setenv("ROLLBOT_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("STATUSPAGE_API_KEY", API_KEY)
    workloads.create(
        "web", ["app:v1", "app:v2-broken"], replicas=2, progress_deadline=5, wait=False
    )
    workloads.wait_deadline_exceeded("web")
    with FakePagerDuty() as pagerduty, WebhookReceiver() as webhook, FakeStatuspage() as page:
        config = RollbotConfig.model_validate(
            {
                "environments": {"production": {"namespaces": [workloads.namespace]}},
                "notify": {
                    "slack_workspace_url": "https://acme.slack.com",
                    "pagerduty": {"url": pagerduty.url},
                    "webhooks": [{"url": webhook.url, "secret_env": "ROLLBOT_WEBHOOK_SECRET"}],
                    "statuspage": {
                        "base_url": page.base_url, "page_id": page.page_id,
                        "environments": ["production"], "components": {"web": "cmp0web"},
                    },
                },
            }
        )  # fmt: skip
        bot = make_bot(config)
        SlackUser(bot.url, ALICE).command(f'web -n {workloads.namespace} --reason "500s after v2"')
        record_id, root_ts = confirmation(slack)
        SlackUser(bot.url, BOB).click(ActionId.APPROVE, record_id, root_ts)
        record = final(bot.store, record_id)
        assert record.state is RollbackState.SUCCEEDED, record.timeline

        wait_for("PagerDuty's two change events", lambda: len(pagerduty.events) >= 2)
        wait_for("the webhook's two events", lambda: len(webhook.events) >= 2)
        wait_for(
            "the incident resolved",
            lambda: [i for i in page.incidents.values() if i["status"] == "resolved"],
        )
        started, finished = (e["payload"] for e in pagerduty.events)
        where = f"{workloads.namespace}/web"
        assert started["summary"] == (
            f"Rollback of {where} started: revision 2 → revision 1 "
            f"(requested by {ALICE}, reason: 500s after v2)"
        )
        assert finished["summary"] == f"Rollback of {where} succeeded: revision 2 → revision 1"
        assert started["custom_details"]["approved_by"] == BOB
        link = pagerduty.events[0]["links"][0]["href"]
        assert link == f"https://acme.slack.com/archives/{CHANNEL}/p{root_ts.replace('.', '')}"
        assert [e["type"] for e in webhook.events] == ["rollback.started", "rollback.finished"]
        assert webhook.duplicates == 0 and webhook.refused == []
        (incident,) = page.incidents.values()
        assert page.components["cmp0web"]["status"] == "operational"
        opened = incident["incident_updates"][-1]
        assert opened["affected_components"][0]["new_status"] == "degraded_performance"
        assert opened["body"].startswith("web: a recent change is being rolled back")
        # The page is public: who asked, why and where to follow it stay inside.
        assert not any(t in opened["body"] for t in (ALICE, "500s after v2", "slack.com"))
        assert len(pagerduty.events) == 2 and len(page.incidents) == 1
