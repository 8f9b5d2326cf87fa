"""A cluster of plain dicts holding Flux and Argo CD objects, with the API's JSON
patch semantics for the ops rollbot sends (add, remove, test), its dry run, and
the refusals RBAC makes."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.errors import Forbidden, PermanentError

Body = dict[str, Any]


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def apply_json_patch(body: Body, ops: list[Body]) -> Body:
    """`ops` applied to a copy of `body` (RFC 6902 add/remove/test on objects)."""
    out = copy.deepcopy(body)
    for op in ops:
        *parents, last = [_unescape(t) for t in op["path"].split("/")[1:]]
        node = out
        for token in parents:
            if token not in node:
                raise PermanentError(f"Kubernetes rejected the request: no {op['path']}")
            node = node[token]
        if op["op"] == "add":
            node[last] = copy.deepcopy(op["value"])
        elif op["op"] == "remove":
            if last not in node:
                raise PermanentError(f"Kubernetes rejected the request: no {op['path']}")
            del node[last]
        elif op["op"] == "test" and node.get(last) != op["value"]:
            raise PermanentError("Kubernetes rejected the request: test failed")
    return out


@dataclass
class GitOpsCluster:
    objects: dict[tuple[str, str, str, str], Body] = field(default_factory=dict)
    deployments: dict[tuple[str, str], Body] = field(default_factory=dict)
    #: (verb, plural) pairs RBAC refuses.
    refused: set[tuple[str, str]] = field(default_factory=set)
    patches: list[tuple[str, list[Body], bool]] = field(default_factory=list)

    def put(self, api: str, plural: str, body: Body) -> Body:
        meta = body["metadata"]
        self.objects[(api, meta["namespace"], plural, meta["name"])] = body
        return body

    def get_custom(self, api: str, namespace: str, plural: str, name: str) -> Body | None:
        if ("get", plural) in self.refused:
            raise Forbidden(f'{plural}.x is forbidden: cannot get resource "{plural}"')
        found = self.objects.get((api, namespace, plural, name))
        return copy.deepcopy(found) if found is not None else None

    def json_patch_custom(
        self, api: str, namespace: str, plural: str, name: str, ops: list[Body], dry_run: bool
    ) -> Body:
        if ("patch", plural) in self.refused:
            raise Forbidden(f'cannot patch resource "{plural}"')
        key = (api, namespace, plural, name)
        patched = apply_json_patch(self.objects[key], ops)
        self.patches.append((name, ops, dry_run))
        if not dry_run:
            self.objects[key] = patched
        return patched

    def get_deployment(self, namespace: str, name: str) -> Body:
        return self.deployments[(namespace, name)]

    # An Argo Rollout and its ReplicaSets, as the argo-rollouts strategy reads them.
    rollouts: dict[tuple[str, str], Body] = field(default_factory=dict)
    replica_sets: list[Body] = field(default_factory=list)

    def get_rollout(self, namespace: str, name: str) -> Body:
        return copy.deepcopy(self.rollouts[(namespace, name)])

    def list_replica_sets(self, namespace: str, label_selector: str) -> list[Body]:
        return self.replica_sets

    def list_analysis_runs(self, namespace: str, label_selector: str = "") -> list[Body]:
        return []


def kustomization(name: str = "apps", **spec: Any) -> Body:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": "flux-system"},
        "spec": {
            "interval": "1m0s",
            "path": "./apps",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "apps"},
            **spec,
        },
        "status": {"lastAppliedRevision": "main@sha1:bad0000"},
    }


def application(name: str = "web", sync_policy: Body | None = None) -> Body:
    spec: Body = {
        "project": "default",
        "source": {"repoURL": "https://git.example/apps.git", "path": "web"},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": "prod"},
    }
    if sync_policy is not None:
        spec["syncPolicy"] = sync_policy
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": spec,
        "status": {"sync": {"status": "OutOfSync", "revision": "abc123"}},
    }


def deployment(name: str = "web", labels: dict[str, str] | None = None, **annotations: str) -> Body:
    return {
        "metadata": {
            "name": name,
            "namespace": "prod",
            "labels": labels or {},
            "annotations": dict(annotations),
        },
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "web:1.1"}]}}},
    }


FLUX_LABELS = {
    "kustomize.toolkit.fluxcd.io/name": "apps",
    "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
}


@pytest.fixture
def gitops_cluster() -> GitOpsCluster:
    return GitOpsCluster()
