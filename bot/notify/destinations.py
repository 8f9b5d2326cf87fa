"""The destinations the config names, with their secrets from the environment.

A secret missing from the environment is a start-up error naming the variable
(`missing_secrets`), checked before anything starts.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx
import redis

from bot.config import ConfigError, RollbotConfig
from bot.notify.context import Destination
from bot.notify.pagerduty import PagerDuty
from bot.notify.settings import NotifySettings
from bot.notify.statuspage import Statuspage
from bot.notify.webhook import Webhook
from bot.reports import TemplateRenderer


def _secrets(settings: NotifySettings) -> list[tuple[str, str]]:
    """(variable, what it holds) for every secret the settings need."""
    wanted = []
    if settings.pagerduty:
        wanted.append((settings.pagerduty.routing_key_env, "PagerDuty's routing key"))
    for hook in settings.webhooks:
        wanted.append((hook.secret_env, f"the signing secret of webhook {hook.url}"))
    if settings.statuspage:
        wanted.append((settings.statuspage.api_key_env, "the Statuspage API key"))
    return wanted


def missing_secrets(settings: NotifySettings, environ: Mapping[str, str]) -> str | None:
    """One line naming every secret the config's notify section needs but the
    environment lacks, or None."""
    missing = [f"{name} ({what})" for name, what in _secrets(settings) if not environ.get(name)]
    if not missing:
        return None
    listed = ", ".join(missing)
    chart = "the chart: notify.existingSecret and notify.keys"
    return f"notify: set {listed} in the environment ({chart})"


def destinations_from_environment(
    config: RollbotConfig, environ: Mapping[str, str], store: redis.Redis
) -> list[Destination]:
    settings = config.notify
    if problem := missing_secrets(settings, environ):
        raise ConfigError(problem)
    client = httpx.Client(timeout=settings.timeout_seconds, follow_redirects=False)
    found: list[Destination] = []
    if settings.pagerduty:
        key = environ[settings.pagerduty.routing_key_env]
        found.append(PagerDuty(settings.pagerduty, key, client))
    for hook in settings.webhooks:
        found.append(Webhook(hook, environ[hook.secret_env], client))
    if settings.statuspage:
        api_key = environ[settings.statuspage.api_key_env]
        renderer = TemplateRenderer(config.templates_dir)
        found.append(Statuspage(settings.statuspage, api_key, client, store, renderer))
    return found
