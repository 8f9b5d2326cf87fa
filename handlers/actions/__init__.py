"""Button clicks on rollbot's messages."""

from __future__ import annotations

from slack_bolt import App

from handlers.actions import decision, recovery, resume
from handlers.services import Services


def register(app: App, services: Services) -> None:
    decision.register(app, services)
    recovery.register(app, services)
    resume.register(app, services)
