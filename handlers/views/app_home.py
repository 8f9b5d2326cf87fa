"""App Home: when someone opens rollbot's Home tab, publish what they may see of
the rollbacks (the records of namespaces where they may request one)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError
from slack_sdk.models.views import View

from bot.errors import RollbotError
from bot.policy import may_request
from handlers.authorization import Caller, on_surface, shown_to_anyone
from handlers.home import home_view
from handlers.services import Services

log = logging.getLogger("rollbot.slack")

#: How many recent records the tab looks through.
HOME_SCAN = 100


def home_for(caller: Caller, now: datetime) -> View:
    services = caller.services
    records = [r for r in services.store.recent(HOME_SCAN) if caller.sees(r)]
    held = {
        workload: holder
        for workload, holder in services.store.held_workloads().items()
        if may_request(services.config, workload.split("/", 1)[0], caller.user, services.groups_of)
    }
    return home_view(records, held, now)


def publish_home(client: WebClient, caller: Caller) -> None:
    """The tab, read and published after the ack, in Bolt's pool: Slack expects the
    event's ack within 3 s whatever it takes to answer views.publish. The tab is a
    view of the records, shown again at the next opening: a failure is a log line."""
    try:
        client.views_publish(user_id=caller.user, view=home_for(caller, datetime.now(UTC)))
    except (SlackClientError, OSError, RollbotError) as err:
        log.warning("App Home of %s not published: %s", caller.user, err)
    except Exception:  # a bug: loud, since no one is waiting on this thread's result
        log.exception("App Home of %s not published", caller.user)


def register(app: App, services: Services) -> None:
    later = app.listener_runner.listener_executor  # Slack is answered when we return

    @on_surface(app, services, "event", "app_home_opened", shown_to_anyone)
    def home_opened(
        ack: Ack, event: dict[str, Any], context: BoltContext, client: WebClient
    ) -> None:
        ack()
        if event.get("tab", "home") != "home":
            return
        later.submit(publish_home, client, context["caller"])
