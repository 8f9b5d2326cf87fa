"""Who may ask for a rollback and who may approve one, per environment. Checked
when the command arrives and again on every click: a message can outlive a
change of policy."""

from __future__ import annotations

from collections.abc import Callable

from bot.config import RollbotConfig
from bot.errors import PermanentError
from bot.records import RollbackRecord


class NotAllowed(PermanentError):
    code = "not_allowed"


#: Which of the given Slack user groups (S…) a user belongs to.
GroupsOf = Callable[[str, frozenset[str]], frozenset[str]]


def no_groups(user: str, groups: frozenset[str]) -> frozenset[str]:
    return frozenset()


def is_listed(user: str, listed: list[str], groups_of: GroupsOf) -> bool:
    """A user is listed by ID, or through a user group (an ID starting with S)."""
    if user in listed:
        return True
    groups = frozenset(entry for entry in listed if entry.startswith("S"))
    return bool(groups) and bool(groups_of(user, groups))


def _where(config: RollbotConfig, namespace: str) -> str:
    environment = config.environment_of(namespace)
    return f" in {environment}" if environment else ""


def check_may_request(
    config: RollbotConfig,
    namespace: str,
    user: str,
    emergency: bool = False,
    groups_of: GroupsOf = no_groups,
) -> None:
    policy = config.policy_for(namespace)
    if policy.requesters and not is_listed(user, policy.requesters, groups_of):
        raise NotAllowed(
            f"you are not on the list of people who may request a rollback"
            f"{_where(config, namespace)}; ask someone on call, or an admin to add you "
            "to `requesters`"
        )
    if emergency:
        check_emergency_allowed(config, namespace)


def check_emergency_allowed(config: RollbotConfig, namespace: str) -> None:
    if not config.policy_for(namespace).emergency_skips_approval:
        raise NotAllowed(
            f"--emergency may not skip approval{_where(config, namespace)}; "
            "run it without --emergency and get it approved"
        )


def check_may_approve(
    config: RollbotConfig, record: RollbackRecord, user: str, groups_of: GroupsOf = no_groups
) -> None:
    policy = config.policy_for(record.namespace)
    if user == record.requested_by and not policy.allow_self_approval:
        raise NotAllowed("you requested this rollback, and policy needs someone else to approve it")
    if policy.approvers and not is_listed(user, policy.approvers, groups_of):
        raise NotAllowed(
            f"you may not approve rollbacks{_where(config, record.namespace)}; "
            "ask one of the listed approvers"
        )
    if user in record.approvals:
        raise NotAllowed("you have approved this rollback already; it needs another approver")


def approvals_needed(config: RollbotConfig, record: RollbackRecord) -> int:
    return config.policy_for(record.namespace).approvals
