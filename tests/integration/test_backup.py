"""The pre-rollback backup, taken from the real API."""

from __future__ import annotations

import json

import pytest
from kubernetes import client

from bot.backup import LAST_APPLIED, redacted_backup, take_backup
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


def test_the_backup_shown_to_people_holds_no_env_value_argument_or_config_data(kube, workloads):
    ns = workloads.namespace
    core = client.CoreV1Api(kube.api_client)
    core.create_namespaced_config_map(
        ns, {"metadata": {"name": "web-config"}, "data": {"SMTP_URL": "smtp://mail:pw-cm1@mx"}}
    )
    spec = {
        "containers": [
            container(
                "app",
                "app:v1",
                args=["--db-password", "pw-arg1", "--token=pw-arg2"],
                env=[{"name": "API_URL", "value": "https://svc:pw-env1@api"}],
                envFrom=[{"configMapRef": {"name": "web-config"}}],
            )
        ]
    }
    # What `kubectl apply` leaves: the whole spec, env values included, as an annotation.
    last_applied = json.dumps({"spec": {"template": {"spec": spec}}})
    workloads.create("web", [spec], annotations={LAST_APPLIED: last_applied})

    bundle = take_backup(kube, ns, "web")
    shown = json.dumps(redacted_backup(bundle))

    for secret in ("pw-cm1", "pw-arg1", "pw-arg2", "pw-env1"):
        assert secret in json.dumps(bundle)  # the stored backup keeps them, for a restore
        assert secret not in shown
    assert '"name": "API_URL"' in shown
    assert '"configMapRef": {"name": "web-config"}' in shown
