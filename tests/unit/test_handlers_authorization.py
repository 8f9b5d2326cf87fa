"""Authorization declared where listeners are registered: every listener has it,
and a refused request never reaches its listener nor writes anything.

Signed requests go through the real Bolt app (`App.dispatch`), its Web API calls
to the local Slack API; the store is an in-memory stand-in for Redis."""

from __future__ import annotations

import json
import time
import urllib.parse
from typing import Any

import pytest
from slack_bolt import App, BoltRequest
from slack_sdk.signature import SignatureVerifier

from bot.config import RollbotConfig
from bot.policy import MembershipUnknown
from bot.records import RollbackRecord, RollbackState, requested
from bot.store import RecordNotFound
from handlers.app import create_app, slack_client
from handlers.authorization import Authorized, CommandAuthorized, anyone
from handlers.ids import ActionId
from handlers.services import Services
from testbed.slack_api import FakeSlackApi
from testbed.slack_user import block_actions_payload

SECRET = "unit-signing-secret"
CHANNEL = "C0PROD"
ALICE, BOB, MALLORY = "U0ALICE", "U0BOB", "U0MALLORY"
S = RollbackState


class MemoryStore:
    """The part of RollbackStore the listeners use, in memory."""

    def __init__(self, *records: RollbackRecord) -> None:
        self.records = {r.id: r for r in records}
        self.writes = 0

    def get(self, record_id: str) -> RollbackRecord:
        try:
            return self.records[record_id]
        except KeyError:
            raise RecordNotFound(record_id) from None

    def recent(self, limit: int = 10) -> list[RollbackRecord]:
        ordered = sorted(self.records.values(), key=lambda r: r.created_at, reverse=True)
        return ordered[:limit]

    def update(self, record_id: str, change: Any, then: Any = None, queue: Any = None) -> Any:
        record = change(self.get(record_id))
        self.records[record_id] = record
        self.writes += 1
        return record


class MemoryQueue:
    QUEUE = "rollbot:queue"

    def __init__(self) -> None:
        self.jobs: list[Any] = []

    def enqueue(self, job: Any) -> None:
        self.jobs.append(job)


def waiting(namespace: str = "prod", by: str = ALICE) -> RollbackRecord:
    record = requested(namespace, "web", by, channel=CHANNEL)
    return record.transition(S.ASSESSED, "assessed").transition(S.AWAITING_APPROVAL, "asked")


@pytest.fixture
def slack():
    with FakeSlackApi() as api:
        yield api


PROD_POLICY = RollbotConfig.model_validate(
    {
        "environments": {
            "prod": {"namespaces": ["prod"], "requesters": [ALICE], "approvers": [BOB]},
            "staging": {"namespaces": ["staging"]},
        }
    }
)


def make_app(slack, store, config=PROD_POLICY, groups_of=None) -> App:
    services = Services(config, store, MemoryQueue())  # type: ignore[arg-type]
    if groups_of is not None:
        services = Services(config, store, services.queue, groups_of=groups_of)  # type: ignore[arg-type]
    return create_app(services, token="xoxb-test", signing_secret=SECRET, base_url=slack.base_url)


def signed(form: dict[str, str]) -> BoltRequest:
    body = urllib.parse.urlencode(form)
    ts = str(int(time.time()))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)
    return BoltRequest(
        body=body,
        headers={
            "content-type": ["application/x-www-form-urlencoded"],
            "x-slack-request-timestamp": [ts],
            "x-slack-signature": [str(signature)],
        },
    )


def command(app: App, user: str, text: str) -> str:
    form = {
        "command": "/rollback",
        "text": text,
        "user_id": user,
        "channel_id": CHANNEL,
        "team_id": "T0TEAM",
        "trigger_id": f"t-{time.monotonic_ns()}",
        "response_url": "http://127.0.0.1:9/unused",
    }
    response = app.dispatch(signed(form))
    assert response.status == 200, response.body
    return str(json.loads(response.body)["text"]) if response.body else ""


def click(app: App, user: str, action: ActionId, record_id: str) -> int:
    payload = block_actions_payload(user, CHANNEL, action, record_id, "1700000000.000100")
    return app.dispatch(signed({"payload": json.dumps(payload)})).status


def ephemerals(slack, user: str, at_least: int = 1) -> list[str]:
    def found() -> list[str]:
        return [m.text for m in slack.messages(CHANNEL) if m.ephemeral_user == user]

    deadline = time.monotonic() + 5
    while len(found()) < at_least and time.monotonic() < deadline:
        time.sleep(0.02)
    return found()


def unguarded(app: App) -> list[str]:
    """Listeners registered without an Authorized middleware."""
    return [
        str(listener.ack_function)
        for listener in app._listeners
        if not any(isinstance(m, Authorized) for m in listener.middleware)
    ]


def test_every_listener_the_app_registers_declares_who_may_use_it(slack):
    app = make_app(slack, MemoryStore())
    assert len(app._listeners) >= 6
    assert unguarded(app) == []


def test_a_listener_registered_without_authorization_is_found(slack):
    app = make_app(slack, MemoryStore())
    app.action("rollback_new_button")(lambda ack: ack())
    assert len(unguarded(app)) == 1


def test_a_subcommand_that_declares_no_check_is_refused(slack):
    client = slack_client("xoxb-test", slack.base_url)
    app = App(client=client, signing_secret=SECRET, token_verification_enabled=False)
    services = Services(RollbotConfig(), MemoryStore(), MemoryQueue())  # type: ignore[arg-type]
    ran = []
    app.command("/rollback", middleware=[CommandAuthorized(services, {"help": anyone})])(
        lambda ack: ran.append(ack())
    )
    assert "/rollback status is not available" in command(app, ALICE, "status")
    assert ran == []
    command(app, ALICE, "help")
    assert len(ran) == 1


def test_a_stranger_cannot_cancel_by_command_and_nothing_is_written(slack):
    record = waiting()
    store = MemoryStore(record)
    answer = command(make_app(slack, store), MALLORY, f"cancel {record.id}")
    assert "only its requester and those who may approve rollbacks in prod" in answer
    assert store.records[record.id] == record and store.writes == 0


@pytest.mark.parametrize("who", [ALICE, BOB])
def test_the_requester_or_an_approver_cancels_by_command(slack, who):
    record = waiting()
    store = MemoryStore(record)
    assert command(make_app(slack, store), who, f"cancel {record.id}") == (
        f"Cancelled `{record.id}`."
    )
    cancelled = store.get(record.id)
    assert cancelled.state is S.CANCELLED
    assert cancelled.timeline[-1].actor == who


def test_a_stranger_clicking_cancel_is_told_why_and_the_record_is_unchanged(slack):
    record = waiting()
    store = MemoryStore(record)
    assert click(make_app(slack, store), MALLORY, ActionId.CANCEL, record.id) == 200
    assert "may cancel" in ephemerals(slack, MALLORY)[-1]
    assert store.records[record.id] == record and store.writes == 0
    assert slack.calls("chat.update") == []


def test_a_refused_approval_is_noted_on_the_record_for_the_audit(slack):
    record = waiting()
    store = MemoryStore(record)
    click(make_app(slack, store), MALLORY, ActionId.APPROVE, record.id)
    assert "may not approve" in ephemerals(slack, MALLORY)[-1]
    after = store.get(record.id)
    assert after.state is S.AWAITING_APPROVAL
    assert after.timeline[-1].message.startswith(f"click by {MALLORY} refused")


def test_status_of_a_record_is_refused_outside_the_askers_namespaces(slack):
    record = waiting("prod")
    app = make_app(slack, MemoryStore(record))
    assert "shown only to people who may request a rollback in namespace prod" in command(
        app, MALLORY, f"status {record.id}"
    )
    assert record.id in command(app, ALICE, f"status {record.id}")


def test_the_status_list_shows_only_records_the_asker_may_request(slack):
    prod, staging = waiting("prod"), waiting("staging", by=MALLORY)
    app = make_app(slack, MemoryStore(prod, staging))
    shown = command(app, MALLORY, "status")
    assert staging.id in shown and prod.id not in shown
    both = command(app, ALICE, "status")
    assert staging.id in both and prod.id in both


def test_history_of_a_namespace_the_asker_may_not_request_is_refused(slack):
    store = MemoryStore()
    app = make_app(slack, store)
    answer = command(app, MALLORY, "history web -n prod")
    assert "history of namespace prod is shown only to people who may request" in answer
    assert "Reading the history" in command(app, MALLORY, "history web -n staging")


def test_a_membership_slack_could_not_check_is_a_try_again_not_a_no(slack):
    config = RollbotConfig(requesters=["S0ONCALL"])

    def slack_down(user: str, groups: frozenset[str]) -> frozenset[str]:
        raise MembershipUnknown()

    store = MemoryStore()
    answer = command(make_app(slack, store, config, slack_down), ALICE, "web -n prod")
    assert "could not check your group membership in Slack; try again" in answer
    assert "not on the list" not in answer and store.records == {}


def test_a_hostile_command_is_answered_escaped(slack):
    app = make_app(slack, MemoryStore())
    # An @channel Slack sent as markup is read as the person saw it, and quoted broken up.
    answer = command(app, MALLORY, "web --to-revision <!channel>")
    assert "<!channel>" not in answer and "@channel" not in answer and "channel" in answer
    # Typed as text, Slack sends it as entities: quoted back escaped, never live.
    answer = command(app, MALLORY, "web --to-revision &lt;!channel&gt;")
    assert "&lt;!channel&gt;" in answer and "<!channel>" not in answer


def test_a_click_naming_no_rollback_is_answered_not_crashed(slack):
    app = make_app(slack, MemoryStore())
    assert click(app, MALLORY, ActionId.CANCEL, "") == 200
    assert "names no rollback" in ephemerals(slack, MALLORY)[-1]
    assert click(app, MALLORY, ActionId.APPROVE, "rb-gone") == 200
    assert "rb-gone" in ephemerals(slack, MALLORY, at_least=2)[-1]
