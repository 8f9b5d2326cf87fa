"""Raw API objects for unit tests, shaped as the apiserver returns them."""

from __future__ import annotations

import copy
from typing import Any

Body = dict[str, Any]
DEPLOYMENT_UID = "d-uid-1"
REVISION = "deployment.kubernetes.io/revision"


def template(
    image: str = "app:v1",
    *,
    env: list[Body] | None = None,
    labels: Body | None = None,
    hash_label: str | None = None,
) -> Body:
    pod_labels = {"app": "web", **(labels or {})}
    if hash_label:
        pod_labels["pod-template-hash"] = hash_label
    container: Body = {"name": "app", "image": image}
    if env is not None:
        container["env"] = env
    return {"metadata": {"labels": pod_labels}, "spec": {"containers": [container]}}


def deployment(
    tmpl: Body | None = None,
    *,
    annotations: Body | None = None,
    generation: int = 3,
    observed: int = 3,
    paused: bool = False,
    resource_version: str = "100",
) -> Body:
    return {
        "metadata": {
            "name": "web",
            "namespace": "prod",
            "uid": DEPLOYMENT_UID,
            "generation": generation,
            "resourceVersion": resource_version,
            "annotations": dict(annotations or {"deployment.kubernetes.io/revision": "3"}),
        },
        "spec": {
            "replicas": 2,
            "paused": paused,
            "selector": {"matchLabels": {"app": "web"}},
            "template": copy.deepcopy(tmpl or template("app:v3")),
        },
        "status": {"observedGeneration": observed},
    }


def replica_set(
    name: str,
    revision: str | None,
    tmpl: Body,
    *,
    owner: str = DEPLOYMENT_UID,
    annotations: Body | None = None,
    created: str = "2026-01-01T00:00:00Z",
    controller: bool = True,
) -> Body:
    notes = dict(annotations or {})
    if revision is not None:
        notes["deployment.kubernetes.io/revision"] = revision
    return {
        "metadata": {
            "name": name,
            "annotations": notes,
            "creationTimestamp": created,
            "ownerReferences": [{"uid": owner, "controller": controller}],
        },
        "spec": {"template": copy.deepcopy(tmpl)},
        "status": {"replicas": 0},
    }
