"""A finished rollback's record turned into the report context the templates read."""

from __future__ import annotations

from typing import cast

from bot.records import RollbackRecord, RollbackState
from bot.reports import Outcome, ReportContext, TimelineEntry, Trigger

_OUTCOMES: dict[RollbackState, str] = {
    RollbackState.SUCCEEDED: "succeeded",
    RollbackState.FAILED: "failed",
    RollbackState.CANCELLED: "cancelled",
    RollbackState.EXPIRED: "expired",
}


def report_context(record: RollbackRecord, *, thread_url: str | None = None) -> ReportContext:
    timeline: list[TimelineEntry] = [
        {"at": e.at.isoformat(), "state": e.state.value, "message": e.message}
        for e in record.timeline
    ]
    recommendation = next(
        (
            line.split(" — ", 1)[1]
            for line in record.assessment
            if line.startswith("Severity:") and " — " in line
        ),
        None,
    )
    context: ReportContext = {
        "rollback_id": record.id,
        "service": record.workload,
        "namespace": record.namespace,
        "environment": record.namespace,
        "workloads": [f"deployment/{name}" for name in record.deployments],
        "requested_by": record.requested_by,
        "reason": record.reason,
        "trigger": cast(Trigger, record.trigger),
        "outcome": cast(Outcome, _OUTCOMES.get(record.state, "in progress")),
        "approved_by": record.approved_by,
        "from_revision": record.from_revision,
        "to_revision": record.target_revision,
        "from_state": record.from_text,
        "to_state": record.to_text,
        "strategy": record.strategy,
        "from_images": [i.split("=", 1)[-1] for i in record.from_images],
        "to_images": [i.split("=", 1)[-1] for i in record.to_images],
        "changes": list(record.changes),
        "severity": record.severity,
        "recommendation": recommendation,
        "timeline": timeline,
        "started_at": record.created_at.isoformat(),
        "finished_at": record.timeline[-1].at.isoformat() if record.timeline else None,
        "backup_files": [f"{record.id}-backup.json"]
        if record.state.terminal and record.approved_by
        else [],
        "thread_url": thread_url,
    }
    return context
