"""The Warning-events line of the assessment, with real Events on the real control plane:
a Deployment counts the events about itself, its ReplicaSets and their pods, and not those
of a Deployment whose name merely starts with its own (`web` and `web-api`)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from kubernetes import client

from bot.assessment import Assessment, assess_workload
from bot.kube import Kube
from tests.integration.workloads import Workloads, container

pytestmark = pytest.mark.cluster

PATIENCE = 30


def post_kubelet_event(core: client.CoreV1Api, pod: dict, reason: str, message: str) -> None:
    """A Warning about a pod, as the kubelet posts one (the testbed's kubelet posts none)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    meta = pod["metadata"]
    core.create_namespaced_event(
        meta["namespace"],
        {
            "metadata": {"generateName": f"{meta['name']}."},
            "involvedObject": {
                "kind": "Pod",
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
                "apiVersion": "v1",
            },
            "type": "Warning",
            "reason": reason,
            "message": message,
            "count": 4,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "source": {"component": "kubelet"},
        },
    )


def pods_of(core: client.CoreV1Api, namespace: str, app: str) -> list[dict]:
    return [
        core.api_client.sanitize_for_serialization(pod)
        for pod in core.list_namespaced_pod(namespace, label_selector=f"app={app}").items
    ]


def assessed_until(kube: Kube, namespace: str, name: str, done) -> Assessment:
    deadline = time.monotonic() + PATIENCE
    while True:
        result = assess_workload(kube, namespace, name, budget=10)
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen after {PATIENCE}s: {result.summary_lines()}")
        time.sleep(0.5)


def test_web_counts_its_own_warning_events_and_none_of_web_apis(
    kube: Kube, workloads: Workloads
) -> None:
    ns = workloads.namespace
    core = client.CoreV1Api(kube.api_client)
    # Pods asking for more than this are refused at admission: the ReplicaSet controller
    # itself then warns (FailedCreate) about the ReplicaSet that cannot get its pods.
    core.create_namespaced_limit_range(
        ns,
        {
            "metadata": {"name": "one-cpu"},
            "spec": {"limits": [{"type": "Container", "max": {"cpu": "1"}}]},
        },
    )
    greedy = {"requests": {"cpu": "2"}, "limits": {"cpu": "2"}}
    workloads.create("web", ["web:v1"], replicas=1)
    workloads.create(
        "web-api",
        ["api:v1", {"containers": [container("app", "api:v2", resources=greedy)]}],
        replicas=1,
        wait=False,
    )
    [web_pod] = pods_of(core, ns, "web")
    [api_pod] = pods_of(core, ns, "web-api")
    post_kubelet_event(core, web_pod, "BackOff", "Back-off restarting failed container app")
    post_kubelet_event(core, api_pod, "BackOff", "Back-off pulling, password=hunter2 refused")

    api = assessed_until(
        kube, ns, "web-api", lambda r: any(w.reason == "FailedCreate" for w in r.warnings or ())
    )
    web = assess_workload(kube, ns, "web", budget=10)

    assert web.warnings is not None
    assert [(w.kind, w.name, w.reason, w.count) for w in web.warnings] == [
        ("Pod", web_pod["metadata"]["name"], "BackOff", 4)
    ]
    assert "Warning events: 1" in web.fact_lines()
    assert "  BackOff: Back-off restarting failed container app (×4)" in web.fact_lines()

    assert api.warnings is not None
    kinds = {(w.kind, w.reason) for w in api.warnings}
    assert kinds == {("Pod", "BackOff"), ("ReplicaSet", "FailedCreate")}
    failed_creates = [w for w in api.warnings if w.reason == "FailedCreate"]
    assert all(w.name.startswith("web-api-") and "cpu" in w.message for w in failed_creates)
    assert "hunter2" not in "\n".join(api.summary_lines())
