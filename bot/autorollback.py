"""Automatic rollback: watch the Deployments that opted in, and open a rollback
on their behalf when a fresh revision misses its progress deadline.

Opting in is a catalog flag (`auto_rollback: true`) or the annotation
`rollbot.dev/auto-rollback: "true"` on the Deployment. Never for a revision
rollbot itself rolled back to, and never twice for the same bad revision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from bot.config import RollbotConfig
from bot.deployments import rollout_history
from bot.kube import selector_string
from bot.rollout import RolloutPhase, rollout_state

Body = dict[str, Any]
OPT_IN_ANNOTATION = "rollbot.dev/auto-rollback"
ROLLBOT_CAUSE_PREFIX = "rollbot:"


class WatchSource(Protocol):
    def list_deployments(self, namespace: str, label_selector: str = "") -> list[Body]: ...

    def list_replica_sets(self, namespace: str, label_selector: str) -> list[Body]: ...


@dataclass(frozen=True)
class FailedRelease:
    namespace: str
    deployment: str
    replica_set: str  # the bad revision's ReplicaSet: the key for "never twice"
    revision: int
    evidence: str
    channel: str | None


def opted_in(config: RollbotConfig, deployment: Body) -> tuple[bool, str | None]:
    """(watched?, channel) for a Deployment."""
    meta = deployment["metadata"]
    entry = config.service_for(meta["namespace"], meta["name"])
    channel = (entry.channel if entry else None) or config.auto_rollback_channel
    annotated = (meta.get("annotations") or {}).get(OPT_IN_ANNOTATION) == "true"
    return bool((entry and entry.auto_rollback) or annotated), channel


def failed_release(
    source: WatchSource, config: RollbotConfig, deployment: Body
) -> FailedRelease | None:
    """The Deployment's current revision, if it is a fresh one that has failed."""
    state = rollout_state(deployment)
    if state.phase is not RolloutPhase.DEADLINE_EXCEEDED:
        return None
    meta = deployment["metadata"]
    selector = selector_string(deployment["spec"].get("selector") or {})
    history = rollout_history(deployment, source.list_replica_sets(meta["namespace"], selector))
    current = next((r for r in history if r.current), None)
    if current is None or len(history) < 2:
        return None  # nothing to go back to
    if current.change_cause.startswith(ROLLBOT_CAUSE_PREFIX):
        return None  # rollbot put this revision there: not rolling back its own rollback
    _, channel = opted_in(config, deployment)
    evidence = (
        f"revision {current.number} ({', '.join(current.images)}) {state.message}: "
        f"{state.available}/{state.desired} available"
    )
    return FailedRelease(
        meta["namespace"], meta["name"], current.replica_set, current.number, evidence, channel
    )


def find_failed_releases(source: WatchSource, config: RollbotConfig) -> list[FailedRelease]:
    """Every opted-in Deployment, in the namespaces rollbot may touch, whose new
    revision failed (needs an allowed-namespace list or a catalog to look in)."""
    namespaces = set(config.allowed_namespaces)
    namespaces |= {
        e.namespace or config.default_namespace for e in config.services.values() if e.auto_rollback
    }
    found = []
    for namespace in sorted(namespaces):
        for deployment in source.list_deployments(namespace):
            watched, _ = opted_in(config, deployment)
            if watched and (failure := failed_release(source, config, deployment)):
                found.append(failure)
    return found
