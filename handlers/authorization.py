"""Who may use each listener, declared where the listener is registered.

Every listener carries an `Authorized` middleware (a unit test walks the app's
listeners and fails for one without it), so a new command or button cannot
forget to ask. The check runs on every request — a click too, because a message
can outlive a change of policy — before the listener, which then finds the
caller and what was checked (`context["caller"]`, `context["record"]`).

A refused request never reaches its listener and writes nothing (an approval
click's refusal alone is noted on the record, for the audit): the person hears
why, ephemerally, in the ack of a command or in a message after a click's ack.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.middleware import Middleware

from bot.commands import Command, parse_command
from bot.errors import InvalidInput, RollbotError
from bot.policy import (
    ReasonRequired,
    check_approver,
    check_may_cancel,
    check_may_read_history,
    check_may_request,
    check_may_resume,
    check_may_see,
    check_reason_given,
    may_request,
)
from bot.records import RollbackRecord
from handlers.after_ack import tell
from handlers.form import FieldError, channel_of, read_form, request_from_form
from handlers.ids import ActionId, BlockId, CallbackId
from handlers.mrkdwn import plain, untrusted
from handlers.services import Services
from handlers.slack_text import command_text

log = logging.getLogger("rollbot.slack")


@dataclass(frozen=True)
class Caller:
    """The person behind a request, and what the policy lets them do."""

    services: Services
    user: str
    channel: str

    def may_request(self, namespace: str, emergency: bool = False) -> None:
        config = self.services.config
        check_may_request(config, namespace, self.user, emergency, self.services.groups_of)
        config.check_namespace_allowed(namespace)

    def may_approve(self, record: RollbackRecord) -> None:
        check_approver(self.services.config, record, self.user, self.services.groups_of)

    def may_cancel(self, record: RollbackRecord) -> None:
        check_may_cancel(self.services.config, record, self.user, self.services.groups_of)

    def may_resume(self, record: RollbackRecord) -> None:
        check_may_resume(self.services.config, record, self.user, self.services.groups_of)

    def may_see(self, record: RollbackRecord) -> None:
        check_may_see(self.services.config, record, self.user, self.services.groups_of)

    def sees(self, record: RollbackRecord) -> bool:
        """For lists: whether `record` is one this caller may see."""
        return may_request(
            self.services.config, record.namespace, self.user, self.services.groups_of
        )

    def may_read_history(self, namespace: str) -> None:
        check_may_read_history(self.services.config, namespace, self.user, self.services.groups_of)


#: A check on the record a button names; raises a RollbotError to refuse.
RecordCheck = Callable[[Caller, RollbackRecord], None]
#: A check on a parsed command; the record it names, if it names one.
CommandCheck = Callable[[Caller, Command], RollbackRecord | None]


class Authorized(Middleware):
    """Base of the listener middleware that decides whether a request may go on."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def process(
        self,
        *,
        req: BoltRequest,
        resp: BoltResponse,
        next: Callable[[], BoltResponse],  # noqa: A002 (Bolt's name for it)
    ) -> BoltResponse | None:
        caller = Caller(self.services, *self.who(req.body))
        try:
            record = self.authorize(caller, req)
        except RollbotError as err:
            return self.refuse(caller, req, err)
        req.context["caller"] = caller
        req.context["record"] = record
        next()
        return resp

    def who(self, body: dict[str, Any]) -> tuple[str, str]:
        """(user, channel) of the request."""
        raise NotImplementedError

    def authorize(self, caller: Caller, req: BoltRequest) -> RollbackRecord | None:
        """The record the request is about (None if none); raises to refuse."""
        raise NotImplementedError

    def refuse(self, caller: Caller, req: BoltRequest, err: RollbotError) -> BoltResponse:
        raise NotImplementedError


class CommandAuthorized(Authorized):
    """`/rollback …`: parsed, then checked by what its subcommand declares. A
    subcommand with no declared check is refused: nothing runs unchecked."""

    def __init__(self, services: Services, checks: Mapping[str, CommandCheck]) -> None:
        super().__init__(services)
        self.checks = dict(checks)

    def who(self, body: dict[str, Any]) -> tuple[str, str]:
        return str(body.get("user_id", "")), str(body.get("channel_id", ""))

    def authorize(self, caller: Caller, req: BoltRequest) -> RollbackRecord | None:
        config = self.services.config
        text = command_text(str(req.body.get("text", "")))
        command = parse_command(text, config.default_namespace, config.catalog)
        req.context["command"] = command
        check = self.checks.get(command.action)
        if check is None:
            raise RollbotError(f"/rollback {command.action} is not available")
        return check(caller, command)

    def refuse(self, caller: Caller, req: BoltRequest, err: RollbotError) -> BoltResponse:
        return req.context.ack(text=f":warning: {untrusted(str(err))}", response_type="ephemeral")


class ClickAuthorized(Authorized):
    """A button whose value is a record id: the record read, then checked."""

    def __init__(
        self, services: Services, check: RecordCheck, executor: Executor, *, audit: bool = False
    ) -> None:
        super().__init__(services)
        self.check = check
        #: Where the refusal is posted from, once the ack is on its way.
        self.executor = executor
        #: Note a refusal on the record's timeline (for decisions someone will ask about).
        self.audit = audit

    def who(self, body: dict[str, Any]) -> tuple[str, str]:
        user, channel = body.get("user") or {}, body.get("channel") or {}
        return str(user.get("id", "")), str(channel.get("id", ""))

    def authorize(self, caller: Caller, req: BoltRequest) -> RollbackRecord | None:
        actions = req.body.get("actions") or [{}]
        record_id = actions[0].get("value")
        if not isinstance(record_id, str) or not record_id:
            raise InvalidInput("this button names no rollback")
        record = self.services.store.get(record_id)
        req.context["record"] = record
        self.check(caller, record)
        return record

    def refuse(self, caller: Caller, req: BoltRequest, err: RollbotError) -> BoltResponse:
        response = req.context.ack()
        record: RollbackRecord | None = req.context.get("record")
        if self.audit and record is not None:
            problem = str(err)
            try:
                self.services.store.update(
                    record.id,
                    lambda r: r.note(f"click by {caller.user} refused: {problem}", caller.user),
                )
            except RollbotError:
                pass  # the store is down: the clicker still hears why
        text = f":warning: {untrusted(str(err))}"
        self.executor.submit(
            tell,
            req.context.client,
            caller.channel,
            caller.user,
            text,
            req.body.get("response_url"),
        )
        return response


#: A check on a request from a view or an event (the form, a shortcut, App Home).
SurfaceCheck = Callable[[Caller, BoltRequest], None]


class SurfaceAuthorized(Authorized):
    """The form (its submission and its fields), the shortcut that opens it, and App
    Home. A refused submission is answered under the field it is about; the rest
    have no channel to answer in, so a refusal is only logged."""

    def __init__(self, services: Services, check: SurfaceCheck) -> None:
        super().__init__(services)
        self.check = check

    def who(self, body: dict[str, Any]) -> tuple[str, str]:
        user = body.get("user")
        event = body.get("event") or {}
        if isinstance(user, dict):
            user_id = str(user.get("id", ""))
        else:
            user_id = str(body.get("user_id") or event.get("user") or "")
        channel = channel_of(body.get("view") or {}) or (body.get("channel") or {}).get("id")
        return user_id, str(channel or "")

    def authorize(self, caller: Caller, req: BoltRequest) -> RollbackRecord | None:
        self.check(caller, req)
        return None

    def refuse(self, caller: Caller, req: BoltRequest, err: RollbotError) -> BoltResponse:
        if req.body.get("type") == "view_submission":
            block = err.block if isinstance(err, FieldError) else BlockId.FORM_SERVICE
            return req.context.ack(response_action="errors", errors={block: plain(str(err))})
        log.info("%s refused for %s: %s", req.body.get("type"), caller.user, err)
        return req.context.ack()


Listener = Callable[..., BoltResponse | None]
#: What Bolt's app.command / app.action return: a decorator registering a listener.
Registration = Callable[..., Listener | None]


def on_command(
    app: App, services: Services, name: str, checks: Mapping[str, CommandCheck]
) -> Registration:
    """Register a slash command's listener with the check each subcommand declares."""
    return app.command(name, middleware=[CommandAuthorized(services, checks)])


def on_click(
    app: App, services: Services, action: ActionId, check: RecordCheck, *, audit: bool = False
) -> Registration:
    """Register a button's listener with the check on the record it names."""
    executor = app.listener_runner.listener_executor
    return app.action(
        action.value, middleware=[ClickAuthorized(services, check, executor, audit=audit)]
    )


def on_view(
    app: App, services: Services, callback: CallbackId, check: SurfaceCheck
) -> Registration:
    """Register a view submission's listener with its check."""
    return app.view(callback.value, middleware=[SurfaceAuthorized(services, check)])


def on_surface(
    app: App, services: Services, kind: str, name: str, check: SurfaceCheck
) -> Registration:
    """Register a listener of `kind` ("shortcut", "action", "options", "event") on the
    form or App Home, with its check."""
    register: Callable[..., Registration] = getattr(app, kind)
    return register(name, middleware=[SurfaceAuthorized(services, check)])


# -- the checks listeners declare ------------------------------------------------------


def anyone(caller: Caller, command: Command) -> None:
    """For what reveals nothing and changes nothing (help)."""


def counts_what_it_may(caller: Caller, command: Command) -> None:
    """For what counts only the records of namespaces where the caller may request
    a rollback (stats): nothing to refuse, the answer filters itself."""


def request_check(caller: Caller, command: Command) -> None:
    caller.may_request(command.namespace, command.emergency)
    check_reason_given(caller.services.config, command.namespace, command.reason, command.dry_run)


def shown_to_anyone(caller: Caller, req: BoltRequest) -> None:
    """For what shows only the catalog, or filters itself by what the caller may see
    (the form's fields, its shortcut, App Home). The form's targets are the history
    of a namespace: its listener asks `may_read_history` for the one chosen."""


def form_request_check(caller: Caller, req: BoltRequest) -> None:
    """A submitted form: the request built the command's way, then checked as
    `/rollback SERVICE …` is; each refusal placed on its field."""
    config = caller.services.config
    answers = read_form(req.body.get("view") or {})
    command = request_from_form(config, answers)
    req.context["command"] = command
    try:
        request_check(Caller(caller.services, caller.user, answers.channel), command)
    except ReasonRequired as err:
        raise FieldError(BlockId.FORM_REASON, str(err)) from None


def history_check(caller: Caller, command: Command) -> None:
    caller.may_read_history(command.namespace)


def status_check(caller: Caller, command: Command) -> RollbackRecord | None:
    """One record: only if the caller may see it. The list filters itself by `sees`."""
    if not command.record_id:
        return None
    record = caller.services.store.get(command.record_id)
    caller.may_see(record)
    return record


def cancel_check(caller: Caller, command: Command) -> RollbackRecord:
    record = caller.services.store.get(command.record_id)
    caller.may_cancel(record)
    return record


def resume_check(caller: Caller, command: Command) -> RollbackRecord:
    record = caller.services.store.get(command.record_id)
    caller.may_resume(record)
    return record


def resume_click(caller: Caller, record: RollbackRecord) -> None:
    """Resume… and Resume reconciliation: GitOps reconciliation a rollback holds."""
    caller.may_resume(record)


def approve_click(caller: Caller, record: RollbackRecord) -> None:
    caller.may_approve(record)


def cancel_click(caller: Caller, record: RollbackRecord) -> None:
    caller.may_cancel(record)


def request_click(caller: Caller, record: RollbackRecord) -> None:
    """A button that opens a new rollback of the record's workload."""
    caller.may_request(record.namespace)
