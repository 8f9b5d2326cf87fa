"""Who may ask for a rollback and who may approve one, per environment. Checked
when the command arrives and again on every click: a message can outlive a
change of policy."""

from __future__ import annotations

from bot.config import RollbotConfig
from bot.errors import PermanentError
from bot.records import RollbackRecord


class NotAllowed(PermanentError):
    code = "not_allowed"


def _where(config: RollbotConfig, namespace: str) -> str:
    environment = config.environment_of(namespace)
    return f" in {environment}" if environment else ""


def check_may_request(
    config: RollbotConfig, namespace: str, user: str, emergency: bool = False
) -> None:
    policy = config.policy_for(namespace)
    if policy.requesters and user not in policy.requesters:
        raise NotAllowed(
            f"you are not on the list of people who may request a rollback"
            f"{_where(config, namespace)}; ask someone on call, or an admin to add you "
            "to `requesters`"
        )
    if emergency and not policy.emergency_skips_approval:
        raise NotAllowed(
            f"--emergency may not skip approval{_where(config, namespace)}; "
            "run it without --emergency and get it approved"
        )


def check_may_approve(config: RollbotConfig, record: RollbackRecord, user: str) -> None:
    policy = config.policy_for(record.namespace)
    if user == record.requested_by and not policy.allow_self_approval:
        raise NotAllowed("you requested this rollback, and policy needs someone else to approve it")
    if policy.approvers and user not in policy.approvers:
        raise NotAllowed(
            f"you may not approve rollbacks{_where(config, record.namespace)}; "
            "ask one of the listed approvers"
        )
    if user in record.approvals:
        raise NotAllowed("you have approved this rollback already; it needs another approver")


def approvals_needed(config: RollbotConfig, record: RollbackRecord) -> int:
    return config.policy_for(record.namespace).approvals
