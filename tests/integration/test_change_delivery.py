"""A rollback's change events reach PagerDuty, a webhook and a status page
(the local ones of the test bed, which check requests as the vendors do) over
a real redis-server: once each per destination, through outages, a deliverer
that stops between destinations, and refusals that must not block the queue."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from bot.change_events import CHANGES
from bot.config import RollbotConfig
from bot.notify.delivery import LEASE, ChangeDeliverer, done_key
from bot.notify.destinations import destinations_from_environment
from bot.notify.sending import TryLater
from bot.records import RollbackRecord, RollbackState, requested
from bot.store import RollbackStore
from testbed.pagerduty import ROUTING_KEY, FakePagerDuty
from testbed.statuspage import API_KEY, FakeStatuspage
from testbed.webhook_receiver import SECRET, WebhookReceiver

S = RollbackState
TO_ROLLOUT = (S.ASSESSED, S.AWAITING_APPROVAL, S.APPROVED, S.BACKING_UP, S.ROLLING_BACK)
ENVIRON = {"PD_KEY": ROUTING_KEY, "HOOK_SECRET": SECRET, "SP_KEY": API_KEY}


@pytest.fixture
def pagerduty() -> Iterator[FakePagerDuty]:
    with FakePagerDuty() as api:
        yield api


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def statuspage() -> Iterator[FakeStatuspage]:
    with FakeStatuspage(components={"cmp0web": "Web"}) as page:
        yield page


@pytest.fixture
def config(pagerduty, webhook, statuspage) -> RollbotConfig:
    return RollbotConfig.model_validate(
        {
            "environments": {
                "production": {"namespaces": ["prod"]},
                "staging": {"namespaces": ["staging"]},
            },
            "notify": {
                "slack_workspace_url": "https://acme.slack.com",
                "pagerduty": {"routing_key_env": "PD_KEY", "url": pagerduty.url},
                "webhooks": [{"url": webhook.url, "secret_env": "HOOK_SECRET"}],
                "statuspage": {
                    "base_url": statuspage.base_url, "page_id": statuspage.page_id,
                    "api_key_env": "SP_KEY", "environments": ["production"],
                    "components": {"web": "cmp0web"}, "component_status": "major_outage",
                },
            },
        }
    )  # fmt: skip


@pytest.fixture
def store(redis_client: redis.Redis) -> RollbackStore:
    return RollbackStore(redis_client)


def deliverer(store: RollbackStore, config: RollbotConfig, **kwargs: Any) -> ChangeDeliverer:
    destinations = destinations_from_environment(config, ENVIRON, store.redis)
    return ChangeDeliverer(store, config, destinations, **kwargs)


def rollback(
    store: RollbackStore, outcome: RollbackState = S.SUCCEEDED, namespace: str = "prod", **kw: Any
) -> RollbackRecord:
    """A rollback of web from revision 42 to 41, through the store, to `outcome`."""
    record = requested(namespace, "web", "U0ALICE", channel="C0OPS", reason="crash loop", **kw)
    record = record.model_copy(
        update={"from_revision": 42, "target_revision": 41, "thread_ts": "1700000000.000100"}
    )
    saved = store.create(record)
    for state in (*TO_ROLLOUT, S.VERIFYING):
        extra: dict[str, Any] = {"approved_by": "U0BOB"} if state is S.APPROVED else {}
        saved = store.update(saved.id, lambda r, s=state, e=extra: r.transition(s, f"{s}", **e))
    error = {"error": "still crash-looping"} if outcome is S.FAILED else {}
    return store.update(saved.id, lambda r: r.transition(outcome, "done", **error))


def drain(changes: ChangeDeliverer, timeout: float = 20) -> None:
    """Run the deliverer in a thread until the queue is empty."""
    stop = threading.Event()
    thread = threading.Thread(target=changes.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while changes.depth() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert changes.depth() == 0, "change events still waiting"
    finally:
        stop.set()
        thread.join(5)


def test_a_rollbacks_start_and_end_reach_every_destination_once(
    store, config, pagerduty, webhook, statuspage
):
    record = rollback(store)
    drain(deliverer(store, config))

    summaries = [e["payload"]["summary"] for e in pagerduty.events]
    assert summaries == [
        "Rollback of prod/web started: revision 42 → revision 41 "
        "(requested by U0ALICE, reason: crash loop)",
        "Rollback of prod/web succeeded: revision 42 → revision 41",
    ]
    thread = "https://acme.slack.com/archives/C0OPS/p1700000000000100"
    assert pagerduty.events[0]["links"] == [
        {"href": thread, "text": "The rollback's thread in Slack"}
    ]
    assert [(e["type"], e["id"]) for e in webhook.events] == [
        ("rollback.started", f"{record.id}:started"),
        ("rollback.finished", f"{record.id}:finished"),
    ]
    assert webhook.duplicates == 0 and webhook.refused == []
    assert webhook.events[1]["state"] == "succeeded" and webhook.events[1]["thread_url"] == thread

    (incident,) = statuspage.incidents.values()
    assert incident["name"] == "web (production): rolling back a recent change"
    assert incident["status"] == "resolved" and incident["resolved_at"]
    opened, resolved = reversed(incident["incident_updates"])
    assert opened["body"].startswith("web: a recent change is being rolled back")
    assert opened["affected_components"][0]["new_status"] == "major_outage"
    assert resolved["body"].startswith("web: resolved")
    for update in (opened, resolved):  # the page is public: nothing from inside
        assert not any(inside in update["body"] for inside in ("U0ALICE", "slack.com", "prod/"))
    assert statuspage.components["cmp0web"]["status"] == "operational"
    assert [(m, status) for m, _, status in statuspage.requests] == [("POST", 201), ("PATCH", 200)]


def test_pagerduty_down_for_a_while_gets_each_event_once_and_holds_no_one_else_up(
    store, config, pagerduty, webhook, caplog
):
    pagerduty.fail_next(3, status=500)
    rollback(store)
    changes = deliverer(store, config, max_wait=0.2)
    for _ in range(3):
        with pytest.raises(TryLater, match="PagerDuty answered 500"):
            changes.deliver_next()
    assert len(webhook.events) == 1  # the webhook took the start while PagerDuty was down
    pagerduty.fail_next(2, status=429, retry_after=0.3)
    with caplog.at_level(logging.WARNING, logger="rollbot.notify"):
        drain(changes)
    # Retry-After (0.3 s) wins over the deliverer's own, shorter, wait (0.2 s).
    assert sum("again in 0.3s" in r.getMessage() for r in caplog.records) == 2
    assert [e["payload"]["summary"].split(":")[0] for e in pagerduty.events] == [
        "Rollback of prod/web started",
        "Rollback of prod/web succeeded",
    ]
    assert pagerduty.answers.count(500) == 3 and pagerduty.answers.count(429) == 2
    assert len(webhook.events) == 2 and webhook.duplicates == 0


def test_a_deliverer_stopped_between_destinations_is_replaced_and_sends_nothing_twice(
    store, config, pagerduty, webhook, statuspage
):
    webhook.fail_next(1000, status=503)
    rollback(store)
    first = deliverer(store, config, lease_ttl=1.0, max_wait=0.2)
    with pytest.raises(TryLater, match="answered 503"):
        first.deliver_next()  # PagerDuty and the status page took the start; the webhook not
    assert len(pagerduty.events) == 1 and len(statuspage.incidents) == 1
    # The first deliverer dies here: its lease runs out and another process leads.
    second = deliverer(store, config, lease_ttl=1.0, max_wait=0.2)
    assert second.deliver_next() is False  # the dead one's lease still holds
    webhook.fail_next(0)
    time.sleep(1.1)
    drain(second)
    assert len(pagerduty.events) == 2 and len(statuspage.incidents) == 1
    assert [e["type"] for e in webhook.events] == ["rollback.started", "rollback.finished"]
    assert webhook.duplicates == 0
    assert store.redis.keys(f"{CHANGES}:done:*") == []


def test_a_refused_event_is_dropped_for_that_destination_with_a_log_and_the_next_goes_on(
    store, config, pagerduty, webhook, caplog
):
    pagerduty.fail_next(1, status=400)
    record = rollback(store)
    with caplog.at_level(logging.ERROR, logger="rollbot.notify"):
        drain(deliverer(store, config))
    assert [e["payload"]["summary"].split(":")[0] for e in pagerduty.events] == [
        "Rollback of prod/web succeeded"
    ]
    assert len(webhook.events) == 2
    (line,) = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert f"change event {record.id}:started (started of prod/web) dropped for pagerduty" in line
    assert "PagerDuty answered 400" in line


def test_a_failed_rollback_keeps_the_incident_open_without_its_error(store, config, statuspage):
    rollback(store, outcome=S.FAILED)
    drain(deliverer(store, config))
    (incident,) = statuspage.incidents.values()
    assert incident["status"] == "identified" and incident["resolved_at"] is None
    latest = incident["incident_updates"][0]["body"]
    assert latest.startswith("web: still affected")
    assert "crash-looping" not in latest  # the error is the team's, not the public's
    assert statuspage.components["cmp0web"]["status"] == "major_outage"


def test_the_status_page_tells_only_the_environments_it_lists(store, config, pagerduty, statuspage):
    rollback(store, namespace="staging")
    drain(deliverer(store, config))
    assert statuspage.incidents == {} and statuspage.requests == []
    assert len(pagerduty.events) == 2


def test_drills_told_by_choice_reach_pagerduty_and_webhooks_marked_never_the_status_page(
    store, config, pagerduty, webhook, statuspage
):
    # Drills run in an environment marked for them; the page is listed for it here
    # too, so only the drill mark can keep it quiet.
    data = config.model_dump(mode="json")
    data["notify"]["statuspage"]["environments"] = ["production", "staging"]
    data["notify"]["include_drills"] = True
    telling = RollbackStore(store.redis, tell_drills=True)
    rollback(telling, namespace="staging", trigger="drill")
    drain(deliverer(store, RollbotConfig.model_validate(data)))
    assert [e["payload"]["summary"][:38] for e in pagerduty.events] == [
        "DRILL — Rollback of staging/web starte",
        "DRILL — Rollback of staging/web succee",
    ]
    assert [(e["type"], e["drill"]) for e in webhook.events] == [
        ("rollback.started", True),
        ("rollback.finished", True),
    ]
    assert statuspage.incidents == {} and statuspage.requests == []


def test_a_wrong_statuspage_key_is_refused_and_logged_not_retried(
    store, config, statuspage, webhook, caplog
):
    statuspage.api_key = "another-key"
    rollback(store)
    with caplog.at_level(logging.ERROR, logger="rollbot.notify"):
        drain(deliverer(store, config))
    assert [status for _, _, status in statuspage.requests] == [401, 401]
    assert sum("Statuspage answered 401" in r.getMessage() for r in caplog.records) == 2
    assert len(webhook.events) == 2


def test_a_deliverer_that_lost_its_lease_midway_stops_before_the_next_destination(
    store, config, pagerduty
):
    class StallsPastItsLease:
        """A destination so slow that another process took the lease meanwhile."""

        name = "slow"

        def deliver(self, event: Any, context: Any) -> None:
            store.redis.set(LEASE, "another-process")

    real = destinations_from_environment(config, ENVIRON, store.redis)
    changes = ChangeDeliverer(store, config, [StallsPastItsLease(), *real])
    record = rollback(store)
    assert changes.deliver_next() is False
    assert pagerduty.events == [] and changes.depth() == 2
    assert store.redis.smembers(done_key(f"{record.id}:started")) == {"slow"}


def test_the_component_is_found_by_the_catalogs_name_for_the_service(store, config, statuspage):
    data = config.model_dump(mode="json")
    data["services"] = {"shop": {"namespace": "prod", "deployment": "web"}}
    data["notify"]["statuspage"]["components"] = {"shop": "cmp0web"}
    rollback(store)
    drain(deliverer(store, RollbotConfig.model_validate(data)))
    (incident,) = statuspage.incidents.values()
    assert [c["id"] for c in incident["components"]] == ["cmp0web"]
    assert statuspage.components["cmp0web"]["status"] == "operational"


def test_an_incident_whose_answer_was_lost_is_found_again_not_opened_twice(
    store, config, statuspage, caplog
):
    statuspage.lose_next_answers(1)  # the POST opens the incident; its answer never comes
    record = rollback(store)
    drain(deliverer(store, config, max_wait=0.2))

    (incident,) = statuspage.incidents.values()
    assert incident["metadata"] == {"rollbot": {"rollback_id": record.id}}
    assert incident["status"] == "resolved"  # the end found it and closed it
    assert [m for m, _, _ in statuspage.requests] == ["POST", "GET", "PATCH"]


def test_a_lost_answer_is_looked_for_among_incidents_and_not_taken_for_anothers(
    store, config, statuspage
):
    changes = deliverer(store, config, max_wait=0.2)
    earlier = rollback(store)
    drain(changes)  # another rollback's incident, opened and resolved
    statuspage.lose_next_answers(1)
    record = rollback(store)
    with pytest.raises(TryLater, match="did not answer"):
        changes.deliver_next()
    statuspage.fail_next(2, status=503)  # the page cannot say whether it opened one
    for _ in range(2):
        with pytest.raises(TryLater, match="answered 503"):
            changes.deliver_next()
    assert len(statuspage.incidents) == 2  # nothing opened while that was unknown
    drain(changes)

    ours = [i["metadata"]["rollbot"]["rollback_id"] for i in statuspage.incidents.values()]
    assert ours == [earlier.id, record.id]
    assert all(i["status"] == "resolved" for i in statuspage.incidents.values())
