"""Deployments taken through real revisions on the test control plane.

These helpers read and wait with plain API calls of their own, never with the
rollbot code under test, so a bug there cannot hide itself here.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

from kubernetes import client

Body = dict[str, Any]
CHANGE_CAUSE = "kubernetes.io/change-cause"


def container(name: str, image: str, **extra: Any) -> Body:
    return {"name": name, "image": image, **extra}


class Workloads:
    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.namespace = namespace

    def get(self, name: str) -> Body:
        raw = self.apps.read_namespaced_deployment(name, self.namespace, _preload_content=False)
        return dict(json.loads(raw.data))

    def replica_sets(self, name: str) -> list[Body]:
        dep = self.get(name)
        raw = self.apps.list_namespaced_replica_set(self.namespace, _preload_content=False)
        return [
            rs
            for rs in json.loads(raw.data)["items"]
            if any(
                ref["uid"] == dep["metadata"]["uid"]
                for ref in rs["metadata"].get("ownerReferences", [])
            )
        ]

    def revisions(self, name: str) -> dict[int, Body]:
        """Revision number → ReplicaSet, straight from the annotations."""
        return {
            int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]): rs
            for rs in self.replica_sets(name)
        }

    def images_of(self, name: str) -> list[str]:
        spec = self.get(name)["spec"]["template"]["spec"]
        return [c["image"] for c in spec.get("initContainers", []) + spec["containers"]]

    def create(
        self,
        name: str,
        revisions: list[Any],
        *,
        replicas: int = 2,
        progress_deadline: int = 600,
        history_limit: int | None = None,
        annotations: Body | None = None,
        wait: bool = True,
    ) -> Body:
        """A Deployment taken through `revisions`, each an image or a pod spec patch.

        Revision i gets change-cause "revision i: <image>". Every revision but
        the last is waited for until rolled out; the last one too when `wait`.
        """
        first, *rest = revisions
        spec = self._pod_spec(first)
        body: Body = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": name,
                "annotations": {CHANGE_CAUSE: self._cause(1, first), **(annotations or {})},
            },
            "spec": {
                "replicas": replicas,
                "progressDeadlineSeconds": progress_deadline,
                "selector": {"matchLabels": {"app": name}},
                "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
            },
        }
        if history_limit is not None:
            body["spec"]["revisionHistoryLimit"] = history_limit
        self.apps.create_namespaced_deployment(self.namespace, body)
        self._settle(name, first, last=not rest, wait=wait)
        for number, revision in enumerate(rest, start=2):
            self.roll(name, revision, cause=self._cause(number, revision))
            self._settle(name, revision, last=number == len(revisions), wait=wait)
        return self.get(name)

    def _settle(self, name: str, revision: Any, *, last: bool, wait: bool) -> None:
        """Wait for a revision: rolled out, or for a broken one, at least observed."""
        if last and not wait:
            return
        if "broken" in json.dumps(revision):
            self.wait_for(
                name,
                lambda d: (
                    d.get("status", {}).get("observedGeneration", 0) >= d["metadata"]["generation"]
                ),
                "observed",
            )
        else:
            self.wait_complete(name)

    @staticmethod
    def _cause(number: int, revision: Any) -> str:
        label = revision if isinstance(revision, str) else json.dumps(revision, sort_keys=True)
        return f"revision {number}: {label}"

    @staticmethod
    def _pod_spec(revision: Any) -> Body:
        if isinstance(revision, str):
            return {"containers": [container("app", revision)]}
        return copy.deepcopy(revision)

    def roll(self, name: str, revision: Any, cause: str = "") -> None:
        """A new revision: replace the pod spec (JSON patch, so removals stick)."""
        ops = [{"op": "replace", "path": "/spec/template/spec", "value": self._pod_spec(revision)}]
        if cause:
            ops.append(
                {
                    "op": "add",
                    "path": "/metadata/annotations/kubernetes.io~1change-cause",
                    "value": cause,
                }
            )
        self.apps.patch_namespaced_deployment(name, self.namespace, ops)

    def patch(self, name: str, body: Any) -> Body:
        raw = self.apps.patch_namespaced_deployment(
            name, self.namespace, body, _preload_content=False
        )
        return dict(json.loads(raw.data))

    def scale(self, name: str, replicas: int) -> None:
        self.apps.patch_namespaced_deployment_scale(
            name, self.namespace, {"spec": {"replicas": replicas}}
        )

    def wait_for(self, name: str, test: Any, what: str, timeout: float = 60) -> Body:
        deadline = time.monotonic() + timeout
        dep = self.get(name)
        while not test(dep):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"deployment {name} not {what} after {timeout}s: "
                    f"{json.dumps(dep.get('status'))}"
                )
            time.sleep(0.1)
            dep = self.get(name)
        return dep

    def wait_complete(self, name: str, timeout: float = 60) -> Body:
        def complete(dep: Body) -> bool:
            status, want = dep.get("status", {}), dep["spec"]["replicas"]
            return (
                status.get("observedGeneration", 0) >= dep["metadata"]["generation"]
                and status.get("updatedReplicas", 0) == want
                and status.get("replicas", 0) == want
                and status.get("availableReplicas", 0) == want
            )

        return self.wait_for(name, complete, "rolled out", timeout)

    def wait_deadline_exceeded(self, name: str, timeout: float = 60) -> Body:
        def exceeded(dep: Body) -> bool:
            return any(
                c["type"] == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"
                for c in dep.get("status", {}).get("conditions", [])
            )

        return self.wait_for(name, exceeded, "past its progress deadline", timeout)
