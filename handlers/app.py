"""The app factory: a Bolt App with every listener registered, no module globals."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from handlers import actions, commands, views
from handlers.services import Services

log = logging.getLogger("rollbot.slack")


def slack_client(token: str, base_url: str | None = None) -> WebClient:
    """A WebClient that waits out Slack's 429s (Retry-After) a few times."""
    kwargs: dict[str, Any] = {"token": token}
    if base_url:
        kwargs["base_url"] = base_url
    client = WebClient(**kwargs)
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=3))
    return client


def create_app(
    services: Services,
    *,
    token: str,
    signing_secret: str,
    base_url: str | None = None,
    client: WebClient | None = None,
) -> App:

    def authorize(
        enterprise_id: str | None, team_id: str | None, user_id: str | None
    ) -> AuthorizeResult:
        # One workspace, one token: no auth.test. Bolt's default asks Slack once per
        # process on its first request, and answers "install this app" to a command
        # typed while Slack is down, which then never reaches rollbot.
        return AuthorizeResult(
            enterprise_id=enterprise_id, team_id=team_id, bot_token=token, user_id=user_id
        )

    app = App(
        client=client or slack_client(token, base_url),
        signing_secret=signing_secret,
        authorize=authorize,
        # A listener runs in the thread of its request, and Slack is answered when it
        # returns: no hand-off to Bolt's pool and no 10 ms polling for the ack (half
        # the CPU of a command or click, bench/README.md). So listeners do their store
        # work before returning, and what they say in Slack after the ack goes to
        # `app.listener_runner.listener_executor`.
        process_before_response=True,
    )
    commands.register(app, services)
    actions.register(app, services)
    views.register(app, services)

    @app.error
    def report_error(error: Exception, body: dict[str, Any]) -> None:
        log.exception(
            "listener failed on %s", body.get("type") or body.get("command"), exc_info=error
        )

    return app
