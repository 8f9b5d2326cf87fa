"""What the listeners need, handed to them by the app factory (no globals)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.config import RollbotConfig
from bot.store import JobQueue, RollbackStore


@dataclass(frozen=True)
class Services:
    config: RollbotConfig
    store: RollbackStore
    queue: JobQueue
