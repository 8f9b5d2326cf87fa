"""Automatic rollback: a rollback opened for each opted-in Deployment whose
fresh revision failed (progress deadline, crash loop, failing checks) — once
per bad revision, whichever worker sees it first."""

from __future__ import annotations

import logging
from datetime import timedelta

from bot.autorollback import AutoRollbackWatcher
from bot.pipeline.wiring import Pipeline
from bot.records import requested
from bot.store import Job

log = logging.getLogger("rollbot.worker")


def open_automatic_rollbacks(p: Pipeline, watcher: AutoRollbackWatcher) -> list[str]:
    """The ids of the rollbacks opened."""
    opened = []
    for failure in watcher.find_failed_releases():
        key = f"{failure.namespace}/{failure.deployment}"
        if not failure.channel:
            log.warning("%s failed but has no channel for automatic rollbacks", key)
            continue
        policy = p.config.policy_for(failure.namespace)
        record = requested(
            failure.namespace,
            failure.deployment,
            "rollbot",
            reason=f"automatic: {failure.evidence}",
            channel=failure.channel,
            trigger="automatic",
            strategy=failure.strategy,
            emergency=policy.auto_execute,
            ttl=timedelta(seconds=p.config.confirmation_ttl_seconds),
        )
        # One write: refused while a rollback of it runs, or once this bad revision had
        # its automatic rollback; else the record and its job, together (no orphan).
        outcome, _ = p.store.open(
            record,
            claim=f"auto:{key}:{failure.replica_set}",
            job=Job(kind="assess", record_id=record.id),
            queue=p.queue.QUEUE,
            claim_ttl=30 * 86400,
        )
        if outcome == "created":
            opened.append(record.id)
    return opened
