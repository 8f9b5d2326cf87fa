"""People's names for reports: users.info, cached. A name is a nicety: when
Slack cannot say (down, rate-limited, an unknown id), the id stands in."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger("rollbot.people")
#: A person a text names by id (`@U123`: how `handlers.slack_text` reads a mention).
_NAMED = re.compile(r"(?<![\w@<;])@((?=[UW][A-Z]*\d)[UW][A-Z0-9]{2,})\b")
NamesOf = Callable[[set[str]], Mapping[str, str]]


def with_names(text: str, names_of: NamesOf) -> str:
    """`text` (a file, not mrkdwn) with each `@U123` it holds as `@Their Name`, where
    Slack knows it: a report reads naturally outside Slack, which links ids itself."""
    ids = set(_NAMED.findall(text))
    if not ids:
        return text
    names = names_of(ids)
    return _NAMED.sub(lambda m: f"@{names.get(m.group(1)) or m.group(1)}", text)


class SlackPeople:
    def __init__(self, client: WebClient, ttl: float = 3600) -> None:
        self.client, self.ttl = client, ttl
        self._cache: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def __call__(self, ids: set[str]) -> Mapping[str, str]:
        names: dict[str, str] = {}
        for user in sorted(ids):
            if (name := self._name(user)) is not None:
                names[user] = name
        return names

    def _name(self, user: str) -> str | None:
        with self._lock:
            cached = self._cache.get(user)
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        try:
            info = self.client.users_info(user=user)["user"]
        except (SlackApiError, OSError, KeyError, TypeError) as err:
            log.info("no name for %s: %s", user, err)
            return None
        profile = info.get("profile") or {}
        name = str(profile.get("real_name") or info.get("real_name") or info.get("name") or "")
        if not name:
            return None
        with self._lock:
            self._cache[user] = (time.monotonic(), name)
        return name
