"""What the strategy tests share: a Progress that records, and Services and their
Endpoints read with plain API calls (never with the rollbot code under test)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from bot.config import RollbotConfig
from bot.errors import PermanentError
from bot.kube import Kube
from bot.rollout import RolloutPhase, RolloutState
from bot.strategies import Context, Plan, Request, change_cause
from bot.strategies import get as get_strategy
from tests.integration.workloads import Workloads

Body = dict[str, Any]


@dataclass
class Recorder:
    """A Progress that keeps what it was told."""

    milestones: list[str] = field(default_factory=list)
    states: list[tuple[str, RolloutState]] = field(default_factory=list)

    def milestone(self, text: str) -> None:
        self.milestones.append(text)

    def rollout(self, workload: str, state: RolloutState) -> None:
        self.states.append((workload, state))

    def completed(self, workload: str) -> bool:
        return any(w == workload and s.phase is RolloutPhase.COMPLETE for w, s in self.states)


def deployment_body(
    name: str, labels: Body, replicas: int, containers: list[Body], selector: Body | None = None
) -> Body:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector or labels},
            "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": containers}},
        },
    }


def create_deployment(workloads: Workloads, body: Body) -> Body:
    workloads.apps.create_namespaced_deployment(workloads.namespace, body)
    return workloads.wait_complete(body["metadata"]["name"])


def create_service(workloads: Workloads, name: str, selector: Body) -> None:
    workloads.core.create_namespaced_service(
        workloads.namespace,
        {
            "metadata": {"name": name},
            "spec": {"selector": selector, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    )


def read(workloads: Workloads, kind: str, name: str) -> Body:
    reader = getattr(workloads.core, f"read_namespaced_{kind}")
    return dict(json.loads(reader(name, workloads.namespace, _preload_content=False).data))


def pods(workloads: Workloads, selector: str) -> list[Body]:
    raw = workloads.core.list_namespaced_pod(
        workloads.namespace, label_selector=selector, _preload_content=False
    )
    return [p for p in json.loads(raw.data)["items"] if not p["metadata"].get("deletionTimestamp")]


def served_ips(workloads: Workloads, service: str) -> set[str]:
    """The IPs a Service's Endpoints send traffic to (ready addresses)."""
    try:
        endpoints = read(workloads, "endpoints", service)
    except ApiException as err:
        if err.status == 404:
            return set()
        raise
    return {
        address["ip"]
        for subset in endpoints.get("subsets") or []
        for address in subset.get("addresses") or []
    }


def ips_of(workloads: Workloads, selector: str) -> set[str]:
    return {p["status"]["podIP"] for p in pods(workloads, selector) if p["status"].get("podIP")}


def eventually(test: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {timeout}s")
        time.sleep(0.2)


def wait_served(workloads: Workloads, service: str, selector: str, count: int) -> set[str]:
    """Wait until the Service serves exactly the `count` pods `selector` picks; their IPs."""

    def serving() -> bool:
        wanted = ips_of(workloads, selector)
        return len(wanted) == count and served_ips(workloads, service) == wanted

    eventually(serving, f"serving {count} pod(s) of {selector} through {service}")
    return served_ips(workloads, service)


@dataclass
class StateRecorder:
    """A Progress that hands each rollout state to a callback (and keeps milestones)."""

    on_state: Callable[[RolloutState], None] | None = None
    milestones: list[str] = field(default_factory=list)

    def milestone(self, text: str) -> None:
        self.milestones.append(text)

    def rollout(self, workload: str, state: RolloutState) -> None:
        if self.on_state is not None:
            self.on_state(state)


def rollback(
    kube: Kube,
    config: RollbotConfig,
    namespace: str,
    name: str,
    *,
    to_revision: int = 0,
    actor: str = "rollbot",
    reason: str = "",
    timeout: float | None = None,
    on_state: Callable[[RolloutState], None] | None = None,
) -> Plan:
    """A Deployment undo planned and applied as `rollbot rollback --yes` does it: the
    undo strategy, its change-cause, nothing to do refused as the worker refuses it."""
    undo = get_strategy("undo")
    ctx = Context(kube=kube, config=config, timeout=timeout or config.rollout_timeout_seconds)
    plan = undo.plan(ctx, Request(namespace, name, "undo", to_revision))
    if plan.nothing_to_do:
        raise PermanentError(f"nothing to do: {plan.nothing_to_do}")
    cause = change_cause(
        plan.strategy,
        actor,
        reason,
        from_revision=plan.from_revision,
        target_revision=plan.target_revision,
    )
    undo.apply(ctx, namespace, plan.pins, cause, StateRecorder(on_state))
    return plan
