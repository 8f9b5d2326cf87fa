"""Views: the rollback form (a modal) and App Home."""

from __future__ import annotations

from slack_bolt import App

from handlers.services import Services
from handlers.views import app_home, rollback_form


def register(app: App, services: Services) -> None:
    rollback_form.register(app, services)
    app_home.register(app, services)
