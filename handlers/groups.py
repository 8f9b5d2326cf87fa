"""Slack user groups named in the policy (IDs starting with S), resolved through
the Web API and cached, so a click rarely waits for Slack.

Only answers are cached: a lookup Slack did not answer (an error, a 429 past its
retries, no connection) is neither "member" nor "not a member", and is asked again
next time."""

from __future__ import annotations

import logging
import threading
import time

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.policy import MembershipUnknown

log = logging.getLogger("rollbot.slack")

#: Slack's answer for a group that does not exist: a real answer, which grants nothing.
NO_SUCH_GROUP = "no_such_subteam"


class SlackGroups:
    def __init__(self, client: WebClient, ttl: float = 300) -> None:
        self.client = client
        self.ttl = ttl
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def members(self, group: str) -> frozenset[str]:
        """The group's members; MembershipUnknown when Slack could not say."""
        with self._lock:
            cached = self._members.get(group)
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        try:
            users = frozenset(self.client.usergroups_users_list(usergroup=group)["users"])
        except SlackApiError as err:
            if err.response.get("error") != NO_SUCH_GROUP:
                log.warning("could not read user group %s: %s", group, err)
                raise MembershipUnknown() from err
            users = frozenset()
        except (SlackClientError, OSError) as err:
            log.warning("could not read user group %s: %s", group, err)
            raise MembershipUnknown() from err
        with self._lock:
            self._members[group] = (time.monotonic(), users)
        return users

    def __call__(self, user: str, groups: frozenset[str]) -> frozenset[str]:
        """Which of `groups` `user` belongs to (the policy's GroupsOf). One group that
        could not be read does not hide membership of another that could."""
        found, unknown = set(), False
        for group in sorted(groups):
            try:
                if user in self.members(group):
                    found.add(group)
            except MembershipUnknown:
                unknown = True
        if unknown and not found:
            raise MembershipUnknown()
        return frozenset(found)
