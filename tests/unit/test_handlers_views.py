"""The form's and App Home's listeners through the real Bolt app (`App.dispatch`,
signed requests), their Web API calls to the local Slack API: what opens the form,
what fills it, what refuses it, and what the Home tab shows whom."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_bolt import App, BoltRequest
from slack_sdk.signature import SignatureVerifier

from bot.config import RollbotConfig
from bot.errors import RollbotError
from bot.gitops.holds import ReconciliationHold
from bot.history import Target, Targets
from bot.records import RollbackRecord
from handlers.app import create_app
from handlers.form import FormState, form_view
from handlers.ids import ActionId, BlockId, CallbackId
from handlers.services import Services
from testbed.slack_api import FakeSlackApi
from testbed.slack_user import view_state
from tests.unit.test_handlers_authorization import (
    ALICE,
    CHANNEL,
    MALLORY,
    SECRET,
    MemoryQueue,
    MemoryStore,
    command,
    signed,
    waiting,
)

CONFIG = RollbotConfig.model_validate(
    {
        "environments": {
            "prod": {"namespaces": ["prod"], "requesters": [ALICE], "reason_required": True}
        },
        "services": {"web": {"namespace": "prod"}, "api": {"namespace": "prod"}},
    }
)
TARGETS = Targets((Target(2, "web:v2", None), Target(1, "web:v1", None)), default=2)


class HomeStore(MemoryStore):
    def __init__(self, *records: RollbackRecord, held: dict[str, str] | None = None) -> None:
        super().__init__(*records)
        self.held = held or {}

    def held_workloads(self, limit: int = 200) -> dict[str, str]:
        return dict(self.held)


@pytest.fixture
def slack() -> Iterator[FakeSlackApi]:
    with FakeSlackApi() as api:
        yield api


def make_app(
    slack: FakeSlackApi,
    store: Any = None,
    targets: Callable[[str, str], Targets] | None = lambda namespace, service: TARGETS,
) -> App:
    services = Services(CONFIG, store or HomeStore(), MemoryQueue(), targets=targets)  # type: ignore[arg-type]
    return create_app(services, token="xoxb-test", signing_secret=SECRET, base_url=slack.base_url)


def payload(app: App, body: dict[str, Any]) -> Any:
    response = app.dispatch(signed({"payload": json.dumps(body)}))
    assert response.status == 200, response.body
    return json.loads(response.body) if response.body else None


def signed_json(body: dict[str, Any]) -> BoltRequest:
    """An event, as Slack sends it: JSON, signed."""
    text = json.dumps(body)
    ts = str(int(time.time()))
    signature = SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=text)
    return BoltRequest(
        body=text,
        headers={
            "content-type": ["application/json"],
            "x-slack-request-timestamp": [ts],
            "x-slack-signature": [str(signature)],
        },
    )


def until(what: str, found: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if value := found():
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def form(channel: str | None = CHANNEL) -> dict[str, Any]:
    view = form_view(CONFIG, FormState(channel=channel), datetime.now(UTC))
    return {**view.to_dict(), "id": "V0FORM", "hash": "1.fake"}


def test_rollback_with_no_service_opens_the_form_for_the_commands_channel(slack):
    app = make_app(slack)
    form_text = command(app, ALICE, "")
    assert form_text == "", "no usage: the form"
    # The unit helper's trigger was not issued by the local Slack: it is refused as Slack would.
    assert until("views.open", lambda: slack.calls("views.open"))[0].error == "invalid_trigger_id"
    body = {
        "command": "/rollback",
        "text": "  ",
        "user_id": ALICE,
        "channel_id": CHANNEL,
        "team_id": "T0TEAM",
        "trigger_id": slack.issue_trigger(),
        "response_url": "http://127.0.0.1:9/unused",
    }
    assert app.dispatch(signed(body)).status == 200
    [opened] = until("the form", slack.views)
    assert opened["callback_id"] == CallbackId.FORM
    assert json.loads(opened["private_metadata"]) == {"channel": CHANNEL}


def test_typing_into_a_long_catalog_suggests_matching_services(slack):
    app = make_app(slack)
    answer = payload(
        app,
        {
            "type": "block_suggestion",
            "user": {"id": ALICE},
            "team": {"id": "T0TEAM"},
            "container": {"type": "view", "view_id": "V0FORM"},
            "view": form(),
            "action_id": ActionId.FORM_SERVICE,
            "block_id": BlockId.FORM_SERVICE,
            "value": "AP",
        },
    )
    assert [o["value"] for o in answer["options"]] == ["api"]


def choose_web(app: App, user: str = ALICE) -> None:
    view = form()
    state = view_state(view, {ActionId.FORM_SERVICE: "web"})
    payload(
        app,
        {
            "type": "block_actions",
            "user": {"id": user},
            "team": {"id": "T0TEAM"},
            "container": {"type": "view", "view_id": "V0FORM"},
            "view": {**view, "state": {"values": state}},
            "actions": [
                {
                    **state[BlockId.FORM_SERVICE][ActionId.FORM_SERVICE],
                    "action_id": ActionId.FORM_SERVICE,
                    "block_id": BlockId.FORM_SERVICE,
                }
            ],
        },
    )


def updated_target(slack: FakeSlackApi) -> str:
    [call] = until("views.update", lambda: slack.calls("views.update"))
    view = call.args["view"]
    view = json.loads(view) if isinstance(view, str) else view
    return json.dumps(next(b for b in view["blocks"] if b.get("block_id") == BlockId.FORM_TARGET))


def test_choosing_a_service_fills_its_targets(slack):
    asked: list[tuple[str, str]] = []

    def targets(namespace: str, service: str) -> Targets:
        asked.append((namespace, service))
        return TARGETS

    choose_web(make_app(slack, targets=targets))
    assert '"value": "2"' in updated_target(slack) and asked == [("prod", "web")]


def test_the_targets_of_a_namespace_the_chooser_may_not_read_are_not_read(slack):
    def targets(namespace: str, service: str) -> Targets:
        raise AssertionError("read for someone who may not")

    choose_web(make_app(slack, targets=targets), MALLORY)
    assert "shown only to people who may request" in updated_target(slack)


def test_a_history_that_cannot_be_read_leaves_the_choice_to_rollbot(slack):
    def targets(namespace: str, service: str) -> Targets:
        raise RollbotError("the Kubernetes API is unreachable")

    choose_web(make_app(slack, targets=targets))
    shown = updated_target(slack)
    assert "unreachable" in shown and "rollbot picks the target" in shown


def submit(app: App, user: str, answers: dict[str, Any]) -> Any:
    view = form()
    return payload(
        app,
        {
            "type": "view_submission",
            "user": {"id": user},
            "team": {"id": "T0TEAM"},
            "view": {**view, "state": {"values": view_state(view, answers)}},
        },
    )


def test_a_form_refused_by_policy_is_answered_on_its_field_and_writes_nothing(slack):
    store = HomeStore()
    app = make_app(slack, store)
    stranger = submit(app, MALLORY, {ActionId.FORM_SERVICE: "web", ActionId.FORM_REASON: "x"})
    assert stranger["response_action"] == "errors"
    assert "may request a rollback in prod" in stranger["errors"][BlockId.FORM_SERVICE]
    no_reason = submit(app, ALICE, {ActionId.FORM_SERVICE: "web"})
    assert "must say why" in no_reason["errors"][BlockId.FORM_REASON]
    assert store.writes == 0 and store.records == {}


def test_the_command_needs_a_reason_where_the_form_does(slack):
    app = make_app(slack)
    assert "must say why" in command(app, ALICE, "web")


def test_the_home_tab_shows_each_person_what_they_may_see(slack):
    record = waiting("prod")
    store = HomeStore(record, held={"prod/web": record.id, "staging/api": "rb-00000000"})
    app = make_app(slack, store)
    for user in (ALICE, MALLORY):
        event = {
            "type": "event_callback",
            "team_id": "T0TEAM",
            "api_app_id": "A0APP",
            "event": {"type": "app_home_opened", "user": user, "tab": "home"},
            "event_id": f"Ev{user}",
            "event_time": int(time.time()),
        }
        assert app.dispatch(signed_json(event)).status == 200
    alice = json.dumps(until("Alice's home", lambda: slack.home(ALICE)))
    mallory = json.dumps(until("Mallory's home", lambda: slack.home(MALLORY)))
    assert record.id in alice and "prod/web" in alice
    assert record.id not in mallory and "prod/web" not in mallory, "prod is not hers to see"
    assert "staging/api" in mallory


def test_the_home_tab_lists_the_reconciliations_a_rollback_holds(slack):
    held_at = datetime.now(UTC) - timedelta(hours=2)
    holding = waiting("prod").model_copy(
        update={
            "thread_ts": "1700000000.000100",
            "holds": (
                ReconciliationHold(
                    kind="Kustomization",
                    namespace="flux-system",
                    name="apps",
                    previous='{"suspend": null}',
                    held_at=held_at,
                ),
                # Resumed by a person already: no longer held, not listed.
                ReconciliationHold(
                    kind="Application",
                    namespace="argocd",
                    name="web",
                    previous='{"automated": {}}',
                    held_at=held_at,
                    resumed_at=datetime.now(UTC),
                    resumed_by=ALICE,
                ),
            ),
        }
    )
    app = make_app(slack, HomeStore(holding))
    event = {
        "type": "event_callback",
        "team_id": "T0TEAM",
        "api_app_id": "A0APP",
        "event": {"type": "app_home_opened", "user": ALICE, "tab": "home"},
        "event_id": "EvHOLDS",
        "event_time": int(time.time()),
    }
    assert app.dispatch(signed_json(event)).status == 200
    home = until("Alice's home", lambda: slack.home(ALICE))
    [section] = [b for b in home["blocks"] if b.get("block_id") == BlockId.HOME_RECONCILIATION]
    listed = section["text"]["text"]
    assert "Flux Kustomization flux-system/apps" in listed and "`prod/web`" in listed
    assert "held 2h ago" in listed and holding.id in listed
    assert f"/archives/{CHANNEL}/p1700000000000100" in listed, "linked to the rollback's thread"
    assert "argocd/web" not in listed and "yet" not in listed
