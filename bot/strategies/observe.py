"""Seeing a strategy's change through: Deployment rollouts, and where a Service's
Endpoints send traffic.

Shared by the blue-green and the operational strategies. The Endpoints are what
the endpoints controller made of the Service's selector and its pods' readiness:
the one place that says which pods a Service really serves.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from bot.bodies import Body
from bot.errors import Forbidden, PermanentError, RolloutFailed
from bot.kube import selector_string
from bot.rollout import RolloutPhase, deadline_marker, watch_rollout
from bot.strategies.base import Context, Progress, StrategyKube

POLL_SECONDS = 0.25


class TrafficNotMoved(RolloutFailed):
    """The change was made, but the Service's Endpoints did not follow in time."""

    code = "traffic_not_moved"


def pointer_token(key: str) -> str:
    """A map key as one JSON-pointer segment (`app.kubernetes.io/color` has a slash)."""
    return key.replace("~", "~0").replace("/", "~1")


def replicas_of(deployment: Body) -> int:
    replicas = deployment.get("spec", {}).get("replicas")
    return 1 if replicas is None else int(replicas)


def unchanged_since(deployment: Body) -> Body:
    """A `test` op that fails if the Deployment's spec changed since it was read."""
    return {
        "op": "test",
        "path": "/metadata/generation",
        "value": deployment["metadata"]["generation"],
    }


def follow_rollout(
    ctx: Context,
    namespace: str,
    name: str,
    progress: Progress,
    start: Body | None = None,
    stale_deadline: str | None = None,
) -> None:
    """Report the Deployment's rollout until it is complete (RolloutFailed otherwise)."""
    for state in watch_rollout(
        ctx.kube, namespace, name, ctx.timeout, stale_deadline=stale_deadline, start=start
    ):
        progress.rollout(name, state)
        if state.phase is RolloutPhase.COMPLETE:
            return


def stale_deadline_of(deployment: Body) -> str | None:
    """A missed deadline already there before a patch: not the new rollout's failure."""
    return deadline_marker(deployment)


def pods_of(kube: StrategyKube, namespace: str, deployment: Body) -> list[Body]:
    """The Deployment's pods that are not on their way out."""
    selector = selector_string(deployment["spec"].get("selector") or {})
    return [
        pod
        for pod in kube.list_pods(namespace, selector)
        if not pod["metadata"].get("deletionTimestamp")
    ]


def is_ready(pod: Body) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in pod.get("status", {}).get("conditions") or []
    )


def selects(selector: Body | None, labels: Body | None) -> bool:
    """Whether a Service selector picks pods with these labels (an empty one picks none)."""
    labels = labels or {}
    return bool(selector) and all(labels.get(k) == v for k, v in (selector or {}).items())


def endpoint_pods(endpoints: Body | None) -> tuple[set[str], set[str]]:
    """(pods served, pods listed but not ready) by an Endpoints object, by pod name."""
    served: set[str] = set()
    waiting: set[str] = set()
    for subset in (endpoints or {}).get("subsets") or []:
        for into, field in ((served, "addresses"), (waiting, "notReadyAddresses")):
            for address in subset.get(field) or []:
                ref = address.get("targetRef") or {}
                if ref.get("kind") == "Pod" and ref.get("name"):
                    into.add(str(ref["name"]))
    return served, waiting


def read_endpoints(kube: StrategyKube, namespace: str, name: str) -> Body | None:
    """The Service's Endpoints; None until the endpoints controller has written them."""
    try:
        endpoints: Body = kube.get_endpoints(namespace, name)
    except Forbidden:
        raise
    except PermanentError:  # 404: not written yet
        return None
    return endpoints


def wait_until(
    problem: Callable[[], str | None], timeout: float, failure: Callable[[str], str]
) -> None:
    """Poll `problem` (None: done) until done; TrafficNotMoved with the last problem."""
    deadline = time.monotonic() + timeout
    while True:
        left = problem()
        if left is None:
            return
        if time.monotonic() >= deadline:
            raise TrafficNotMoved(failure(left))
        time.sleep(POLL_SECONDS)


def names(items: Iterable[str]) -> str:
    listed = sorted(items)
    return ", ".join(listed) if listed else "none"
