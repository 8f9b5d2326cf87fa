"""The rollback form's view builders (pure), its reading back into the command's
request model, and the Approve button's confirm: each view also goes through the
local Slack API, so Slack's limits fail here, not in production."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.commands import parse_command
from bot.config import RollbotConfig
from bot.history import Target, Targets
from bot.policy import ReasonRequired, check_reason_given, protected_where
from bot.records import RollbackRecord, RollbackState, requested
from handlers.app import slack_client
from handlers.blocks import as_dicts, confirmation_blocks
from handlers.form import (
    FieldError,
    FormAnswers,
    FormState,
    age,
    form_view,
    read_form,
    request_from_form,
    service_options,
)
from handlers.ids import DRY_RUN, PERMANENT, ActionId, BlockId, CallbackId
from testbed.slack_api import FakeSlackApi
from testbed.slack_user import view_state

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CATALOG = RollbotConfig.model_validate(
    {
        "default_namespace": "homelab",
        "environments": {"prod": {"namespaces": ["prod"], "reason_required": True}},
        "services": {
            "family-assistant": {"namespace": "prod"},
            "todo-app": {"namespace": "homelab", "strategy": "helm"},
            "shop": {"namespace": "prod", "strategy": "argo-rollouts", "rollout": "shop-web"},
        },
    }
)
TARGETS = Targets(
    (
        Target(41, "family-assistant:1.4.2", NOW - timedelta(hours=2)),
        Target(40, "family-assistant:1.4.1", NOW - timedelta(days=3)),
    ),
    default=41,
)


@pytest.fixture
def slack() -> Iterator[FakeSlackApi]:
    with FakeSlackApi() as api:
        yield api


@pytest.fixture
def client(slack: FakeSlackApi) -> WebClient:
    return slack_client("xoxb-test", slack.base_url)


def opened(slack: FakeSlackApi, client: WebClient, view: Any) -> dict[str, Any]:
    """The view as the local Slack accepted it (it raises on anything Slack refuses)."""
    return dict(client.views_open(trigger_id=slack.issue_trigger(), view=view)["view"])


def block(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


def test_an_empty_form_offers_the_catalog_and_says_where_the_targets_will_be(slack, client):
    view = opened(slack, client, form_view(CATALOG, FormState(channel="C0OPS"), NOW))
    assert view["callback_id"] == CallbackId.FORM and view["title"]["text"] == "Roll back"
    service = block(view, BlockId.FORM_SERVICE)
    assert service["dispatch_action"] is True, "choosing a service fills the targets"
    assert [o["value"] for o in service["element"]["options"]] == [
        "family-assistant",
        "shop",
        "todo-app",
    ]
    assert service["element"]["options"][0]["description"]["text"] == "prod: family-assistant"
    assert block(view, BlockId.FORM_TARGET)["type"] == "context"
    assert json.loads(view["private_metadata"]) == {"channel": "C0OPS"}
    assert not any(b.get("block_id") == BlockId.FORM_CHANNEL for b in view["blocks"])


def test_a_form_opened_without_a_channel_asks_for_one(slack, client):
    view = opened(slack, client, form_view(CATALOG, FormState(), NOW))
    picker = block(view, BlockId.FORM_CHANNEL)["element"]
    assert picker["type"] == "conversations_select" and picker["default_to_current_conversation"]


def test_a_chosen_service_lists_its_revisions_newest_first_with_rollbots_choice(slack, client):
    state = FormState("C0OPS", "family-assistant", targets=TARGETS, reason_required=True)
    view = opened(slack, client, form_view(CATALOG, state, NOW))
    target = block(view, BlockId.FORM_TARGET)["element"]
    assert [o["value"] for o in target["options"]] == ["41", "40"]
    assert target["initial_option"]["text"]["text"] == "revision 41 (rollbot's choice)"
    assert target["options"][1]["description"]["text"] == "family-assistant:1.4.1 · 3d ago"
    assert block(view, BlockId.FORM_SERVICE)["element"]["initial_option"]["value"] == (
        "family-assistant"
    )
    assert block(view, BlockId.FORM_REASON)["optional"] is False


def test_a_long_catalog_is_typed_into_and_suggestions_filter_it(slack, client):
    many = RollbotConfig.model_validate({"services": {f"svc-{n:03d}": {} for n in range(150)}})
    view = opened(slack, client, form_view(many, FormState("C0OPS"), NOW))
    element = block(view, BlockId.FORM_SERVICE)["element"]
    assert element["type"] == "external_select" and "options" not in element
    assert [o.value for o in service_options(many, "SVC-14")] == [f"svc-14{n}" for n in range(10)]
    assert len(service_options(many)) == 100, "Slack takes at most 100 options"


def test_without_a_catalog_the_deployment_and_namespace_are_typed(slack, client):
    view = opened(slack, client, form_view(RollbotConfig(), FormState("C0OPS"), NOW))
    assert block(view, BlockId.FORM_SERVICE)["element"]["type"] == "plain_text_input"
    namespace = block(view, BlockId.FORM_NAMESPACE)["element"]
    assert namespace["initial_value"] == "default"


@pytest.mark.parametrize(
    ("state", "shown"),
    [
        (FormState("C0", "jarvis", targets=Targets(fixed="the other colour")), "the other colour"),
        (FormState("C0", "web", targets=Targets()), "no earlier revision"),
        (FormState("C0", "web", problem="deployments.apps <@U0EVE> not found"), "&lt;@U0EVE&gt;"),
    ],
)
def test_a_service_without_revisions_to_pick_says_why_in_the_form(slack, client, state, shown):
    view = opened(slack, client, form_view(CATALOG, state, NOW))
    assert shown in json.dumps(block(view, BlockId.FORM_TARGET), ensure_ascii=False)


def test_ages_read_as_people_say_them():
    assert [age(NOW - d, NOW) for d in (timedelta(0), timedelta(minutes=5))] == [
        "just now",
        "5m ago",
    ]
    assert age(None, NOW) == ""


def submitted(view: Any, answers: dict[str, Any]) -> dict[str, Any]:
    as_sent = view.to_dict()
    return {**as_sent, "state": {"values": view_state(as_sent, answers)}}


def test_a_submitted_form_is_the_request_the_command_would_build():
    state = FormState("C0OPS", "family-assistant", targets=TARGETS)
    view = submitted(
        form_view(CATALOG, state, NOW),
        {
            ActionId.FORM_TARGET: "40",
            ActionId.FORM_REASON: "crash  loop\non start",
            ActionId.FORM_OPTIONS: [DRY_RUN],
        },
    )
    answers = read_form(view)
    assert answers == FormAnswers(
        "family-assistant", None, "40", "crash  loop\non start", True, "C0OPS"
    )
    assert request_from_form(CATALOG, answers) == parse_command(
        'family-assistant --to-revision 40 --reason "crash loop on start" --dry-run',
        CATALOG.default_namespace,
        CATALOG.catalog,
    )


def test_an_argo_rollout_chosen_in_the_form_offers_a_permanent_abort(slack, client):
    offered = {
        service: [
            o["value"]
            for o in block(
                opened(slack, client, form_view(CATALOG, FormState("C0OPS", service), NOW)),
                BlockId.FORM_OPTIONS,
            )["element"]["options"]
        ]
        for service in ("shop", "family-assistant", "todo-app")
    }
    assert offered == {
        "shop": [DRY_RUN, PERMANENT],
        "family-assistant": [DRY_RUN],
        "todo-app": [DRY_RUN],
    }
    view = submitted(
        form_view(CATALOG, FormState("C0OPS", "shop"), NOW),
        {ActionId.FORM_REASON: "canary 5xx", ActionId.FORM_OPTIONS: [PERMANENT]},
    )
    answers = read_form(view)
    assert answers.permanent and not answers.dry_run
    assert request_from_form(CATALOG, answers) == parse_command(
        'shop --reason "canary 5xx" --permanent', CATALOG.default_namespace, CATALOG.catalog
    )


def test_a_permanent_abort_asked_of_a_deployment_is_refused_on_the_options():
    answers = FormAnswers("family-assistant", None, None, "why", False, "C0", permanent=True)
    with pytest.raises(FieldError, match="has no abort") as refused:
        request_from_form(CATALOG, answers)
    assert refused.value.block == BlockId.FORM_OPTIONS


@pytest.mark.parametrize(
    ("answers", "field"),
    [
        (FormAnswers("", None, None, "", False, "C0"), BlockId.FORM_SERVICE),
        (FormAnswers("Web_App", None, None, "", False, "C0"), BlockId.FORM_SERVICE),
        (FormAnswers("web", "No Such", None, "", False, "C0"), BlockId.FORM_NAMESPACE),
        (FormAnswers("web", None, "x", "", False, "C0"), BlockId.FORM_TARGET),
        (FormAnswers("web", None, None, "a\u202eb", False, "C0"), BlockId.FORM_REASON),
        (FormAnswers("web", None, None, "", False, ""), BlockId.FORM_CHANNEL),
    ],
)
def test_a_refused_answer_is_placed_on_its_field(answers, field):
    with pytest.raises(FieldError) as refused:
        request_from_form(CATALOG, answers)
    assert refused.value.block == field


def test_a_reason_is_required_only_where_policy_says_and_not_for_a_dry_run():
    check_reason_given(CATALOG, "homelab", "")
    check_reason_given(CATALOG, "prod", "", dry_run=True)
    with pytest.raises(ReasonRequired, match="in prod must say why"):
        check_reason_given(CATALOG, "prod", "  ")


def waiting(namespace: str) -> RollbackRecord:
    record = requested(namespace, "family-assistant", "U0ALICE", channel="C0OPS")
    record = record.transition(RollbackState.ASSESSED, "assessed", target_revision=41)
    return record.transition(RollbackState.AWAITING_APPROVAL, "asked")


def approve_of(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    return next(
        e for b in blocks for e in b.get("elements", []) if e["action_id"] == ActionId.APPROVE
    )


def test_approve_in_a_protected_environment_asks_first(client, slack):
    config = RollbotConfig.model_validate(
        {"environments": {"prod": {"namespaces": ["prod"], "protected": True}}}
    )
    where = protected_where(config, "prod")
    blocks = as_dicts(confirmation_blocks(waiting("prod"), where))
    client.chat_postMessage(channel="C0OPS", text="?", blocks=blocks)  # Slack takes it
    confirm = approve_of(blocks)["confirm"]
    assert confirm["text"] == {
        "type": "plain_text",
        "text": "Roll back family-assistant in prod to revision 41?",
    }
    assert (confirm["confirm"]["text"], confirm["deny"]["text"]) == ("Approve", "Not yet")


def test_approve_elsewhere_is_one_tap():
    config = RollbotConfig.model_validate(
        {"environments": {"prod": {"namespaces": ["prod"], "protected": True}}}
    )
    assert protected_where(config, "staging") is None
    assert "confirm" not in approve_of(as_dicts(confirmation_blocks(waiting("staging"))))
