"""User groups read from Slack: answers cached, failures never taken for "no"."""

from __future__ import annotations

import threading
import time

import pytest

from bot.policy import MembershipUnknown
from handlers.app import slack_client
from handlers.groups import LOOKUP_TIMEOUT_SECONDS, SlackGroups
from testbed.slack_api import FakeSlackApi


@pytest.fixture
def slack():
    with FakeSlackApi() as api:
        api.add_usergroup("S0LEADS", ["U0CAROL"])
        api.add_usergroup("S0ONCALL", ["U0ALICE"])
        yield api


def test_memberships_are_cached(slack):
    groups = SlackGroups(slack_client("xoxb-test", slack.base_url))
    assert groups("U0CAROL", frozenset({"S0LEADS"})) == {"S0LEADS"}
    assert groups("U0BOB", frozenset({"S0LEADS"})) == frozenset()
    assert len(slack.calls("usergroups.users.list")) == 1


def test_a_slack_error_is_not_cached_as_no_members(slack):
    groups = SlackGroups(slack_client("xoxb-test", slack.base_url))
    slack.fail_next("usergroups.users.list", status=500)
    with pytest.raises(MembershipUnknown, match="could not check your group membership"):
        groups("U0CAROL", frozenset({"S0LEADS"}))
    assert groups("U0CAROL", frozenset({"S0LEADS"})) == {"S0LEADS"}, "asked again, and yes"


def test_a_rate_limit_is_not_waited_out_nor_cached(slack):
    client = slack_client("xoxb-test", slack.base_url)
    slack.fail_next("usergroups.users.list", status=429, retry_after=30)
    groups = SlackGroups(client)
    started = time.monotonic()
    with pytest.raises(MembershipUnknown):
        groups("U0CAROL", frozenset({"S0LEADS"}))
    assert time.monotonic() - started < 2, "a click never sleeps out Retry-After"
    assert groups("U0CAROL", frozenset({"S0LEADS"})) == {"S0LEADS"}


def test_a_slow_slack_is_waited_for_at_most_the_lookups_time_out(slack):
    groups = SlackGroups(slack_client("xoxb-test", slack.base_url))
    slack.slow(LOOKUP_TIMEOUT_SECONDS + 3)
    started = time.monotonic()
    with pytest.raises(MembershipUnknown):
        groups("U0CAROL", frozenset({"S0LEADS"}))
    assert time.monotonic() - started < LOOKUP_TIMEOUT_SECONDS + 1


def test_one_unreadable_group_does_not_hide_membership_of_another(slack):
    groups = SlackGroups(slack_client("xoxb-test", slack.base_url))
    slack.fail_next("usergroups.users.list", status=500)  # S0LEADS, read first
    assert groups("U0ALICE", frozenset({"S0LEADS", "S0ONCALL"})) == {"S0ONCALL"}


def test_a_group_slack_does_not_know_grants_nothing(slack):
    groups = SlackGroups(slack_client("xoxb-test", slack.base_url))
    assert groups("U0CAROL", frozenset({"S0TYPO"})) == frozenset()


def test_groups_kept_fresh_are_read_ahead_and_again_before_they_expire(slack):
    groups = SlackGroups(slack_client("xoxb-test", slack.base_url), ttl=0.4)
    stop = threading.Event()
    thread = groups.keep_fresh(frozenset({"S0LEADS", "S0ONCALL"}), stop)
    try:
        deadline = time.monotonic() + 5
        while len(slack.calls("usergroups.users.list")) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        asked = len(slack.calls("usergroups.users.list"))
        assert asked == 2, "each group read once, ahead of any click"
        assert groups("U0CAROL", frozenset({"S0LEADS"})) == {"S0LEADS"}
        assert len(slack.calls("usergroups.users.list")) == asked, "the click asked nobody"
        slack.add_usergroup("S0LEADS", ["U0DAVE"])
        time.sleep(0.6)  # past the TTL: read again meanwhile, by the thread
        assert groups("U0DAVE", frozenset({"S0LEADS"})) == {"S0LEADS"}
        assert len(slack.calls("usergroups.users.list")) >= asked + 2
    finally:
        stop.set()
        assert thread is not None
        thread.join(5)
    assert not thread.is_alive()


def test_no_group_named_means_no_thread(slack):
    groups = SlackGroups(slack_client("xoxb-test", slack.base_url))
    assert groups.keep_fresh(frozenset()) is None
