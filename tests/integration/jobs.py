"""Jobs on the test control plane: made, waited for and read with plain API calls.

The real job controller runs them; the fake kubelet runs their pods to
completion, and runs the commands of pods marked `run-local` as real processes
(`testbed/local_containers.py`).
"""

from __future__ import annotations

import json
import time
from typing import Any

from kubernetes import client

from testbed.local_containers import RUN_LOCAL_ANNOTATION

Body = dict[str, Any]
LOCAL = {RUN_LOCAL_ANNOTATION: "true"}


def job_body(
    name: str,
    *,
    image: str = "registry.example/tools:1.0",
    command: list[str] | None = None,
    env: list[Body] | None = None,
    annotations: dict[str, str] | None = None,
    backoff_limit: int = 0,
    restart_policy: str = "Never",
) -> Body:
    """A one-container Job; `annotations` go on its pod template (e.g. `LOCAL`)."""
    container: Body = {"name": "main", "image": image}
    if command is not None:
        container["command"] = command
    if env is not None:
        container["env"] = env
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": backoff_limit,
            "template": {
                "metadata": {"annotations": annotations or {}},
                "spec": {"restartPolicy": restart_policy, "containers": [container]},
            },
        },
    }


class Jobs:
    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self.batch = client.BatchV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.namespace = namespace

    def create(self, body: Body) -> Body:
        raw = self.batch.create_namespaced_job(self.namespace, body, _preload_content=False)
        return dict(json.loads(raw.data))

    def get(self, name: str) -> Body:
        raw = self.batch.read_namespaced_job(name, self.namespace, _preload_content=False)
        return dict(json.loads(raw.data))

    def finished(self, name: str, timeout: float = 60) -> Body:
        """The Job once the job controller has said Complete or Failed."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(name)
            for condition in job.get("status", {}).get("conditions") or []:
                if condition["type"] in ("Complete", "Failed") and condition["status"] == "True":
                    return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {name} not finished after {timeout}s: {job['status']}")
            time.sleep(0.2)

    def pods(self, name: str) -> list[Body]:
        raw = self.core.list_namespaced_pod(
            self.namespace, label_selector=f"job-name={name}", _preload_content=False
        )
        return list(json.loads(raw.data)["items"])

    def log(self, pod: str, container: str = "main") -> str:
        return str(self.core.read_namespaced_pod_log(pod, self.namespace, container=container))

    def delete(self, name: str) -> None:
        self.batch.delete_namespaced_job(
            name, self.namespace, propagation_policy="Background", _preload_content=False
        )


def condition(job: Body, kind: str) -> Body | None:
    conditions = job.get("status", {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == kind and c["status"] == "True"), None)


def terminated(pod: Body) -> Body:
    """The first container's `state.terminated` (KeyError while it runs)."""
    return dict(pod["status"]["containerStatuses"][0]["state"]["terminated"])
