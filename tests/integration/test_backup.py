"""The pre-rollback backup, taken from the real API."""

from __future__ import annotations

import json

import pytest
from kubernetes import client

from bot.backup import take_backup
from tests.integration.workloads import container

pytestmark = pytest.mark.cluster


def test_the_backup_holds_what_the_runbooks_save_and_never_secret_data(kube, workloads):
    ns = workloads.namespace
    core = client.CoreV1Api(kube.api_client)
    core.create_namespaced_config_map(
        ns, {"metadata": {"name": "web-config"}, "data": {"FEATURE_NEW_UI": "true"}}
    )
    core.create_namespaced_secret(
        ns, {"metadata": {"name": "web-db"}, "stringData": {"url": "postgres://s3cret"}}
    )
    core.create_namespaced_service(
        ns,
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
        },
    )
    core.create_namespaced_service(
        ns,
        {
            "metadata": {"name": "other"},
            "spec": {"selector": {"app": "other"}, "ports": [{"port": 80}]},
        },
    )
    client.AutoscalingV2Api(kube.api_client).create_namespaced_horizontal_pod_autoscaler(
        ns,
        {
            "metadata": {"name": "web"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 2,
                "maxReplicas": 5,
            },
        },
    )
    workloads.create(
        "web",
        [
            {
                "containers": [
                    container(
                        "app",
                        "app:v1",
                        envFrom=[{"configMapRef": {"name": "web-config"}}],
                        env=[
                            {
                                "name": "DB",
                                "valueFrom": {"secretKeyRef": {"name": "web-db", "key": "url"}},
                            }
                        ],
                    )
                ],
                "volumes": [
                    {"name": "extra", "configMap": {"name": "not-created", "optional": True}}
                ],
            }
        ],
    )

    bundle = take_backup(kube, ns, "web")

    assert bundle["deployment"]["spec"]["template"]["spec"]["containers"][0]["image"] == "app:v1"
    assert "status" not in bundle["deployment"]
    assert "resourceVersion" not in bundle["deployment"]["metadata"]
    assert [s["metadata"]["name"] for s in bundle["services"]] == ["web"]
    assert [c["data"] for c in bundle["config_maps"]] == [{"FEATURE_NEW_UI": "true"}]
    assert [h["metadata"]["name"] for h in bundle["autoscalers"]] == ["web"]
    assert bundle["secrets_referenced"] == ["web-db"]
    assert "s3cret" not in json.dumps(bundle)
    assert bundle["not_backed_up"][0].startswith("configmap/not-created")
