"""Slack user groups named in the policy (IDs starting with S), resolved through
the Web API and cached, so a click rarely waits for Slack."""

from __future__ import annotations

import threading
import time

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError


class SlackGroups:
    def __init__(self, client: WebClient, ttl: float = 300) -> None:
        self.client = client
        self.ttl = ttl
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def members(self, group: str) -> frozenset[str]:
        with self._lock:
            cached = self._members.get(group)
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        try:
            users = frozenset(self.client.usergroups_users_list(usergroup=group)["users"])
        except SlackApiError:
            users = frozenset()  # an unknown group grants nothing
        with self._lock:
            self._members[group] = (time.monotonic(), users)
        return users

    def __call__(self, user: str, groups: frozenset[str]) -> frozenset[str]:
        """Which of `groups` `user` belongs to (the policy's GroupsOf)."""
        return frozenset(group for group in groups if user in self.members(group))
