"""Slash commands."""

from __future__ import annotations

from slack_bolt import App

from handlers.commands import rollback
from handlers.services import Services


def register(app: App, services: Services) -> None:
    rollback.register(app, services)
