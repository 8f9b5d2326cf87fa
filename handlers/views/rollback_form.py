"""The rollback form: `/rollback` with no service, or the "Roll back…" shortcut,
opens it; choosing a service fills its targets; submitting it opens the rollback
exactly as `/rollback SERVICE …` does (the same request model, the same checks,
the same `open_rollback`).

Slack gives `views.open` three seconds from the trigger: the listeners ack, then
open the form at once. The targets are the service's history, which only the
domain reads (`Services.targets`, over `bot.history.rollback_targets`): it is read
after the ack, and the form updated with it.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.errors import RollbotError
from bot.names import check_namespace, check_object_name
from bot.requests import RollbackRequest
from handlers.after_ack import tell
from handlers.authorization import (
    Caller,
    form_request_check,
    on_surface,
    on_view,
    shown_to_anyone,
)
from handlers.form import (
    FormState,
    chosen_namespace,
    chosen_service,
    form_view,
    read_form,
    service_options,
)
from handlers.ids import ActionId, BlockId, CallbackId
from handlers.mrkdwn import plain
from handlers.opening import open_rollback
from handlers.services import Services

log = logging.getLogger("rollbot.slack")


def open_form(client: WebClient, services: Services, trigger_id: str, channel: str | None) -> None:
    """Open an empty form; `channel` is where its confirmation goes (None: it asks).
    Called after the ack, in Bolt's pool: Slack's trigger lives 3 s from the click,
    not from the ack, and an ack that waited for views.open would be late whenever
    Slack is."""
    try:
        view = form_view(services.config, FormState(channel=channel or None), datetime.now(UTC))
        client.views_open(trigger_id=trigger_id, view=view)
    except SlackApiError as err:  # an expired trigger: the person tries again
        log.warning("could not open the rollback form: %s", err.response.get("error"))
    except (SlackClientError, OSError) as err:
        log.warning("could not open the rollback form: %s", err)
    except Exception:  # a bug: loud, since no one is waiting on this thread's result
        log.exception("could not open the rollback form")


def form_state(caller: Caller, values: dict[str, Any], channel: str | None) -> FormState:
    """The form once a service is chosen: its targets, or why they cannot be shown."""
    services = caller.services
    config = services.config
    service = chosen_service(values)
    if not service:
        return FormState(channel=channel)
    entry = config.services.get(service)
    namespace = chosen_namespace(values) or (entry.namespace if entry else None)
    namespace = namespace or config.default_namespace
    state = FormState(
        channel=channel,
        service=service,
        namespace=chosen_namespace(values),
        reason_required=config.policy_for(namespace).reason_required,
    )
    if services.targets is None:
        return replace(state, problem="not read here")
    try:
        check_object_name(service)
        check_namespace(namespace)
        caller.may_read_history(namespace)  # the targets are that namespace's history
        targets = services.targets(namespace, service)
    except RollbotError as err:
        return replace(state, problem=str(err))
    return replace(state, targets=targets)


def submit(caller: Caller, view: dict[str, Any], command: RollbackRequest) -> tuple[str, str]:
    """Open the rollback the form asks for: (channel, what the asker reads)."""
    answers = read_form(view)
    asker = Caller(caller.services, caller.user, answers.channel)
    return answers.channel, open_rollback(asker, command, f"view:{view.get('id')}").text


def register(app: App, services: Services) -> None:
    later = app.listener_runner.listener_executor  # Slack is answered when we return

    @on_surface(app, services, "shortcut", CallbackId.SHORTCUT, shown_to_anyone)
    def shortcut_used(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        later.submit(open_form, client, services, str(body.get("trigger_id") or ""), None)

    @on_surface(app, services, "options", ActionId.FORM_SERVICE, shown_to_anyone)
    def services_suggested(ack: Ack, body: dict[str, Any]) -> None:
        ack(options=service_options(services.config, str(body.get("value") or "")))

    @on_surface(app, services, "action", ActionId.FORM_SERVICE, shown_to_anyone)
    def service_chosen(
        ack: Ack, body: dict[str, Any], context: BoltContext, client: WebClient
    ) -> None:
        ack()
        # The targets are read from the cluster: after the ack (Slack is answered when
        # this listener returns), in Bolt's pool.
        later.submit(fill_targets, client, context["caller"], body.get("view") or {})

    def fill_targets(client: WebClient, caller: Caller, view: dict[str, Any]) -> None:
        values = (view.get("state") or {}).get("values") or {}
        try:
            state = form_state(caller, values, caller.channel or None)
            client.views_update(
                view_id=view.get("id"),
                hash=view.get("hash"),
                view=form_view(services.config, state, datetime.now(UTC)),
            )
        except SlackApiError as err:
            # hash_conflict: the person chose again meanwhile; that choice updates it.
            log.info("rollback form not updated: %s", err.response.get("error"))
        except (SlackClientError, OSError) as err:
            log.warning("rollback form not updated: %s", err)
        except Exception:  # a bug: loud, since no one is waiting on this thread's result
            log.exception("rollback form not updated")

    @on_view(app, services, CallbackId.FORM, form_request_check)
    def form_submitted(
        ack: Ack, body: dict[str, Any], context: BoltContext, client: WebClient
    ) -> None:
        caller: Caller = context["caller"]
        try:
            channel, text = submit(caller, body.get("view") or {}, context["command"])
        except RollbotError as err:
            ack(response_action="errors", errors={BlockId.FORM_SERVICE: plain(str(err))})
            return
        ack()  # the form closes; the answer goes where the confirmation will be
        later.submit(tell, client, channel, caller.user, text)
