"""The GitOps test bed, and the problem it is for: in a cluster that Flux reconciles
from Git, a plain rollback does not last.

A Deployment that a Flux Kustomization applies from Git is rolled back with
`kubectl rollout undo`; the real kustomize-controller puts Git's version back at
its next interval. With the Kustomization suspended, the undo holds. These run
against the real source- and kustomize-controller (testbed/flux.py) and a Git
repository served over HTTP by `git http-backend` (testbed/git_http.py).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from testbed.argocd import ArgoCd, sync_policy
from testbed.controlplane import ControlPlane
from testbed.flux import Flux, FluxApp
from testbed.git_http import TEST_AUTHOR, GitServer, GitServerError, git
from tests.integration.conftest import FLUX_GIT_TOKEN

#: The Kustomizations' interval here, in seconds: short, so a test sees several.
INTERVAL = 5
GOOD, BAD = "registry.local/web:v1", "registry.local/web:v2"


def kubectl(plane: ControlPlane, *args: str) -> str:
    assert plane.bin_dir is not None
    result = subprocess.run(
        [str(plane.bin_dir / "kubectl"), *args],
        env={**os.environ, "KUBECONFIG": str(plane.kubeconfig)},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def image_managers(app: FluxApp) -> set[str]:
    """The field managers owning the container's image (from managedFields)."""
    owners = set()
    for entry in app.deployment()["metadata"].get("managedFields") or []:
        template = entry.get("fieldsV1", {}).get("f:spec", {}).get("f:template", {})
        containers = template.get("f:spec", {}).get("f:containers", {})
        if any("f:image" in fields for fields in containers.values()):
            owners.add(str(entry["manager"]))
    return owners


def released_bad_version(flux: Flux, namespace: str) -> FluxApp:
    """v1 deployed by Flux, then v2 (the bad release) committed and applied."""
    app = flux.deploy_app(namespace, "web", image=GOOD, interval=f"{INTERVAL}s")
    app.release(BAD)
    return app


def test_flux_puts_git_version_back_after_a_plain_rollout_undo(
    flux: Flux, control_plane: ControlPlane, namespace: str
) -> None:
    app = released_bad_version(flux, namespace)
    labels = app.deployment()["metadata"]["labels"]
    assert labels["kustomize.toolkit.fluxcd.io/name"] == "web"
    assert labels["kustomize.toolkit.fluxcd.io/namespace"] == namespace
    applied = app.kustomization()["status"]["lastAppliedRevision"]
    assert applied == flux.revision(app.repo)

    kubectl(control_plane, "rollout", "undo", "deployment/web", "-n", namespace)
    undone = time.monotonic()
    assert app.image() == GOOD, "the undo itself worked"

    # Flux puts Git's v2 back at its next reconciliation: within one interval (plus
    # the controller's jitter and a busy machine's slack), and no later.
    while app.image() == GOOD and time.monotonic() - undone < 3 * INTERVAL:
        time.sleep(0.2)
    reverted_after = time.monotonic() - undone
    assert app.image() == BAD, f"Flux did not revert the undo within {3 * INTERVAL}s"
    assert reverted_after <= 2 * INTERVAL + 2, f"reverted after {reverted_after:.1f}s"
    assert image_managers(app) == {"kustomize-controller"}
    # Drift corrected, not a new release: the same revision, Git unchanged.
    assert app.kustomization()["status"]["lastAppliedRevision"] == applied
    assert app.repo.read(app.manifest_path).count(BAD) == 1
    app.wait_rolled_out(BAD)


def test_undo_holds_while_the_kustomization_is_suspended(
    flux: Flux, control_plane: ControlPlane, namespace: str
) -> None:
    app = released_bad_version(flux, namespace)
    flux.set_suspended(namespace, "web", True)

    kubectl(control_plane, "rollout", "undo", "deployment/web", "-n", namespace)
    app.wait_rolled_out(GOOD)
    # Several intervals, a reconcile request among them: suspended, Flux does nothing.
    asked = flux.request_reconcile(namespace, "web")
    held_until = time.monotonic() + 4 * INTERVAL
    while time.monotonic() < held_until:
        assert app.image() == GOOD, "Flux reverted the undo while suspended"
        time.sleep(0.5)
    assert "kustomize-controller" not in image_managers(app), "the undo's image is kubectl's"
    assert app.kustomization()["status"]["lastHandledReconcileAt"] == asked, "it was asked"

    # Resumed, it brings the bad version back: what a Resume must warn about.
    flux.set_suspended(namespace, "web", False)
    app.wait_rolled_out(BAD, timeout=3 * INTERVAL + 30)


def test_git_server_takes_a_push_only_with_its_token(tmp_path: Path) -> None:
    with GitServer(push_token=FLUX_GIT_TOKEN) as server:
        repo = server.create_repo("apps")
        first = repo.commit({"app.yaml": "v1\n"}, "v1")
        clone = tmp_path / "clone"
        git("clone", "--quiet", repo.url, str(clone))
        assert (clone / "app.yaml").read_text() == "v1\n"
        (clone / "app.yaml").write_text("v0\n")
        git("commit", "--quiet", "-am", "rollback", cwd=clone, env=TEST_AUTHOR)

        with pytest.raises(GitServerError):
            git("push", "--quiet", "origin", "HEAD:refs/heads/rollback", cwd=clone)
        assert repo.branches() == ["main"]
        with_token = repo.url.replace("http://", f"http://rollbot:{FLUX_GIT_TOKEN}@")
        git("push", "--quiet", with_token, "HEAD:refs/heads/rollback", cwd=clone)
        assert repo.read("app.yaml", "rollback") == "v0\n"
        assert repo.head() == first


def test_argocd_application_keeps_its_sync_policy_and_lets_it_be_turned_off(
    argocd: ArgoCd, namespace: str
) -> None:
    policy = sync_policy(automated=True, self_heal=True, prune=False)
    argocd.create_application(
        namespace, "web", repo_url="http://127.0.0.1:1/apps.git", path="apps/web", policy=policy
    )
    stored = argocd.get_application(namespace, "web")
    assert stored["spec"]["syncPolicy"] == {"automated": {"prune": False, "selfHeal": True}}
    assert stored["spec"]["destination"]["namespace"] == namespace

    # Automated sync off, as a hold does it; the Application keeps the rest.
    turned_off = argocd.patch_application(namespace, "web", {"spec": {"syncPolicy": None}})
    assert "syncPolicy" not in turned_off["spec"]
    assert turned_off["spec"]["source"]["path"] == "apps/web"
