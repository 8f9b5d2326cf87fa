"""What every stage works with: the store, the queue, the cluster, the config
and the person watching; plus the few moves several stages make (refuse a
request, take and release its locks)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from bot.assessment import AssessmentSource
from bot.autorollback import WatchSource
from bot.backup import BackupSource
from bot.config import RollbotConfig, ServiceEntry
from bot.gitops.planning import GitOpsKube
from bot.progress import ProgressSink
from bot.records import RollbackRecord, RollbackState
from bot.schema_jobs import JobKube
from bot.store import JobQueue, RollbackStore
from bot.strategies import Context, HelmSettings, StrategyKube

S = RollbackState


class WorkerKube(
    StrategyKube, AssessmentSource, BackupSource, WatchSource, GitOpsKube, JobKube, Protocol
):
    """Everything the worker reads and writes in the cluster."""


@dataclass
class Pipeline:
    store: RollbackStore
    queue: JobQueue
    kube: WorkerKube
    config: RollbotConfig
    sink: ProgressSink
    helm: HelmSettings = field(default_factory=HelmSettings)
    #: People's names by user id, for reports (best effort: an id stays an id).
    names_of: Callable[[set[str]], Mapping[str, str]] = lambda _ids: {}

    def strategy_context(self) -> Context:
        return Context(
            kube=self.kube,
            config=self.config,
            timeout=self.config.rollout_timeout_seconds,
            helm=self.helm,
            backups=self.store.get_backup,
        )

    def entry(self, record: RollbackRecord) -> ServiceEntry | None:
        """The record's catalog entry: by service name, else by its Deployment."""
        return self.config.services.get(record.workload) or self.config.service_for(
            record.namespace, record.workload
        )

    def lock(self, record: RollbackRecord) -> str | None:
        """Take every lock the record needs; None, or why not (all released again)."""
        taken: list[str] = []
        for key in record.lock_keys:
            holder = self.store.lock_workload(key, record.id)
            if holder is not None:
                for done in taken:
                    self.store.unlock_workload(done, record.id)
                return f"rollback {holder} of {key} is in progress"
            taken.append(key)
        return None

    def unlock(self, record: RollbackRecord) -> None:
        for key in record.lock_keys:
            self.store.unlock_workload(key, record.id)

    def refuse(self, record: RollbackRecord, problem: str) -> None:
        """The request cannot go on (nothing changed): ended, and its requester told."""
        failed = self.store.update(
            record.id, lambda r: r.transition(S.FAILED, problem, error=problem)
        )
        self.sink.refused(failed, problem)
