"""Drills in the pipeline: opening one (on demand or on its schedule), and its
forward step once the drill's rollback has succeeded (see bot/drills.py)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.drills import drill_request, forward_request
from bot.pipeline.wiring import Pipeline
from bot.records import RollbackRecord, RollbackState
from bot.store import Job

log = logging.getLogger("rollbot.drills")
S = RollbackState


def open_drill(p: Pipeline, record: RollbackRecord, claim: str) -> tuple[str, str]:
    """The drill's record and its first job in one write, as any request:
    ("created", id), ("held", holder) or ("duplicate", "")."""
    return p.store.open(
        record,
        claim=claim,
        job=Job(kind="assess", record_id=record.id),
        queue=p.queue.QUEUE,
        claim_ttl=30 * 86400,
    )


def run_scheduled_drill(p: Pipeline, service: str, fired: datetime) -> str | None:
    """The drill its schedule fired, once across every worker; the record's id
    (None: another worker opened it, or a rollback holds the service)."""
    record = drill_request(p.config, service, "rollbot", scheduled=True)
    outcome, detail = open_drill(p, record, f"drill:{service}:{fired:%Y%m%dT%H%M}")
    if outcome == "held":
        log.warning("scheduled drill of %s skipped: rollback %s holds it", service, detail)
    return record.id if outcome == "created" else None


def on_drill_forward(p: Pipeline, job: Job) -> None:
    """The drill succeeded: back to where it started, approved with it (once: the
    claim is the drill's id, so a job run twice opens one forward step)."""
    drill = p.store.get(job.record_id)
    if drill.state is not S.SUCCEEDED:
        return
    forward = forward_request(drill, timedelta(seconds=p.config.confirmation_ttl_seconds))
    outcome, detail = open_drill(p, forward, f"drill-forward:{drill.id}")
    if outcome == "held":
        # A rollback of the service came in meanwhile: it decides; say so.
        p.store.update(
            drill.id, lambda r: r.note(f"forward step not run: rollback {detail} holds it")
        )
