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
        if p.store.lock_holder(key) is not None:
            continue  # a rollback of it is under way already
        if not p.store.claim_once(f"auto:{key}:{failure.replica_set}", ttl=30 * 86400):
            continue  # this bad revision had its automatic rollback
        policy = p.config.policy_for(failure.namespace)
        record = p.store.create(
            requested(
                failure.namespace,
                failure.deployment,
                "rollbot",
                reason=f"automatic: {failure.evidence}",
                channel=failure.channel,
                trigger="automatic",
                emergency=policy.auto_execute,
                ttl=timedelta(seconds=p.config.confirmation_ttl_seconds),
            )
        )
        p.queue.enqueue(Job(kind="assess", record_id=record.id))
        opened.append(record.id)
    return opened
