"""Slack user groups named in the policy (IDs starting with S), resolved through
the Web API and cached, so a click rarely waits for Slack.

Only answers are cached: a lookup Slack did not answer (an error, a 429 past its
retries, no connection) is neither "member" nor "not a member", and is asked again
next time.

Each HTTP process reads the groups its config names when it starts and every half
TTL after (`keep_fresh`), in a thread of its own: a click, however long after the
last, finds its approvers' groups read, and is acked without a call to Slack (an
HTTP process answers a request on its loop: `handlers/wsgi.py`). It waits for Slack
only for a group Slack has not answered about for a whole TTL."""

from __future__ import annotations

import logging
import threading
import time

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.policy import MembershipUnknown
from handlers.thread import answering_429_at_once

log = logging.getLogger("rollbot.slack")

#: Slack's answer for a group that does not exist: a real answer, which grants nothing.
NO_SUCH_GROUP = "no_such_subteam"
#: The longest a lookup waits for Slack: a click that needs one must still be acked
#: within Slack's 3 s, and it holds up the requests behind it (`handlers/wsgi.py`).
#: A 429 is not waited out either: the group is "unknown" and read again later.
LOOKUP_TIMEOUT_SECONDS = 2


class SlackGroups:
    def __init__(self, client: WebClient, ttl: float = 300) -> None:
        self.client = answering_429_at_once(client, timeout=LOOKUP_TIMEOUT_SECONDS)
        self.ttl = ttl
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def members(self, group: str) -> frozenset[str]:
        """The group's members; MembershipUnknown when Slack could not say."""
        with self._lock:
            cached = self._members.get(group)
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        return self._read(group)

    def _read(self, group: str) -> frozenset[str]:
        """The group's members as Slack says them now, cached."""
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

    def keep_fresh(
        self, groups: frozenset[str], stop: threading.Event | None = None
    ) -> threading.Thread | None:
        """Read `groups` now and every half TTL after, in a daemon thread (until `stop`
        is set); the thread, or None when there is no group to read."""
        if not groups:
            return None
        stopped = stop or threading.Event()

        def refresh() -> None:
            while True:
                for group in sorted(groups):
                    try:
                        self._read(group)
                    except MembershipUnknown:
                        pass  # logged; read again at the next round, or by a click
                    except Exception:  # an answer of a shape Slack never gave: a bug
                        log.exception("could not read user group %s", group)
                if stopped.wait(self.ttl / 2):
                    return

        thread = threading.Thread(target=refresh, name="slack-groups", daemon=True)
        thread.start()
        return thread

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
