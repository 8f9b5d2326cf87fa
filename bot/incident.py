"""What a report says: the `ReportContext` the templates read, field by field, and
how a rollback record becomes one (`report_context`).

People are data in a record (user ids); here they become the names the caller
knows (`names`: id → name), else their id, never a chat mention. Text people
and pods wrote (the reason, timeline messages) is redacted again on the way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal, NotRequired, TypedDict, cast

from bot.migrations import Order
from bot.records import RollbackRecord, RollbackState
from bot.redaction import redact
from bot.schema_jobs import job_name

#: No names known: every person is shown by id.
NO_NAMES: Mapping[str, str] = MappingProxyType({})
#: A Slack mention, `<@U123>` or `<@U123|alice>`, as older records' messages hold them.
_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")

Trigger = Literal["manual", "cli", "automatic", "follow-up", "drill", "drill-forward"]
Outcome = Literal[
    "succeeded", "failed", "cancelled", "expired", "rolled back but unhealthy", "in progress"
]


class TimelineEntry(TypedDict):
    """One step of the rollback record's history."""

    at: str  # ISO-8601; a time without a zone is taken as UTC
    state: str  # "requested", "approved", "rolling back", "succeeded", ...
    message: str  # plain text, people by name
    #: Who did it, by name (else their id); None or absent when nobody in particular.
    actor: NotRequired[str | None]


class PodCounts(TypedDict):
    """The workloads' pods at one moment."""

    ready: int
    total: int
    restarts: int


class HealthCheck(TypedDict):
    """One health check's verdict (an HTTP probe, a smoke test, a pod readiness check)."""

    name: str
    ok: bool
    detail: NotRequired[str | None]  # what it saw: "HTTP 503", "3/3 ready"


class SchemaJob(TypedDict):
    """One Job of a schema step (backup, downgrade, check)."""

    #: The Job's name in the rollback's namespace, e.g. "rollbot-rb-1a2b3c4d-backup".
    job: str
    #: "not run": not reached (an earlier step failed), or the catalog has no such Job.
    outcome: Literal["succeeded", "failed", "not run"]


class DatabaseFacts(TypedDict):
    """A rollback across a database migration, and what rollbot did to the schema.
    Every key is present; a fact not known is None."""

    #: The schema version of the revision rolled back from (e.g. "0042_add_memory_store")
    #: and the one the target expects ("0041"); None when it could not be read.
    from_schema: str | None
    to_schema: str | None
    #: Where the versions were read, in words: "env var SCHEMA_VERSION".
    source: str
    #: Whether the catalog declares the older code runs on the newer schema (then the
    #: schema is left as it is and no DBA approves).
    compatible: bool
    #: The DBA who approved, by name (else their id); None when none did.
    dba_approved_by: str | None
    #: Whether rollbot rolls the schema back before or after the app; None when it does
    #: not roll it back (compatible, or no downgrade Job in the catalog).
    order: Order | None
    #: The backup and downgrade Jobs; None when rollbot does not roll the schema back.
    backup: SchemaJob | None
    downgrade: SchemaJob | None
    #: Where the backup went (credentials in it redacted); None when none was taken.
    backup_location: str | None
    #: The database check after the rollback (its outcome "not run" if none).
    check: SchemaJob
    #: Whether the catalog has a check: a check "not run" was then not reached (the
    #: rollback stopped first); None when the record does not say.
    check_configured: bool | None
    #: When a schema Job failed, or the rollback failed after the schema was rolled
    #: back: the rollback's failure text, which says the state the app and the schema
    #: are in (and the failed Job's last log lines), redacted.
    state: str | None


class _RequiredFacts(TypedDict):
    """The facts every rollback record has."""

    #: rollbot's id of the rollback, e.g. "rb-20240117-1430-web".
    rollback_id: str
    #: What people call the thing rolled back: "Family Assistant API", "jarvis-api".
    service: str
    #: The Kubernetes namespace of the workloads.
    namespace: str
    #: The workloads rolled back, as kind/name: ["deployment/web", "deployment/worker"].
    workloads: list[str]
    #: Who asked for the rollback: a person's name (else their id), a CLI user, or "rollbot".
    requested_by: str
    #: Why, in the requester's words; may be "".
    reason: str
    #: How it was started: from Slack ("manual"), by the `rollbot` CLI ("cli"), by rollbot
    #: seeing a new revision fail ("automatic"), from a recovery button of a rollback that
    #: failed ("follow-up"), or as a rollback drill ("drill", and "drill-forward" its way back).
    trigger: Trigger
    #: Where it stands now.
    outcome: Outcome


class ReportContext(_RequiredFacts, total=False):
    """Everything a report or message says, as one plain dict.

    The eight fields above (`_RequiredFacts`) are required. Every field below may
    be left out or set to None (or an empty list): it then renders as "unknown" or "none".
    """

    #: "production", "staging"...; None when rollbot's config does not say.
    environment: str | None
    #: Who approved it, by name (else their id); None when no approval was needed or given.
    approved_by: str | None
    #: The Deployment revision rolled back from (the bad one).
    from_revision: int | None
    #: The revision rolled back to (the known-good one).
    to_revision: int | None
    #: The state rolled back from and to, in words: "revision 3", "helm revision 5",
    #: "colour green", "image tag v1.2.3" (whatever the strategy).
    from_state: str | None
    to_state: str | None
    #: How: "undo", "components", "helm", "blue-green", "restore", "flag", "scale", "divert".
    strategy: str | None
    #: Container images of the bad revision, e.g. ["ghcr.io/acme/web:v3"].
    from_images: list[str]
    #: Container images of the revision rolled back to.
    to_images: list[str]
    #: The diff as a person reads it (bot.diff.Change.describe), env values already masked.
    changes: list[str]
    #: The assessment's severity ("critical", "high", ...); None when not assessed.
    severity: str | None
    #: The assessment's recommendation, e.g. "roll back now: error rate 12%".
    recommendation: str | None
    #: The rollback record's history, oldest first. Time to restore runs from the entry
    #: whose state is "requested" (else the first entry) to the one whose state is "succeeded".
    timeline: list[TimelineEntry]
    #: ISO-8601 time the rollout started (the patch was applied).
    started_at: str | None
    #: ISO-8601 time the rollout ended, whatever the outcome.
    finished_at: str | None
    #: Pod counts just before the rollback.
    pods_before: PodCounts | None
    #: Pod counts once the rollout ended.
    pods_after: PodCounts | None
    #: Health checks run before the rollback.
    health_before: list[HealthCheck]
    #: Health checks run after the rollback.
    health_after: list[HealthCheck]
    #: Where the pre-rollback state was saved, e.g. ["deployment.yaml", "configmaps.yaml"].
    backup_files: list[str]
    #: Link to the rollback's Slack thread.
    thread_url: str | None
    #: Follow-up actions; when empty the renderer supplies the runbooks' defaults.
    next_steps: list[str]
    #: The database migration the rollback crossed and the schema steps done; None
    #: when it crossed none (or none is known).
    database: DatabaseFacts | None


_OUTCOMES: dict[RollbackState, Outcome] = {
    RollbackState.SUCCEEDED: "succeeded",
    RollbackState.FAILED: "failed",
    RollbackState.CANCELLED: "cancelled",
    RollbackState.EXPIRED: "expired",
}


def person(user: str, names: Mapping[str, str] = NO_NAMES) -> str:
    """A person as a report shows them: their name when known, else their id."""
    return names.get(user) or user


def people(record: RollbackRecord) -> set[str]:
    """The ids a report of `record` names: whose names the caller should look up."""
    ids = {record.requested_by, *record.approvals}
    ids |= {record.approved_by} if record.approved_by else set()
    ids |= {record.schema_approved_by} if record.schema_approved_by else set()
    for entry in record.timeline:
        ids |= {entry.actor} if entry.actor else set()
        ids |= set(_MENTION.findall(entry.message))
    return ids


def _plain(message: str, names: Mapping[str, str]) -> str:
    return redact(_MENTION.sub(lambda m: person(m.group(1), names), message))


def report_context(record: RollbackRecord, names: Mapping[str, str] = NO_NAMES) -> ReportContext:
    """The record as the templates read it, people by name (`names`: id → name)."""
    timeline: list[TimelineEntry] = []
    for e in record.timeline:
        message = _plain(e.message, names)
        actor = person(e.actor, names) if e.actor else None
        timeline.append(
            {
                "at": e.at.isoformat(),
                "state": e.state.value.replace("_", " "),
                "message": message,
                # Said once: a message that already names its actor does not get it twice.
                "actor": None if actor is None or actor in message else actor,
            }
        )
    context: ReportContext = {
        "rollback_id": record.id,
        "service": record.workload,
        "namespace": record.namespace,
        "environment": record.namespace,
        # An Argo Rollout is no Deployment: its strategy pins it by name.
        "workloads": [f"rollout/{record.pins['rollout']}"]
        if record.strategy == "argo-rollouts" and "rollout" in record.pins
        else [f"deployment/{name}" for name in record.deployments],
        "requested_by": person(record.requested_by, names),
        "reason": redact(record.reason),
        "trigger": cast(Trigger, record.trigger),
        "outcome": _OUTCOMES.get(record.state, "in progress"),
        "approved_by": person(record.approved_by, names) if record.approved_by else None,
        "from_revision": record.from_revision,
        "to_revision": record.target_revision,
        "from_state": record.from_text,
        "to_state": record.to_text,
        "strategy": record.strategy,
        "from_images": [i.split("=", 1)[-1] for i in record.from_images],
        "to_images": [i.split("=", 1)[-1] for i in record.to_images],
        "changes": [redact(change) for change in record.changes],
        "severity": record.severity,
        "recommendation": record.recommendation,
        "timeline": timeline,
        "started_at": record.created_at.isoformat(),
        "finished_at": record.timeline[-1].at.isoformat() if record.timeline else None,
        "backup_files": [f"{record.id}-backup.json"]
        if record.state.terminal and record.approved_by
        else [],
        "database": database_facts(record, names),
    }
    return context


def database_facts(
    record: RollbackRecord, names: Mapping[str, str] = NO_NAMES
) -> DatabaseFacts | None:
    """The record's migration crossing and schema steps as the reports say them; None
    when the rollback crossed no migration."""
    crossing = record.migration
    if crossing is None or not crossing.crossed:
        return None

    def job(step: str) -> SchemaJob:
        done = step in record.schema_steps
        failed = record.schema_failed == step
        outcome: Literal["succeeded", "failed", "not run"] = (
            "succeeded" if done else "failed" if failed else "not run"
        )
        return {"job": job_name(record.id, step), "outcome": outcome}

    touched = "downgrade" in record.schema_steps or record.schema_failed is not None
    steps = crossing.runs_downgrade
    return {
        "from_schema": crossing.current,
        "to_schema": crossing.target,
        "source": crossing.source,
        "compatible": crossing.compatible,
        "dba_approved_by": person(record.schema_approved_by, names)
        if record.schema_approved_by
        else None,
        "order": crossing.order if steps else None,
        "backup": job("backup") if steps else None,
        "downgrade": job("downgrade") if steps else None,
        "backup_location": redact(record.schema_backup) if record.schema_backup else None,
        "check": job("check"),
        "check_configured": crossing.check,
        "state": redact(record.error)
        if record.state is RollbackState.FAILED and record.error and touched
        else None,
    }
