"""Argo Rollouts objects as the apiserver returns them (argo-rollouts v1.10): a
canary Rollout with the eli-maor steps, its ReplicaSets, its AnalysisRuns."""

from __future__ import annotations

from typing import Any

from bot.bodies import Body

FAILED_MESSAGE = 'Metric "success-rate" assessed Failed due to failed (1) > failureLimit (0)'
UID = "5d0c7a8e-0000-4000-8000-000000000001"
STEPS: list[Body] = [
    {"setWeight": 20},
    {"pause": {"duration": "2m"}},
    {"setWeight": 50},
    {"pause": {}},
    {"setWeight": 80},
    {"pause": {"duration": "2m"}},
]


def pod_template(image: str, pod_hash: str | None = None) -> Body:
    labels = {"app": "eli-maor-backend"}
    if pod_hash:
        labels["rollouts-pod-template-hash"] = pod_hash
    return {
        "metadata": {"labels": labels},
        "spec": {
            "containers": [
                {
                    "name": "backend",
                    "image": image,
                    "ports": [{"containerPort": 8000, "protocol": "TCP"}],
                    "resources": {},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "imagePullPolicy": "IfNotPresent",
                }
            ],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "securityContext": {},
            "schedulerName": "default-scheduler",
        },
    }


def rollout(
    image: str,
    *,
    stable: str,
    current: str,
    phase: str = "Healthy",
    message: str = "",
    step: int | None = None,
    abort: bool = False,
    paused: tuple[str, ...] = (),
    window: int | None = None,
    ready: int = 5,
    generation: int = 4,
    observed: int | None = None,
    blue_green: bool = False,
    active: str = "",
) -> Body:
    strategy: Body = (
        {"blueGreen": {"activeService": "web-active", "previewService": "web-preview"}}
        if blue_green
        else {
            "canary": {
                "steps": STEPS,
                "analysis": {"templates": [{"templateName": "success-rate"}], "startingStep": 2},
            }
        }
    )
    spec: Body = {
        "replicas": 5,
        "selector": {"matchLabels": {"app": "eli-maor-backend"}},
        "template": {
            "metadata": {"labels": {"app": "eli-maor-backend"}},
            "spec": {"containers": [{"name": "backend", "image": image}]},
        },
        "strategy": strategy,
    }
    if window is not None:
        spec["rollbackWindow"] = {"revisions": window}
    status: Body = {
        "phase": phase,
        "message": message,
        "stableRS": stable,
        "currentPodHash": current,
        "observedGeneration": str(generation if observed is None else observed),
        "replicas": 5,
        "updatedReplicas": 5 if current == stable else 1,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "pauseConditions": [{"reason": r, "startTime": "2026-12-02T01:00:00Z"} for r in paused]
        or None,
    }
    if step is not None:
        status["currentStepIndex"] = step
    if abort:
        status["abort"] = True
    if blue_green:
        status["blueGreen"] = {"activeSelector": active or stable}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {
            "name": "eli-maor-backend",
            "namespace": "production",
            "uid": UID,
            "generation": generation,
            "resourceVersion": "1234",
        },
        "spec": spec,
        "status": status,
    }


def replica_set(
    revision: int,
    image: str,
    pod_hash: str,
    *,
    created: str,
    replicas: int = 0,
    ready: int | None = None,
    owner: str = UID,
    experiment: bool = False,
) -> Body:
    annotations = {"rollout.argoproj.io/revision": str(revision)}
    if experiment:
        annotations["experiment.argoproj.io/name"] = "eli-maor-backend-exp"
    return {
        "metadata": {
            "name": f"eli-maor-backend-{pod_hash}",
            "namespace": "production",
            "labels": {"app": "eli-maor-backend", "rollouts-pod-template-hash": pod_hash},
            "annotations": annotations,
            "creationTimestamp": created,
            "ownerReferences": [
                {
                    "apiVersion": "argoproj.io/v1alpha1",
                    "kind": "Rollout",
                    "name": "eli-maor-backend",
                    "uid": owner,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {"replicas": replicas, "template": pod_template(image, pod_hash)},
        "status": {"replicas": replicas, "readyReplicas": replicas if ready is None else ready},
    }


def analysis_run(
    name: str, phase: str, created: str, *, value: str = "0.42", owner: str = UID
) -> Body:
    metric: dict[str, Any] = {
        "name": "success-rate",
        "phase": phase,
        "count": 3,
        "failed": 1 if phase == "Failed" else 0,
        "measurements": [
            {"phase": "Successful", "value": "0.99", "startedAt": created},
            {"phase": phase, "value": value, "startedAt": created},
        ],
    }
    return {
        "metadata": {
            "name": name,
            "namespace": "production",
            "creationTimestamp": created,
            "ownerReferences": [{"kind": "Rollout", "uid": owner, "controller": True}],
        },
        "spec": {"metrics": [{"name": "success-rate"}]},
        "status": {
            "phase": phase,
            "message": 'Metric "success-rate" assessed Failed due to failed (1) > failureLimit (0)'
            if phase == "Failed"
            else "",
            "metricResults": [metric],
        },
    }


# Revisions 1..4 a minute apart: 3 is stable, 4 the canary in progress.
HISTORY = [
    replica_set(1, "ghcr.io/eli/backend:1.0", "h1", created="2026-12-01T10:00:00Z"),
    replica_set(2, "ghcr.io/eli/backend:1.1", "h2", created="2026-12-01T11:00:00Z"),
    replica_set(3, "ghcr.io/eli/backend:1.2", "h3", created="2026-12-01T12:00:00Z", replicas=4),
    replica_set(4, "ghcr.io/eli/backend:1.3", "h4", created="2026-12-01T13:00:00Z", replicas=1),
]
