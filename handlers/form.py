"""The rollback form, a modal: pure functions from the catalog and what is chosen so
far to the view, and from the submitted view back to what was asked.

The form asks what `/rollback SERVICE [--to-revision N] [--reason …] [--dry-run]`
asks, field by field; `read_form` hands the answers to the same request model the
command builds. Everything shown that came from the cluster or the config goes
through `plain()` (plain_text) or `untrusted()` (mrkdwn)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    CheckboxesElement,
    ContextBlock,
    ConversationFilter,
    ConversationSelectElement,
    ExternalDataSelectElement,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.config import RollbotConfig
from bot.errors import InvalidInput, RollbotError
from bot.history import Target, Targets
from bot.names import check_namespace, check_object_name
from bot.requests import (
    MAX_REASON_LENGTH,
    RollbackRequest,
    parse_reason,
    parse_revision,
    resolve_strategy,
)
from handlers.ids import DRY_RUN, PERMANENT, ActionId, BlockId, CallbackId
from handlers.mrkdwn import untrusted

#: A static select holds at most 100 options: a longer catalog is typed into
#: (an external select, answered by `block_suggestion`).
MAX_STATIC_OPTIONS = 100
#: Slack's limits on an option's text, description and value.
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150


@dataclass(frozen=True)
class FormState:
    """What the form shows: the service chosen so far and what it may go back to."""

    #: Where the confirmation goes: the command's channel (None: the form asks).
    channel: str | None = None
    service: str | None = None
    namespace: str | None = None
    targets: Targets | None = None
    #: Why the targets could not be read (the person reads it in the form).
    problem: str = ""
    reason_required: bool = False


@dataclass(frozen=True)
class FormAnswers:
    """A submitted form, as typed: each value is checked by the request model."""

    service: str
    namespace: str | None
    #: The revision chosen (None: rollbot picks, as with no --to-revision).
    revision: str | None
    reason: str
    dry_run: bool
    channel: str
    #: An Argo Rollout's abort made permanent (the command's --permanent).
    permanent: bool = False


def _option(text: str, value: str, description: str = "") -> Option:
    return Option(
        text=PlainTextObject(text=text[:MAX_OPTION_TEXT]),
        value=value,
        description=PlainTextObject(text=description[:MAX_OPTION_TEXT]) if description else None,
    )


def _where(config: RollbotConfig, service: str) -> str:
    entry = config.services[service]
    namespace = entry.namespace or config.default_namespace
    names = entry.deployments or [entry.deployment or service]
    return f"{namespace}: {', '.join(names)}"


def service_options(config: RollbotConfig, query: str = "") -> list[Option]:
    """The catalog's services whose name holds `query`, sorted, at most 100."""
    wanted = query.strip().lower()
    return [
        _option(name, name, _where(config, name))
        for name in sorted(config.services)
        if wanted in name.lower() and len(name) <= MAX_OPTION_VALUE
    ][:MAX_STATIC_OPTIONS]


def age(created: datetime | None, now: datetime) -> str:
    """ "5m ago", "3h ago", "2d ago"; "" when unknown."""
    if created is None:
        return ""
    seconds = max(0, int((now - created).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return "just now"


def target_option(target: Target, default: int | None, now: datetime) -> Option:
    chosen = " (rollbot's choice)" if target.revision == default else ""
    return _option(
        f"revision {target.revision}{chosen}",
        str(target.revision),
        " · ".join(part for part in (target.what, age(target.created, now)) if part),
    )


def _service_block(config: RollbotConfig, state: FormState) -> list[Block]:
    if not config.services:  # no catalog: any Deployment, named with its namespace
        return [
            InputBlock(
                block_id=BlockId.FORM_SERVICE,
                label=PlainTextObject(text="Deployment"),
                dispatch_action=True,
                element=PlainTextInputElement(
                    action_id=ActionId.FORM_SERVICE,
                    initial_value=state.service or None,
                    placeholder=PlainTextObject(text="web (press Enter to list its revisions)"),
                    max_length=253,
                ),
            ),
            InputBlock(
                block_id=BlockId.FORM_NAMESPACE,
                label=PlainTextObject(text="Namespace"),
                element=PlainTextInputElement(
                    action_id=ActionId.FORM_NAMESPACE,
                    initial_value=state.namespace or config.default_namespace,
                    max_length=63,
                ),
            ),
        ]
    chosen = (
        _option(state.service, state.service, _where(config, state.service))
        if state.service in config.services
        else None
    )
    element: StaticSelectElement | ExternalDataSelectElement
    if len(config.services) > MAX_STATIC_OPTIONS:
        element = ExternalDataSelectElement(
            action_id=ActionId.FORM_SERVICE,
            placeholder=PlainTextObject(text="Type a service's name"),
            initial_option=chosen,
            min_query_length=0,
        )
    else:
        element = StaticSelectElement(
            action_id=ActionId.FORM_SERVICE,
            placeholder=PlainTextObject(text="Choose a service"),
            options=service_options(config),
            initial_option=chosen,
        )
    return [
        InputBlock(
            block_id=BlockId.FORM_SERVICE,
            label=PlainTextObject(text="Service"),
            dispatch_action=True,
            element=element,
        )
    ]


def _note(text: str) -> ContextBlock:
    return ContextBlock(block_id=BlockId.FORM_TARGET, elements=[MarkdownTextObject(text=text)])


def _target_block(state: FormState, now: datetime) -> Block:
    service = untrusted(state.service or "")
    if state.service is None:
        return _note("Choose a service: the revisions it can go back to are listed here.")
    if state.problem:
        return _note(
            f"Could not read the history of *{service}*: {untrusted(state.problem)}. "
            "rollbot picks the target when it assesses."
        )
    targets = state.targets or Targets()
    if targets.fixed:
        return _note(f"*{service}* goes back to {untrusted(targets.fixed)}.")
    if not targets.choices:
        return _note(f"*{service}* has no earlier revision to go back to.")
    options = [target_option(t, targets.default, now) for t in targets.choices[:MAX_STATIC_OPTIONS]]
    initial = next(
        (
            o
            for o, t in zip(options, targets.choices, strict=False)
            if t.revision == targets.default
        ),
        None,
    )
    return InputBlock(
        block_id=BlockId.FORM_TARGET,
        label=PlainTextObject(text="Roll back to"),
        hint=PlainTextObject(text="Newest first; the current revision is not listed."),
        element=StaticSelectElement(
            action_id=ActionId.FORM_TARGET, options=options, initial_option=initial
        ),
    )


def form_view(config: RollbotConfig, state: FormState, now: datetime) -> View:
    """The rollback form, as it stands: the service chosen (or not yet), its targets."""
    blocks: list[Block] = [*_service_block(config, state), _target_block(state, now)]
    blocks.append(
        InputBlock(
            block_id=BlockId.FORM_REASON,
            label=PlainTextObject(text="Reason"),
            optional=not state.reason_required,
            hint=PlainTextObject(
                text="Required here: policy asks every rollback to say why."
                if state.reason_required
                else "Goes into the change-cause, the thread and the incident report."
            ),
            element=PlainTextInputElement(
                action_id=ActionId.FORM_REASON,
                placeholder=PlainTextObject(text="500s after the 2.3 deploy"),
                max_length=MAX_REASON_LENGTH,
            ),
        )
    )
    if state.channel is None:
        blocks.append(
            InputBlock(
                block_id=BlockId.FORM_CHANNEL,
                label=PlainTextObject(text="Post the confirmation in"),
                element=ConversationSelectElement(
                    action_id=ActionId.FORM_CHANNEL,
                    default_to_current_conversation=True,
                    filter=ConversationFilter(include=["public", "private"]),
                ),
            )
        )
    blocks.append(
        InputBlock(
            block_id=BlockId.FORM_OPTIONS,
            label=PlainTextObject(text="Options"),
            optional=True,
            element=CheckboxesElement(
                action_id=ActionId.FORM_OPTIONS,
                options=[
                    _option("Dry run", DRY_RUN, "Assess and show the plan; change nothing"),
                    *_permanent_option(config, state.service),
                ],
            ),
        )
    )
    return View(
        type="modal",
        callback_id=CallbackId.FORM,
        title=PlainTextObject(text="Roll back"),
        submit=PlainTextObject(text="Assess"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=json.dumps({"channel": state.channel} if state.channel else {}),
        blocks=blocks,
    )


def _permanent_option(config: RollbotConfig, service: str | None) -> list[Option]:
    """--permanent, offered once the service chosen is an Argo Rollout."""
    try:
        aborts = bool(service) and resolve_strategy(config.services, service or "") == (
            "argo-rollouts"
        )
    except RollbotError:
        aborts = False
    if not aborts:
        return []
    return [
        _option(
            "Make the abort permanent",
            PERMANENT,
            "Abort the update, then put the stable pod template back in the spec",
        )
    ]


def _value(values: dict[str, Any], block: BlockId, action: ActionId) -> dict[str, Any]:
    found = (values.get(block) or {}).get(action)
    return found if isinstance(found, dict) else {}


def chosen_service(values: dict[str, Any]) -> str | None:
    """The service picked (a select) or typed (no catalog), from a view's state."""
    field = _value(values, BlockId.FORM_SERVICE, ActionId.FORM_SERVICE)
    selected = field.get("selected_option") or {}
    text = selected.get("value") if selected else field.get("value")
    return str(text).strip() if text else None


def chosen_namespace(values: dict[str, Any]) -> str | None:
    typed = _value(values, BlockId.FORM_NAMESPACE, ActionId.FORM_NAMESPACE).get("value")
    return str(typed).strip() if typed else None


def channel_of(view: dict[str, Any]) -> str | None:
    """The channel a form was opened from (its private metadata), if it was."""
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return None
    channel = meta.get("channel") if isinstance(meta, dict) else None
    return str(channel) if channel else None


def read_form(view: dict[str, Any]) -> FormAnswers:
    """What a submitted form asks for (`view` as Slack sends it back)."""
    values: dict[str, Any] = (view.get("state") or {}).get("values") or {}
    target = _value(values, BlockId.FORM_TARGET, ActionId.FORM_TARGET).get("selected_option")
    reason = _value(values, BlockId.FORM_REASON, ActionId.FORM_REASON).get("value")
    options = _value(values, BlockId.FORM_OPTIONS, ActionId.FORM_OPTIONS)
    checked = {str(o.get("value")) for o in options.get("selected_options") or []}
    picked = _value(values, BlockId.FORM_CHANNEL, ActionId.FORM_CHANNEL)
    return FormAnswers(
        service=chosen_service(values) or "",
        namespace=chosen_namespace(values),
        revision=str(target["value"]) if target else None,
        reason=str(reason or ""),
        dry_run=DRY_RUN in checked,
        channel=channel_of(view) or str(picked.get("selected_conversation") or ""),
        permanent=PERMANENT in checked,
    )


class FieldError(RollbotError):
    """A refusal that belongs to one field of the form: shown under it."""

    code = "field"

    def __init__(self, block: BlockId, message: str) -> None:
        super().__init__(message)
        self.block = block


def _field(block: BlockId, check: Any, *args: Any) -> Any:
    try:
        return check(*args)
    except InvalidInput as err:
        raise FieldError(block, str(err)) from None


def request_from_form(config: RollbotConfig, answers: FormAnswers) -> RollbackRequest:
    """The request the form asks for: the command's model, built the command's way,
    each refusal placed on the field it is about."""
    if not answers.service:
        raise FieldError(BlockId.FORM_SERVICE, "choose a service")
    service = _field(BlockId.FORM_SERVICE, check_object_name, answers.service)
    namespace = answers.namespace
    if namespace is not None:
        namespace = _field(BlockId.FORM_NAMESPACE, check_namespace, namespace)
    revision = None
    if answers.revision is not None:
        revision = _field(BlockId.FORM_TARGET, parse_revision, "the target", answers.revision)
    reason = _field(BlockId.FORM_REASON, parse_reason, answers.reason)
    if not answers.channel:
        raise FieldError(BlockId.FORM_CHANNEL, "choose the channel for the confirmation")
    request: RollbackRequest = _field(
        BlockId.FORM_SERVICE,
        lambda: RollbackRequest.build(
            "rollback",
            service,
            default_namespace=config.default_namespace,
            namespace=namespace,
            catalog=config.catalog,
            to_revision=revision,
            reason=reason,
            dry_run=answers.dry_run,
            permanent=answers.permanent,
        ),
    )
    if request.permanent:  # the service may have changed since the box was ticked
        _field(BlockId.FORM_OPTIONS, request.resolved, config)
    return request
