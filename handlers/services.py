"""What the listeners need, handed to them by the app factory (no globals)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.config import RollbotConfig
from bot.policy import GroupsOf, no_groups
from bot.store import JobQueue, RollbackStore


@dataclass(frozen=True)
class Services:
    config: RollbotConfig
    store: RollbackStore
    queue: JobQueue
    #: Resolves the Slack user groups named in the policy.
    groups_of: GroupsOf = field(default=no_groups)
