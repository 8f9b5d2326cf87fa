"""A rollback as a record: a state machine with an append-only timeline.

Every transition is written to the store before anything acts on it, so the
record always says where a rollback is; the timeline is what the incident
report's "Timeline" and the time-to-restore figures are computed from.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from bot.errors import PermanentError
from bot.gitops.holds import ReconciliationHold
from bot.migrations import SchemaCrossing
from bot.redaction import redact


class RollbackState(StrEnum):
    REQUESTED = "requested"
    ASSESSED = "assessed"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    BACKING_UP = "backing_up"
    ROLLING_BACK = "rolling_back"
    VERIFYING = "verifying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def executing(self) -> bool:
        """States in which a worker is (or was, if it died) changing the cluster."""
        return self in (
            RollbackState.APPROVED,
            RollbackState.BACKING_UP,
            RollbackState.ROLLING_BACK,
            RollbackState.VERIFYING,
        )


S = RollbackState
TERMINAL = frozenset({S.SUCCEEDED, S.FAILED, S.CANCELLED, S.EXPIRED})
TRANSITIONS: dict[RollbackState, frozenset[RollbackState]] = {
    S.REQUESTED: frozenset({S.ASSESSED, S.FAILED, S.CANCELLED}),
    S.ASSESSED: frozenset({S.AWAITING_APPROVAL, S.FAILED, S.CANCELLED}),
    S.AWAITING_APPROVAL: frozenset({S.APPROVED, S.CANCELLED, S.EXPIRED, S.FAILED}),
    S.APPROVED: frozenset({S.BACKING_UP, S.FAILED}),
    S.BACKING_UP: frozenset({S.ROLLING_BACK, S.FAILED}),
    S.ROLLING_BACK: frozenset({S.VERIFYING, S.FAILED}),
    S.VERIFYING: frozenset({S.SUCCEEDED, S.FAILED}),
}


DRILL_TRIGGERS = frozenset({"drill", "drill-forward"})


class InvalidTransition(PermanentError):
    code = "invalid_transition"

    def __init__(self, record_id: str, current: RollbackState, wanted: RollbackState) -> None:
        self.current = current
        super().__init__(
            f"rollback {record_id} is {current.value.replace('_', ' ')}; "
            f"it cannot become {wanted.value.replace('_', ' ')}"
        )


def now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    """Short enough to type in `/rollback status ID`, random enough not to collide."""
    return "rb-" + secrets.token_hex(4)


class TimelineEntry(BaseModel):
    """A step: plain text (no chat markup), and who did it as a user id in `actor`."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    state: RollbackState
    message: str
    actor: str | None = None


class RollbackRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=new_id)
    namespace: str
    workload: str
    requested_by: str
    reason: str = ""
    requested_revision: int = 0  # 0: the previous one
    to_tag: str | None = None  # an image-tag rollback (rollback.sh v1.2.3)
    #: How: "undo" (one Deployment) or a strategy of `bot.strategies` (helm, blue-green…).
    strategy: str = "undo"
    #: The strategy's own arguments (a flag to set, a backup to restore…).
    options: dict[str, str] = Field(default_factory=dict)
    dry_run: bool = False
    channel: str = ""
    thread_ts: str | None = None
    state: RollbackState = RollbackState.REQUESTED
    timeline: tuple[TimelineEntry, ...] = ()
    created_at: datetime = Field(default_factory=now)
    expires_at: datetime | None = None
    # Filled in by the assessment: the plan a person approves.
    from_revision: int | None = None
    target_revision: int | None = None
    target_replica_set: str | None = None
    from_images: tuple[str, ...] = ()
    to_images: tuple[str, ...] = ()
    changes: tuple[str, ...] = ()
    #: For strategies: what execution must do exactly (pinned at assessment), the
    #: Deployments touched, the current and target states in words, extra facts.
    pins: dict[str, str] = Field(default_factory=dict)
    workloads: tuple[str, ...] = ()
    current_label: str | None = None
    target_label: str | None = None
    facts: tuple[str, ...] = ()
    verify_checks: bool = True
    #: The assessment shown with the confirmation: its facts as plain lines (records
    #: written before `recommendation` existed have a "Severity: …" headline first).
    assessment: tuple[str, ...] = ()
    severity: str | None = None
    #: What the assessment recommends, e.g. "no pod is ready: roll back now".
    recommendation: str | None = None
    #: When the revision rolled back from started rolling out (its ReplicaSet was
    #: made): the start of the time to detection.
    bad_since: datetime | None = None
    #: GitOps owners whose reconciliation this rollback holds (planned at assessment,
    #: held before the rollback is applied, resumed only by a person).
    holds: tuple[ReconciliationHold, ...] = ()
    approvals: tuple[str, ...] = ()  # who approved so far, when several must
    #: The database migration the rollback crosses, as assessed (None: none known).
    migration: SchemaCrossing | None = None
    #: The DBA who approved a rollback across an incompatible migration.
    schema_approved_by: str | None = None
    #: The schema steps done so far ("backup", "downgrade", "check"), so a worker
    #: that takes over does not do one twice; and where the backup went (or, when
    #: the backup failed, where it was to go).
    schema_steps: tuple[str, ...] = ()
    schema_backup: str | None = None
    #: The schema step whose Job failed or could not be run (it stopped the rollback),
    #: for the reports: a step neither done nor failed was never reached.
    schema_failed: str | None = None
    emergency: bool = False
    #: "manual" (Slack), "cli", "automatic" (rollbot saw the new revision fail),
    #: "follow-up" (a recovery button of a rollback that failed), "drill" (a
    #: rollback drill) or "drill-forward" (the drill's way back).
    trigger: str = "manual"
    #: For a drill's forward step: the drill it completes.
    drill_of: str | None = None
    approved_by: str | None = None
    error: str | None = None
    #: Bumped on every write; the store refuses a write based on a stale copy.
    version: int = 0

    @property
    def drill(self) -> bool:
        """A rollback drill, or its forward step: marked as such, counted apart."""
        return self.trigger in DRILL_TRIGGERS

    @property
    def holding(self) -> tuple[ReconciliationHold, ...]:
        """The holds in place now (held and not resumed)."""
        return tuple(h for h in self.holds if h.held)

    @property
    def workload_key(self) -> str:
        return f"{self.namespace}/{self.workload}"

    @property
    def lock_keys(self) -> tuple[str, ...]:
        """What a running rollback holds: the service, and each Deployment it touches
        (so an undo of one component waits for the rollback of its whole service)."""
        keys = [self.workload_key]
        keys += [f"{self.namespace}/{d}" for d in self.workloads if d != self.workload]
        return tuple(keys)

    @property
    def deployments(self) -> tuple[str, ...]:
        """The Deployments this rollback touches (backed up before, verified after)."""
        return self.workloads or (self.workload,)

    @property
    def from_text(self) -> str:
        return self.current_label or f"revision {self.from_revision}"

    @property
    def to_text(self) -> str:
        if self.target_label:
            return self.target_label
        if self.to_tag and not self.target_revision:
            return f"image tag {self.to_tag}"
        return f"revision {self.target_revision}"

    def transition(
        self, state: RollbackState, message: str, actor: str | None = None, **changes: object
    ) -> RollbackRecord:
        """A copy in `state` with the step on its timeline; refuses impossible steps."""
        if state not in TRANSITIONS.get(self.state, frozenset()):
            raise InvalidTransition(self.id, self.state, state)
        entry = TimelineEntry(at=now(), state=state, message=message, actor=actor)
        return self.model_copy(
            update={"state": state, "timeline": (*self.timeline, entry), **changes}
        )

    def note(self, message: str, actor: str | None = None) -> RollbackRecord:
        """A timeline entry that changes no state (a refusal, a retry, a progress mark)."""
        entry = TimelineEntry(at=now(), state=self.state, message=message, actor=actor)
        return self.model_copy(update={"timeline": (*self.timeline, entry)})

    def expired(self, at: datetime | None = None) -> bool:
        return self.expires_at is not None and (at or now()) >= self.expires_at


def requested(
    namespace: str,
    workload: str,
    requested_by: str,
    *,
    reason: str = "",
    revision: int = 0,
    channel: str = "",
    dry_run: bool = False,
    emergency: bool = False,
    trigger: str = "manual",
    to_tag: str | None = None,
    strategy: str = "undo",
    options: dict[str, str] | None = None,
    ttl: timedelta = timedelta(minutes=15),
) -> RollbackRecord:
    created = now()
    reason = redact(reason)  # people paste tokens too; it is quoted in Slack and reports
    entry = TimelineEntry(
        at=created,
        state=RollbackState.REQUESTED,
        message=f"rollback of {namespace}/{workload} requested" + (f": {reason}" if reason else ""),
        actor=requested_by,
    )
    return RollbackRecord(
        namespace=namespace,
        workload=workload,
        requested_by=requested_by,
        reason=reason,
        requested_revision=revision,
        channel=channel,
        dry_run=dry_run,
        emergency=emergency,
        trigger=trigger,
        to_tag=to_tag,
        strategy=strategy,
        options=dict(options or {}),
        created_at=created,
        expires_at=created + ttl,
        timeline=(entry,),
    )
