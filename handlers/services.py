"""What the listeners need, handed to them by the app factory (no globals)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bot.config import RollbotConfig
from bot.history import Targets
from bot.policy import GroupsOf, no_groups
from bot.store import JobQueue, RollbackStore

#: (namespace, service) → what that service may be rolled back to: the domain reads
#: the cluster (`bot.history.rollback_targets`); the form only shows it.
TargetSource = Callable[[str, str], Targets]


@dataclass(frozen=True)
class Services:
    config: RollbotConfig
    store: RollbackStore
    queue: JobQueue
    #: Resolves the Slack user groups named in the policy.
    groups_of: GroupsOf = field(default=no_groups)
    #: The form's target list (None: not offered; rollbot picks when it assesses).
    targets: TargetSource | None = None
