"""Argo CD at the API level: its Application CRD (from the argo-cd Go module, copied
by `scripts/build-flux.sh`) installed in the test control plane, and Applications
created as Argo CD's users write them. No Argo CD controller runs: its
gitops-engine does not resolve from the Go module proxy here, so nothing syncs;
what a test can check is what is recorded and changed on the Application (its
sync policy: automated, selfHeal, prune) and how a workload points at it.

A workload belongs to an Application by Argo CD's tracking annotation (the
default since Argo CD 3) or its older label, `app.kubernetes.io/instance`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from kubernetes import client, config

from testbed.flux import flux_assets, install_crds, raw_body
from testbed.service import LocalService

Body = dict[str, Any]
APPLICATION = ("argoproj.io", "v1alpha1", "applications")
TRACKING_ANNOTATION = "argocd.argoproj.io/tracking-id"
TRACKING_LABEL = "app.kubernetes.io/instance"


def tracking_id(
    app: str, kind: str, namespace: str, name: str, group: str = "apps", app_namespace: str = ""
) -> str:
    """The tracking annotation's value Argo CD writes on a resource it applied:
    `<app>:<group>/<kind>:<namespace>/<name>`; an Application outside Argo CD's own
    namespace is named `<app namespace>_<app>`."""
    owner = f"{app_namespace}_{app}" if app_namespace else app
    return f"{owner}:{group}/{kind}:{namespace}/{name}"


def sync_policy(automated: bool = True, self_heal: bool = True, prune: bool = True) -> Body:
    """A spec.syncPolicy as Argo CD's docs write it; automated=False gives manual sync."""
    if not automated:
        return {}
    return {"automated": {"prune": prune, "selfHeal": self_heal}}


@dataclass
class ArgoCd(LocalService):
    """The Application CRD installed; `create_application` and friends over it."""

    kubeconfig: Path
    kubectl: Path
    assets: Path | None = None
    api: client.CustomObjectsApi = field(init=False)

    def start(self) -> Self:
        if self.assets is None:
            self.assets = flux_assets()
        install_crds(self.kubectl, self.kubeconfig, self.assets / "crds" / "argocd")
        self.api = client.CustomObjectsApi(
            config.new_client_from_config(config_file=str(self.kubeconfig))
        )
        return self

    def stop(self) -> None:
        """The CRD stays: the control plane it lives in goes with its session."""

    def create_application(
        self,
        namespace: str,
        name: str,
        *,
        repo_url: str,
        path: str,
        destination_namespace: str | None = None,
        target_revision: str = "HEAD",
        policy: Body | None = None,
        project: str = "default",
    ) -> Body:
        """An Application deploying `path` of `repo_url` into `destination_namespace`
        (default: its own namespace) with the sync policy given (see `sync_policy`)."""
        spec: Body = {
            "project": project,
            "source": {"repoURL": repo_url, "path": path, "targetRevision": target_revision},
            "destination": {
                "server": "https://kubernetes.default.svc",
                "namespace": destination_namespace or namespace,
            },
        }
        if policy:
            spec["syncPolicy"] = policy
        body = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
        group, version, plural = APPLICATION
        return raw_body(
            self.api.create_namespaced_custom_object(group, version, namespace, plural, body)
        )

    def get_application(self, namespace: str, name: str) -> Body:
        group, version, plural = APPLICATION
        return raw_body(
            self.api.get_namespaced_custom_object(group, version, namespace, plural, name)
        )

    def patch_application(self, namespace: str, name: str, patch: Body) -> Body:
        """A JSON merge patch (None removes a field), as `kubectl patch --type merge`."""
        group, version, plural = APPLICATION
        return raw_body(
            self.api.patch_namespaced_custom_object(group, version, namespace, plural, name, patch)
        )
