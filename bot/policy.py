"""Who may ask for a rollback and who may approve one. Checked when the command
arrives and again on every click: a message can outlive a change of policy."""

from __future__ import annotations

from bot.config import RollbotConfig
from bot.errors import PermanentError
from bot.records import RollbackRecord


class NotAllowed(PermanentError):
    code = "not_allowed"


def check_may_request(config: RollbotConfig, user: str) -> None:
    if config.requesters and user not in config.requesters:
        raise NotAllowed(
            "you are not on the list of people who may request a rollback; "
            "ask someone on call, or an admin to add you to `requesters`"
        )


def check_may_approve(config: RollbotConfig, record: RollbackRecord, user: str) -> None:
    if user == record.requested_by and not config.allow_self_approval:
        raise NotAllowed("you requested this rollback, and policy needs someone else to approve it")
    if config.approvers and user not in config.approvers:
        raise NotAllowed("you may not approve rollbacks; ask one of the listed approvers")
