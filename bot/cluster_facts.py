"""What the cluster says about a Deployment: its pods (ready, restarts, containers
that do not come up) and the Warning events about it, its ReplicaSets and pods.

Reasons and messages are quoted to people: they are redacted here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.redaction import redact

Body = dict[str, Any]
#: Container states that mean the container is not coming up on its own.
CRASH_REASONS = frozenset(
    {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError"}
)


@dataclass(frozen=True)
class CrashLoop:
    """A container that is not coming up: CrashLoopBackOff, an image that cannot be pulled."""

    pod: str
    container: str
    reason: str

    def line(self) -> str:
        return f"{self.pod}/{self.container}: {self.reason}"


@dataclass(frozen=True)
class PodFacts:
    ready: int
    total: int
    restarts: int
    crash_looping: tuple[CrashLoop, ...]


@dataclass(frozen=True)
class WarningEvent:
    """A Warning event about the workload, its ReplicaSets or its pods (newest first)."""

    kind: str  # of the object it is about: "Pod", "ReplicaSet", "Deployment"
    name: str
    reason: str
    message: str  # redacted
    count: int = 1

    def line(self) -> str:
        return f"{self.reason}: {self.message}" + (f" (×{self.count})" if self.count > 1 else "")


def pod_facts(pods: list[Body]) -> PodFacts:
    ready = restarts = 0
    crash: list[CrashLoop] = []
    for pod in pods:
        status = pod.get("status", {})
        if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or []
        ):
            ready += 1
        for cs in status.get("containerStatuses") or []:
            restarts += int(cs.get("restartCount") or 0)
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in CRASH_REASONS:
                crash.append(CrashLoop(pod["metadata"]["name"], cs["name"], waiting["reason"]))
    return PodFacts(ready, len(pods), restarts, tuple(crash))


def _owned_by(obj: Body, owner: Body) -> bool:
    uid = owner.get("metadata", {}).get("uid")
    return uid is not None and any(
        ref.get("uid") == uid for ref in obj.get("metadata", {}).get("ownerReferences") or []
    )


def warning_events(
    events: list[Body], deployment: Body, replica_sets: list[Body], pods: list[Body]
) -> tuple[WarningEvent, ...]:
    """The Warning events about this Deployment, the ReplicaSets it owns and their pods,
    newest first. Matched by name, never by prefix: `web` does not count `web-api`'s."""
    name = deployment["metadata"]["name"]
    owned = {rs["metadata"]["name"] for rs in replica_sets if _owned_by(rs, deployment)}
    pod_names = {p["metadata"]["name"] for p in pods}

    def about_it(obj: Body) -> bool:
        kind, obj_name = obj.get("kind"), str(obj.get("name", ""))
        if kind in (None, "Deployment") and obj_name == name:
            return True
        if kind in (None, "ReplicaSet") and obj_name in owned:
            return True
        # A pod is `<replicaset>-<suffix>`; one already deleted still has its events.
        return kind in (None, "Pod") and (
            obj_name in pod_names or obj_name.rpartition("-")[0] in owned
        )

    mine = [e for e in events if about_it(e.get("involvedObject") or {})]
    mine.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""), reverse=True)
    return tuple(
        WarningEvent(
            kind=str((e.get("involvedObject") or {}).get("kind") or ""),
            name=str((e.get("involvedObject") or {}).get("name") or ""),
            reason=redact(str(e.get("reason") or "?")),
            message=redact(str(e.get("message") or "")),
            count=max(1, int(e.get("count") or (e.get("series") or {}).get("count") or 1)),
        )
        for e in mine
    )
