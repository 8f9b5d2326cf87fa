"""Each rollback, told to the incident tools: a change event when it starts
changing the cluster and one when it ends (PagerDuty change events, webhooks,
a status page).

Events are made by the store in the very write that moves a record into
rolling back or out to its end (see `RollbackStore.update`), and queued in a
Redis list in that same transaction: a rollback is never told twice or
forgotten, whichever process crashes. A deliverer sends them on, in order.
A dry run, and a confirmation cancelled or left to expire, changed nothing:
no event. A rollback drill (and its way back) is an exercise, not an incident:
no event either, as its report says, unless the config asks for drills too
(`notify.include_drills`): then their events are marked `drill`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from bot.records import RollbackRecord, RollbackState

S = RollbackState
#: The Redis list of events waiting to be sent, oldest first.
CHANGES = "rollbot:changes"


class ChangeEvent(BaseModel):
    #: The record's id and the kind: the same event sent again has the same id.
    id: str
    kind: Literal["started", "finished"]
    record_id: str
    service: str
    namespace: str
    strategy: str
    trigger: str
    #: What runs before and after, in words ("revision 42", "helm release revision 7").
    current: str
    target: str
    requested_by: str
    approved_by: str | None
    reason: str
    #: The record's state: rolling_back for "started", succeeded or failed after.
    state: str
    error: str | None
    at: datetime
    emergency: bool
    #: A rollback drill or its way back (made only with `notify.include_drills`).
    drill: bool = False


def change_event(
    before: RollbackRecord, after: RollbackRecord, *, include_drills: bool = False
) -> ChangeEvent | None:
    """The event a write from `before` to `after` makes, if it makes one."""
    if after.dry_run or (after.drill and not include_drills) or after.state is before.state:
        return None
    if after.state is S.ROLLING_BACK:
        kind: Literal["started", "finished"] = "started"
    elif after.state in (S.SUCCEEDED, S.FAILED) and before.state.executing:
        kind = "finished"
    else:
        return None
    return ChangeEvent(
        id=f"{after.id}:{kind}",
        kind=kind,
        record_id=after.id,
        service=after.workload,
        namespace=after.namespace,
        strategy=after.strategy,
        trigger=after.trigger,
        current=after.from_text,
        target=after.to_text,
        requested_by=after.requested_by,
        approved_by=after.approved_by,
        reason=after.reason,
        state=after.state.value,
        error=after.error,
        at=after.timeline[-1].at if after.timeline else after.created_at,
        emergency=after.emergency,
        drill=after.drill,
    )
