"""Who may do what with rollbacks, per environment. Checked when a command
arrives and again on every click: a message can outlive a change of policy.

- request: the `requesters` list (empty: anyone), with a reason where
  `reason_required`;
- approve: the `approvers` list (empty: anyone), never one's own rollback unless
  `allow_self_approval`, and each approver counted once; a rollback across an
  incompatible migration also needs one of the service's `migrations.approvers`
  (the DBAs), a person other than the usual approvers, and `--emergency` skips
  that only where the environment says `emergency_skips_schema_approval`;
- cancel: the requester, and whoever may approve that rollback;
- see (status) and read history: whoever may request in that namespace.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.config import RollbotConfig
from bot.errors import PermanentError, TemporaryError
from bot.records import RollbackRecord, RollbackState

S = RollbackState


class NotAllowed(PermanentError):
    code = "not_allowed"


class ReasonRequired(NotAllowed):
    code = "reason_required"


class MembershipUnknown(TemporaryError):
    """A user group could not be read (Slack down or rate-limiting): neither yes nor no."""

    code = "membership_unknown"

    def __init__(self) -> None:
        super().__init__("could not check your group membership in Slack; try again in a minute")


#: Which of the given Slack user groups (S…) a user belongs to; raises
#: MembershipUnknown when it cannot tell.
GroupsOf = Callable[[str, frozenset[str]], frozenset[str]]


def no_groups(user: str, groups: frozenset[str]) -> frozenset[str]:
    return frozenset()


def is_listed(user: str, listed: list[str], groups_of: GroupsOf) -> bool:
    """A user is listed by ID, or through a user group (an ID starting with S)."""
    if user in listed:
        return True
    groups = frozenset(entry for entry in listed if entry.startswith("S"))
    return bool(groups) and bool(groups_of(user, groups))


def named_groups(config: RollbotConfig) -> frozenset[str]:
    """Every user group the config names: in requesters and approvers (its own and its
    environments') and in the services' migration approvers."""
    lists = [config.requesters, config.approvers]
    for environment in config.environments.values():
        lists += [environment.requesters, environment.approvers]
    for entry in config.services.values():
        if entry.migrations is not None:
            lists.append(list(entry.migrations.approvers))
    return frozenset(name for listed in lists for name in listed if name.startswith("S"))


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
    if not may_request(config, namespace, user, groups_of):
        raise NotAllowed(
            f"you are not on the list of people who may request a rollback"
            f"{_where(config, namespace)}; ask someone on call, or an admin to add you "
            "to `requesters`"
        )
    if emergency:
        check_emergency_allowed(config, namespace)


def check_reason_given(
    config: RollbotConfig, namespace: str, reason: str, dry_run: bool = False
) -> None:
    """Where policy says so, a rollback says why (a dry run changes nothing: it need not)."""
    if config.policy_for(namespace).reason_required and not reason.strip() and not dry_run:
        raise ReasonRequired(
            f'a rollback{_where(config, namespace)} must say why: give a reason (--reason "why")'
        )


def protected_where(config: RollbotConfig, namespace: str) -> str | None:
    """Where an approval asks "are you sure?" first: the environment's name (else the
    namespace) when its policy is `protected`; None where one tap approves."""
    if not config.policy_for(namespace).protected:
        return None
    return config.environment_of(namespace) or namespace


def check_emergency_allowed(config: RollbotConfig, namespace: str) -> None:
    if not config.policy_for(namespace).emergency_skips_approval:
        raise NotAllowed(
            f"--emergency may not skip approval{_where(config, namespace)}; "
            "run it without --emergency and get it approved"
        )


def may_request(
    config: RollbotConfig, namespace: str, user: str, groups_of: GroupsOf = no_groups
) -> bool:
    policy = config.policy_for(namespace)
    return not policy.requesters or is_listed(user, policy.requesters, groups_of)


def check_approver(
    config: RollbotConfig, record: RollbackRecord, user: str, groups_of: GroupsOf = no_groups
) -> None:
    """Whether `user` is someone who may approve `record` at all (checked at the click,
    before anything is written): a usual approver, or a DBA while a rollback across
    an incompatible migration waits for one."""
    policy = config.policy_for(record.namespace)
    if user == record.requested_by and not policy.allow_self_approval:
        raise NotAllowed("you requested this rollback, and policy needs someone else to approve it")
    if dba_missing(record) and is_listed(user, schema_approvers(config, record), groups_of):
        return
    if policy.approvers and not is_listed(user, policy.approvers, groups_of):
        raise NotAllowed(
            f"you may not approve rollbacks{_where(config, record.namespace)}; "
            "ask one of the listed approvers"
        )


def check_may_approve(
    config: RollbotConfig, record: RollbackRecord, user: str, groups_of: GroupsOf = no_groups
) -> None:
    """The whole rule, for the transaction that counts the approval."""
    check_approver(config, record, user, groups_of)
    if user in record.approvals or user == record.schema_approved_by:
        raise NotAllowed("you have approved this rollback already; it needs another approver")


def approvals_needed(config: RollbotConfig, record: RollbackRecord) -> int:
    """The usual approvals a rollback needs: none for an emergency the policy lets skip
    them (one waiting only for a DBA)."""
    policy = config.policy_for(record.namespace)
    if record.emergency and policy.emergency_skips_approval:
        return 0
    return policy.approvals


# -- the DBAs' approval of a rollback across an incompatible migration --------------------


def needs_schema_approval(record: RollbackRecord) -> bool:
    return record.migration is not None and record.migration.gated


def dba_missing(record: RollbackRecord) -> bool:
    return needs_schema_approval(record) and record.schema_approved_by is None


def schema_approvers(config: RollbotConfig, record: RollbackRecord) -> list[str]:
    """The service's `migrations.approvers` now (the policy may have changed since the
    confirmation), else those the assessment pinned."""
    entry = config.services.get(record.workload) or config.service_for(
        record.namespace, record.workload
    )
    if entry is not None and entry.migrations is not None and entry.migrations.approvers:
        return list(entry.migrations.approvers)
    return list(record.migration.approvers) if record.migration else []


def emergency_waits_for_dbas(config: RollbotConfig, record: RollbackRecord) -> bool:
    """An `--emergency` across an incompatible migration still waits for a DBA unless
    its environment says `emergency_skips_schema_approval`."""
    policy = config.policy_for(record.namespace)
    return needs_schema_approval(record) and not policy.emergency_skips_schema_approval


def count_approval(
    config: RollbotConfig, record: RollbackRecord, user: str, groups_of: GroupsOf = no_groups
) -> RollbackRecord:
    """The record with `user`'s click counted: as the DBAs' approval while one is
    missing and the clicker is a DBA, else as one of the usual approvals; approved
    when both are complete. Raises NotAllowed for a click that cannot count."""
    check_may_approve(config, record, user, groups_of)
    needed = approvals_needed(config, record)
    if dba_missing(record) and is_listed(user, schema_approvers(config, record), groups_of):
        record = record.note(f"schema change approved by {user} (DBA)", user).model_copy(
            update={"schema_approved_by": user}
        )
    elif len(record.approvals) >= needed:
        raise NotAllowed(
            "this rollback has its approvals; it waits for a DBA's approval "
            f"(one of {', '.join(schema_approvers(config, record))})"
        )
    else:
        record = record.model_copy(update={"approvals": (*record.approvals, user)})
        if len(record.approvals) < needed or dba_missing(record):
            record = record.note(f"approved by {user} ({len(record.approvals)} of {needed})", user)
    if len(record.approvals) >= needed and not dba_missing(record):
        return record.transition(S.APPROVED, f"approved by {user}", actor=user, approved_by=user)
    return record


def still_needed(config: RollbotConfig, record: RollbackRecord) -> str:
    """What a rollback waiting for approval still needs, in a sentence (plain text)."""
    needed = approvals_needed(config, record)
    missing = []
    if len(record.approvals) < needed:
        missing.append("another approver")
    if dba_missing(record):
        missing.append(f"a DBA's approval (one of {', '.join(schema_approvers(config, record))})")
    counted = f" ({len(record.approvals)} of {needed})" if needed else ""
    return (
        f"Your approval is recorded{counted}; it needs {' and '.join(missing) or 'nothing more'}."
    )


def check_may_cancel(
    config: RollbotConfig, record: RollbackRecord, user: str, groups_of: GroupsOf = no_groups
) -> None:
    """Its requester may take a request back; otherwise only someone who could have
    approved it may stop it."""
    if user == record.requested_by:
        return
    policy = config.policy_for(record.namespace)
    if policy.approvers and not is_listed(user, policy.approvers, groups_of):
        raise NotAllowed(
            f"only its requester and those who may approve rollbacks"
            f"{_where(config, record.namespace)} may cancel {record.id}"
        )


def check_may_resume(
    config: RollbotConfig, record: RollbackRecord, user: str, groups_of: GroupsOf = no_groups
) -> None:
    """Resuming GitOps reconciliation lets Git decide what runs again (perhaps the bad
    version): those who may approve rollbacks there may, and only they."""
    policy = config.policy_for(record.namespace)
    listed = is_listed(user, policy.approvers, groups_of) if policy.approvers else True
    if not listed or not may_request(config, record.namespace, user, groups_of):
        raise NotAllowed(
            f"only those who may approve rollbacks{_where(config, record.namespace)} "
            f"may resume the reconciliation {record.id} holds"
        )


def check_may_see(
    config: RollbotConfig, record: RollbackRecord, user: str, groups_of: GroupsOf = no_groups
) -> None:
    """A record's status is shown to those who may request in its namespace."""
    if not may_request(config, record.namespace, user, groups_of):
        raise NotAllowed(
            f"the status of {record.id} is shown only to people who may request a rollback"
            f" in namespace {record.namespace}{_where(config, record.namespace)}"
        )


def check_may_read_history(
    config: RollbotConfig, namespace: str, user: str, groups_of: GroupsOf = no_groups
) -> None:
    config.check_namespace_allowed(namespace)
    if not may_request(config, namespace, user, groups_of):
        raise NotAllowed(
            f"the history of namespace {namespace} is shown only to people who may request"
            f" a rollback there{_where(config, namespace)}"
        )
