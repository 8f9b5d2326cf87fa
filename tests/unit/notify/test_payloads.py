"""What each destination is sent: PagerDuty's change event as its docs require
(checked by the local PagerDuty's own validator), the webhook's signature, the
status page's incident fields and text."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.change_events import ChangeEvent
from bot.notify.context import EventContext, facts, thread_url
from bot.notify.pagerduty import SUMMARY_LIMIT, change_event_body, change_summary
from bot.notify.settings import StatuspageSettings
from bot.notify.statuspage import PUBLIC_TEMPLATE, incident_fields, incident_name, incident_text
from bot.notify.webhook import (
    EVENT_ID,
    SIGNATURE,
    TIMESTAMP,
    signature,
    signed_headers,
    webhook_body,
)
from bot.records import RollbackRecord, RollbackState, requested
from bot.reports import TemplateRenderer
from testbed.pagerduty import ROUTING_KEY, change_event_errors

AT = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)


def event(**changes: Any) -> ChangeEvent:
    fields: dict[str, Any] = {
        "id": "rb-1:started", "kind": "started", "record_id": "rb-1", "service": "web",
        "namespace": "prod", "strategy": "undo", "trigger": "manual", "current": "revision 42",
        "target": "revision 41", "requested_by": "U0ALICE", "approved_by": "U0BOB",
        "reason": "crash loop", "state": "rolling_back", "error": None, "at": AT,
        "emergency": False,
    }  # fmt: skip
    return ChangeEvent(**(fields | changes))


def test_the_summary_says_what_is_rolled_back_from_and_to_who_asked_and_why():
    assert change_summary(event()) == (
        "Rollback of prod/web started: revision 42 → revision 41 "
        "(requested by U0ALICE, reason: crash loop)"
    )
    finished = event(id="rb-1:finished", kind="finished", state="succeeded")
    assert change_summary(finished) == "Rollback of prod/web succeeded: revision 42 → revision 41"
    failed = event(kind="finished", state="failed", error="progress deadline exceeded")
    assert change_summary(failed) == (
        "Rollback of prod/web failed: progress deadline exceeded (revision 42 → revision 41)"
    )


def test_a_drill_told_to_pagerduty_and_webhooks_is_marked_as_one():
    drill = event(trigger="drill", drill=True)
    assert change_summary(drill).startswith("DRILL — Rollback of prod/web started")
    finished = event(kind="finished", state="succeeded", drill=True)
    assert change_summary(finished).startswith("DRILL — Rollback of prod/web succeeded")
    assert (
        change_event_errors(change_event_body(drill, ROUTING_KEY, EventContext()), {ROUTING_KEY})
        == []
    )
    assert json.loads(webhook_body(drill, EventContext()))["drill"] is True
    assert json.loads(webhook_body(event(), EventContext()))["drill"] is False


def test_a_long_reason_is_cut_to_pagerdutys_1024_characters():
    summary = change_summary(event(reason="x" * 5000))
    assert len(summary) == SUMMARY_LIMIT and summary.endswith("…")


def test_secrets_in_a_reason_or_an_error_do_not_leave():
    leaky = event(reason="db password=hunter2", error="token xoxb-123-456-abcdef failed")
    body = json.dumps(change_event_body(leaky, ROUTING_KEY, EventContext()))
    hook = webhook_body(leaky, EventContext()).decode()
    for text in (body, hook, change_summary(leaky)):
        assert "hunter2" not in text and "xoxb-123" not in text


def test_the_change_event_is_one_pagerduty_takes():
    context = EventContext(environment="production", thread_url="https://acme.slack.com/x")
    body = change_event_body(event(), ROUTING_KEY, context)
    assert change_event_errors(body, {ROUTING_KEY}) == []
    assert body["links"] == [
        {"href": "https://acme.slack.com/x", "text": "The rollback's thread in Slack"}
    ]
    assert body["payload"]["timestamp"] == "2026-12-01T23:00:00+00:00"
    assert body["payload"]["custom_details"]["environment"] == "production"
    assert (
        "thread_url"
        not in change_event_body(event(), ROUTING_KEY, EventContext())["payload"]["custom_details"]
    )
    assert "links" not in change_event_body(event(), ROUTING_KEY, EventContext())


def test_the_local_pagerduty_refuses_what_the_docs_forbid():
    good = change_event_body(event(), ROUTING_KEY, EventContext())
    assert change_event_errors({**good, "routing_key": "short"}, {ROUTING_KEY}) == [
        "Invalid routing key"
    ]
    no_summary = {**good, "payload": {"source": "x"}}
    assert change_event_errors(no_summary, {ROUTING_KEY}) == [
        "'payload.summary' is missing or blank"
    ]
    long = {**good, "payload": {**good["payload"], "summary": "x" * 1025}}
    assert "at most 1024" in change_event_errors(long, {ROUTING_KEY})[0]


def test_the_webhook_signature_is_hmac_sha256_over_timestamp_dot_body():
    body = webhook_body(event(), EventContext())
    headers = signed_headers(event(), "s3cret", body, now=1_700_000_000)
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert headers[SIGNATURE] == f"sha256={expected}"
    assert headers[TIMESTAMP] == "1700000000" and headers[EVENT_ID] == "rb-1:started"
    assert headers["Content-Type"] == "application/json"
    assert signature("s3cret", "1700000000", body + b" ") != headers[SIGNATURE]
    assert signature("other", "1700000000", body) != headers[SIGNATURE]


def test_the_webhook_body_is_the_event_as_json():
    sent = json.loads(webhook_body(event(), EventContext(environment="production")))
    assert sent["type"] == "rollback.started"
    assert sent == {
        "type": "rollback.started",
        **facts(event(), EventContext(environment="production")),
    }
    assert (sent["id"], sent["from"], sent["to"], sent["at"]) == (
        "rb-1:started", "revision 42", "revision 41", "2026-12-01T23:00:00+00:00",
    )  # fmt: skip


def test_a_thread_link_needs_the_workspace_and_the_thread():
    record = requested("prod", "web", "U0ALICE", channel="C0OPS")
    assert thread_url("https://acme.slack.com", record) is None
    threaded = record.model_copy(update={"thread_ts": "1700000000.000100"})
    assert thread_url("https://acme.slack.com", threaded) == (
        "https://acme.slack.com/archives/C0OPS/p1700000000000100"
    )
    assert thread_url(None, threaded) is None


PAGE = StatuspageSettings(
    page_id="pg1", environments=["production"], components={"web": "cmp1"},
    component_status="partial_outage",
)  # fmt: skip


def test_the_incident_opens_with_the_component_down_and_resolves_it_operational():
    opened = incident_fields(event(), PAGE, "text")
    assert opened == {
        "status": "identified", "body": "text",
        "component_ids": ["cmp1"], "components": {"cmp1": "partial_outage"},
    }  # fmt: skip
    resolved = incident_fields(event(kind="finished", state="succeeded"), PAGE, "done")
    assert (resolved["status"], resolved["components"]) == ("resolved", {"cmp1": "operational"})
    failed = incident_fields(event(kind="finished", state="failed"), PAGE, "no")
    assert (failed["status"], failed["components"]) == ("identified", {"cmp1": "partial_outage"})
    assert "components" not in incident_fields(event(service="api"), PAGE, "text")
    # A catalog service whose Deployment has another name is found by the catalog's name.
    by_catalog = incident_fields(event(service="web-v2-deploy"), PAGE, "text", "web")
    assert by_catalog["component_ids"] == ["cmp1"]
    assert incident_name(event(), EventContext(environment="production")) == (
        "web (production): rolling back a recent change"
    )
    named = EventContext(environment="production", catalog_name="shop")
    assert incident_name(event(), named) == "shop (production): rolling back a recent change"


def inside_record() -> RollbackRecord:
    """A record full of what only the team may read: people, a reason, images, a thread."""
    record = requested("payments-ns", "web", "U0ALICE", channel="C0OPS", reason="crash loop")
    return record.model_copy(
        update={
            # The record has moved on by the time the start is told: the text follows the event.
            "state": RollbackState.SUCCEEDED,
            "approved_by": "U0BOB",
            "thread_ts": "1700000000.000100",
            "from_images": ("app=ghcr.io/acme/web:v3",),
            "to_images": ("app=ghcr.io/acme/web:v2",),
            "from_revision": 42,
            "target_revision": 41,
        }
    )


@pytest.mark.parametrize(
    ("kind", "state", "expected"),
    [
        ("started", "rolling_back", "shop: a recent change is being rolled back"),
        ("finished", "succeeded", "shop: resolved"),
        ("finished", "failed", "shop: still affected"),
    ],
)
@pytest.mark.parametrize("with_record", [True, False])
def test_the_public_incident_text_says_what_customers_need_and_nothing_from_inside(
    kind, state, expected, with_record
):
    record = inside_record()
    context = EventContext(
        environment="production",
        thread_url=thread_url("https://acme.slack.com", record),
        record=record if with_record else None,  # None: retention deleted it
        catalog_name="shop",
    )
    error = "pod web-7f9 deadline exceeded" if state == "failed" else None
    told = event(kind=kind, state=state, error=error, namespace="payments-ns", service="web")
    text = incident_text(told, context, TemplateRenderer())
    assert text.splitlines()[0] == expected
    assert re.search(r"\bU0[A-Z0-9]+", text) is None  # no Slack user ids
    for inside in (
        "slack.com", "archives", "to be filled in", "ghcr.io", "web:v", "payments-ns",
        "crash loop", "deadline", "revision", "rolling_back", "C0OPS", "alice",
    ):  # fmt: skip
        assert inside not in text.lower(), inside


def test_the_public_incident_template_can_be_overridden(tmp_path):
    (tmp_path / PUBLIC_TEMPLATE).write_text("{{ service }} is {{ outcome }}\n")
    context = EventContext(environment="production", record=inside_record(), catalog_name="shop")
    text = incident_text(event(), context, TemplateRenderer(tmp_path))
    assert text == "shop is in progress"
    finished = event(kind="finished", state="succeeded")
    assert incident_text(finished, context, TemplateRenderer(tmp_path)) == "shop is succeeded"
