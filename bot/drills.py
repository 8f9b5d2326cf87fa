"""Rollback drills, the runbooks' monthly rehearsal: the service rolled back one
revision and forward again, in an environment marked for drills only, through
the whole flow (assessment, approval unless the drill says none, backup,
progress, verification), posted to the drill's channel, and a drill report.

A drill is a record with trigger "drill"; when it has succeeded, its forward
step is a second record (trigger "drill-forward", `drill_of` the drill) that
goes back to the revision the drill started from, approved with the drill.
The drill report comes with the forward step's end (or the drill's failure).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.config import RollbotConfig
from bot.durations import format_duration
from bot.errors import InvalidInput
from bot.policy import NotAllowed
from bot.records import RollbackRecord, RollbackState, requested

S = RollbackState
#: What makes a drill's forward step slow enough to say so in the report.
SLOW_RESTORE_SECONDS = 300.0
SLOW_APPROVAL_SECONDS = 600.0


def drill_target(config: RollbotConfig, service: str) -> tuple[str, str, str]:
    """(namespace, Deployment, channel) of `service`'s drill; refused when it has
    none or its namespace is not in an environment marked for drills."""
    entry = config.services.get(service)
    if entry is None or entry.drill is None:
        raise InvalidInput(
            f"{service!r} has no drill: give its catalog entry a drill: section "
            "(namespace, channel, schedule)"
        )
    namespace = entry.drill.namespace or entry.namespace or config.default_namespace
    environment = config.environment_of(namespace)
    if environment is None or not config.environments[environment].drills:
        raise NotAllowed(
            f"namespace {namespace} is not in an environment marked for drills: "
            "drills never run anywhere else"
        )
    return namespace, entry.deployment or service, entry.drill.channel


def drill_request(
    config: RollbotConfig, service: str, user: str, *, scheduled: bool = False
) -> RollbackRecord:
    """The drill's record: back one revision, in the drill's namespace and channel."""
    namespace, deployment, channel = drill_target(config, service)
    entry = config.services[service]
    assert entry.drill is not None  # drill_target checked it
    return requested(
        namespace,
        deployment,
        user,
        reason="scheduled rollback drill" if scheduled else "rollback drill",
        channel=channel,
        trigger="drill",
        emergency=not entry.drill.approval,
        ttl=timedelta(seconds=config.confirmation_ttl_seconds),
    )


def forward_request(drill: RollbackRecord, ttl: timedelta) -> RollbackRecord:
    """The drill's way back: to the revision it started from, approved with it."""
    if drill.from_revision is None:
        raise InvalidInput(f"drill {drill.id} does not say which revision it started from")
    forward = requested(
        drill.namespace,
        drill.workload,
        drill.approved_by or drill.requested_by,
        reason=f"drill {drill.id}: forward again to revision {drill.from_revision}",
        revision=drill.from_revision,
        channel=drill.channel,
        trigger="drill-forward",
        emergency=True,
        ttl=ttl,
    )
    return forward.model_copy(update={"drill_of": drill.id})


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else (end - start).total_seconds()


def _entered(record: RollbackRecord, state: RollbackState) -> datetime | None:
    return next((e.at for e in record.timeline if e.state is state), None)


def drill_report(drill: RollbackRecord, forward: RollbackRecord | None) -> str:
    """The drill report (Markdown, plain text only): the times, what failed, what
    to improve."""
    back = _seconds(drill.created_at, _entered(drill, S.SUCCEEDED))
    approval = _seconds(_entered(drill, S.AWAITING_APPROVAL), _entered(drill, S.APPROVED))
    ahead = None
    if forward is not None:
        ahead = _seconds(forward.created_at, _entered(forward, S.SUCCEEDED))
    passed = drill.state is S.SUCCEEDED and forward is not None and forward.state is S.SUCCEEDED
    lines = [
        f"# Rollback drill {drill.id}: {'passed' if passed else 'FAILED'}",
        "",
        f"- Service: {drill.namespace}/{drill.workload}",
        f"- Rolled back: {drill.from_text} → {drill.to_text} ({drill.state.value})",
        f"- Time to restore (request → verified healthy): {_shown(back)}",
        f"- Approval wait: {_shown(approval)}",
    ]
    if forward is not None:
        lines.append(
            f"- Forward again: {forward.from_text} → {forward.to_text} ({forward.state.value}), "
            f"in {_shown(ahead)}"
        )
    else:
        lines.append("- Forward again: not run (the drill did not succeed)")
    failed = [r for r in (drill, forward) if r is not None and r.state is S.FAILED]
    lines += ["", "## What failed", ""]
    lines += [f"- {r.id}: {r.error or 'failed'}" for r in failed] or ["- Nothing."]
    lines += ["", "## What to improve", ""]
    lines += _improvements(drill, forward, back, approval) or [
        "- Nothing stood out: keep the drill on its schedule."
    ]
    return "\n".join(lines) + "\n"


def _shown(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)


def _improvements(
    drill: RollbackRecord,
    forward: RollbackRecord | None,
    back: float | None,
    approval: float | None,
) -> list[str]:
    found = []
    if drill.state is S.FAILED or (forward is not None and forward.state is S.FAILED):
        found.append(
            "- The drill did not complete: fix what failed before a real incident needs it, "
            "and run the drill again."
        )
    if back is not None and back > SLOW_RESTORE_SECONDS:
        found.append(
            f"- Restoring took {format_duration(back)}: look at image pulls, readiness "
            "probes and minReadySeconds, which set the pace of a rollout."
        )
    if approval is not None and approval > SLOW_APPROVAL_SECONDS:
        found.append(
            f"- The approval took {format_duration(approval)}: make sure approvers are "
            "reachable (a user group, an on-call rotation)."
        )
    warnings = [e.message for e in drill.timeline if "unhealthy" in e.message.lower()]
    if warnings:
        found.append(f"- Health warnings during the drill: {warnings[0]}")
    return found
