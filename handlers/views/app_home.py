"""App Home: when someone opens rollbot's Home tab, publish what they may see of
the rollbacks (the records of namespaces where they may request one)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.models.views import View

from bot.policy import may_request
from handlers.authorization import Caller, on_surface, shown_to_anyone
from handlers.home import home_view
from handlers.services import Services

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


def register(app: App, services: Services) -> None:
    @on_surface(app, services, "event", "app_home_opened", shown_to_anyone)
    def home_opened(
        ack: Ack, event: dict[str, Any], context: BoltContext, client: WebClient
    ) -> None:
        ack()
        if event.get("tab", "home") != "home":
            return
        caller: Caller = context["caller"]
        client.views_publish(user_id=caller.user, view=home_for(caller, datetime.now(UTC)))
