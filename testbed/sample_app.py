"""A sample app taken through revisions on the test bed, for the demo and benchmarks."""

from __future__ import annotations

import json
import time
from typing import Any

from kubernetes import client

Body = dict[str, Any]


def deployment_body(
    name: str, image: str, *, replicas: int, progress_deadline: int, cause: str
) -> Body:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "labels": {"app": name},
            "annotations": {"kubernetes.io/change-cause": cause},
        },
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": progress_deadline,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": name,
                            "image": image,
                            "ports": [{"containerPort": 8000}],
                            "env": [{"name": "LOG_LEVEL", "value": "info"}],
                            "readinessProbe": {"httpGet": {"path": "/health", "port": 8000}},
                        }
                    ]
                },
            },
        },
    }


class SampleApp:
    def __init__(self, api_client: client.ApiClient, namespace: str, name: str) -> None:
        # Raw dict bodies in and out: typed as Any, the client's models are not used.
        self.apps: Any = client.AppsV1Api(api_client)
        self.core: Any = client.CoreV1Api(api_client)
        self.namespace, self.name = namespace, name

    def ensure_namespace(self) -> None:
        try:
            self.core.create_namespace({"metadata": {"name": self.namespace}})
        except client.ApiException as err:
            if err.status != 409:
                raise

    def get(self) -> Body:
        raw = self.apps.read_namespaced_deployment(
            self.name, self.namespace, _preload_content=False
        )
        return dict(json.loads(raw.data))

    def deploy(
        self, image: str, cause: str, *, replicas: int = 3, progress_deadline: int = 600
    ) -> None:
        """Create the Deployment, or roll it to `image` as a new revision."""
        try:
            self.apps.read_namespaced_deployment(self.name, self.namespace)
        except client.ApiException as err:
            if err.status != 404:
                raise
            self.apps.create_namespaced_deployment(
                self.namespace,
                deployment_body(
                    self.name,
                    image,
                    replicas=replicas,
                    progress_deadline=progress_deadline,
                    cause=cause,
                ),
            )
            return
        self.apps.patch_namespaced_deployment(
            self.name,
            self.namespace,
            {
                "metadata": {"annotations": {"kubernetes.io/change-cause": cause}},
                "spec": {
                    "template": {"spec": {"containers": [{"name": self.name, "image": image}]}}
                },
            },
        )

    def wait(self, done: str = "complete", timeout: float = 120) -> Body:
        """Poll until the rollout is complete, or (done="deadline") has missed its deadline."""
        end = time.monotonic() + timeout
        while True:
            dep = self.get()
            status = dep.get("status", {})
            want = dep["spec"]["replicas"]
            observed = status.get("observedGeneration", 0) >= dep["metadata"]["generation"]
            if (
                done == "complete"
                and observed
                and all(
                    status.get(k, 0) == want
                    for k in ("updatedReplicas", "replicas", "availableReplicas")
                )
            ):
                return dep
            if (
                done == "deadline"
                and observed
                and any(
                    c.get("reason") == "ProgressDeadlineExceeded"
                    for c in status.get("conditions", [])
                )
            ):
                return dep
            if time.monotonic() > end:
                raise TimeoutError(f"{self.name} not {done} after {timeout}s")
            time.sleep(0.1)
