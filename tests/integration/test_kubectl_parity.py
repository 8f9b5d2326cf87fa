"""The Deployment rollbot leaves behind equals the one `kubectl rollout undo` leaves.

Twin Deployments (same name, same revisions, two namespaces) are rolled back,
one by rollbot's engine and one by the real kubectl built from the same
Kubernetes version; their templates and annotations must then be identical.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from bot.config import RollbotConfig
from bot.deployments import CHANGE_CAUSE
from bot.engine import apply_rollback, change_cause_for, plan_rollback
from tests.integration.workloads import Workloads, container

pytestmark = pytest.mark.cluster

SHAPES = {
    "single-image": ["app:v1", "app:v2", "app:v3"],
    "multiple-and-init-containers": [
        {
            "initContainers": [container("migrate", "app:v1")],
            "containers": [container("app", "app:v1"), container("proxy", "envoy:1.30")],
        },
        {
            "initContainers": [container("migrate", "app:v2"), container("warm", "cache:2")],
            "containers": [container("app", "app:v2"), container("proxy", "envoy:1.31")],
        },
        {"containers": [container("app", "app:v3")]},
    ],
    "env-changes": [
        {"containers": [container("app", "app:v1", env=[{"name": "MODE", "value": "a"}])]},
        {
            "containers": [
                container(
                    "app",
                    "app:v1",
                    env=[{"name": "MODE", "value": "b"}, {"name": "FLAG_NEW_UI", "value": "true"}],
                )
            ]
        },
        {
            "containers": [
                container("app", "app:v1", env=[{"name": "FLAG_NEW_UI", "value": "true"}])
            ]
        },
    ],
    "resources-and-probes": [
        {"containers": [container("app", "app:v1", resources={"limits": {"memory": "256Mi"}})]},
        {
            "containers": [
                container(
                    "app",
                    "app:v2",
                    resources={"limits": {"memory": "1Gi"}},
                    readinessProbe={"httpGet": {"path": "/health", "port": 8080}},
                )
            ]
        },
    ],
}


def kubectl(control_plane, *args: str) -> str:
    result = subprocess.run(
        [str(control_plane.bin_dir / "kubectl"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "KUBECONFIG": str(control_plane.kubeconfig)},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def make_twins(kube, ns_a: str, ns_b: str, revisions) -> tuple[Workloads, Workloads]:
    twins = Workloads(kube.api_client, ns_a), Workloads(kube.api_client, ns_b)
    for side in twins:
        side.create("web", revisions)
        # Annotations on the Deployment that no ReplicaSet carries.
        side.patch(
            "web",
            {
                "metadata": {
                    "annotations": {
                        "team": "payments",
                        "kubectl.kubernetes.io/last-applied-configuration": "{}",
                    }
                }
            },
        )
        side.wait_complete("web")
    return twins


def comparable(dep: dict) -> dict:
    return {
        "template": dep["spec"]["template"],
        "annotations": dep["metadata"]["annotations"],
        "replicas": dep["spec"]["replicas"],
    }


@pytest.mark.parametrize("to_revision", [0, 1])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_rollbot_leaves_what_kubectl_leaves(
    kube, control_plane, namespace, other_namespace, shape, to_revision
):
    ours, theirs = make_twins(kube, namespace, other_namespace, SHAPES[shape])
    plan = plan_rollback(kube, RollbotConfig(), namespace, "web", to_revision)
    apply_rollback(kube, RollbotConfig(), plan, change_cause=None)
    kubectl(
        control_plane,
        "rollout",
        "undo",
        "deployment/web",
        "-n",
        other_namespace,
        f"--to-revision={to_revision}",
    )
    ours_after, theirs_after = ours.wait_complete("web"), theirs.wait_complete("web")
    assert comparable(ours_after) == comparable(theirs_after)
    assert sorted(ours.revisions("web")) == sorted(theirs.revisions("web"))


def test_with_a_change_cause_only_the_change_cause_differs(
    kube, control_plane, namespace, other_namespace
):
    ours, theirs = make_twins(kube, namespace, other_namespace, SHAPES["single-image"])
    plan = plan_rollback(kube, RollbotConfig(), namespace, "web")
    cause = change_cause_for(plan, "alice", "errors on checkout")
    apply_rollback(kube, RollbotConfig(), plan, change_cause=cause)
    kubectl(control_plane, "rollout", "undo", "deployment/web", "-n", other_namespace)
    ours_after, theirs_after = (
        comparable(ours.wait_complete("web")),
        comparable(theirs.wait_complete("web")),
    )
    assert ours_after["annotations"].pop(CHANGE_CAUSE) == cause
    assert theirs_after["annotations"].pop(CHANGE_CAUSE) == "revision 2: app:v2"
    assert ours_after == theirs_after
    history = kubectl(control_plane, "rollout", "history", "deployment/web", "-n", namespace)
    assert "rolled back by alice from revision 3 to 2: errors on checkout" in history
