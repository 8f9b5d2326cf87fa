"""A Helm release on the real control plane: its history read from the release
Secrets agrees with `helm history`, a rollback skips failed revisions, and a
release stuck in pending-upgrade is refused with a fix that works.

The chart (charts/todo-app) is one Deployment; the test bed's kubelet makes
its pods Ready unless the image tag contains "broken", in which case they
crash-loop and `helm upgrade --wait` fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from bot.helm_history import (
    read_release_history,
    release_deployments,
    release_secret_name,
)
from bot.helm_releases import (
    HelmRollbackFailed,
    ReleasePending,
    helm_rollback,
    plan_release_rollback,
)
from bot.kube import Kube
from bot.rollout import RolloutPhase, watch_rollout
from testbed import binaries
from testbed.controlplane import ControlPlane

pytestmark = pytest.mark.cluster

CHART = Path(__file__).resolve().parent / "charts" / "todo-app"
RELEASE = "todo-app"
IMAGE = "registry.example/todo-backend"

Helm = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def helm_binary() -> str:
    return str(binaries.testbed_binaries() / "helm")


@pytest.fixture
def helm(
    control_plane: ControlPlane,
    helm_binary: str,
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Helm:
    """Runs `helm … -n NAMESPACE` as the admin; helm's own state stays in tmp_path."""
    for kind in ("CACHE", "CONFIG", "DATA"):
        # Set in this process too, so the helm that bot.helm_releases starts inherits it.
        monkeypatch.setenv(f"HELM_{kind}_HOME", str(tmp_path / f"helm-{kind.lower()}"))
    monkeypatch.setenv("KUBECONFIG", str(control_plane.kubeconfig))

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [helm_binary, *args, "--namespace", namespace],
            capture_output=True,
            text=True,
            env=dict(os.environ),
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stderr}")
        return result

    return run


@pytest.fixture
def chart_version(tmp_path: Path) -> Callable[[str, str], str]:
    """The test chart as version `version` of todo-app, shipping app `app_version`."""

    def make(version: str, app_version: str) -> str:
        folder = tmp_path / f"todo-app-{version}"
        if not folder.exists():
            shutil.copytree(CHART, folder)
            meta = yaml.safe_load((folder / "Chart.yaml").read_text())
            meta.update(version=version, appVersion=app_version)
            (folder / "Chart.yaml").write_text(yaml.safe_dump(meta))
        return str(folder)

    return make


def helm_history(helm: Helm) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = json.loads(helm("history", RELEASE, "-o", "json").stdout)
    return rows


def image_of(kube: Kube, namespace: str) -> str:
    deployment = kube.get_deployment(namespace, "todo-backend")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return str(container["image"])


def test_rollback_returns_to_the_last_good_revision_past_failed_upgrades(
    helm, chart_version, kube, namespace, control_plane, helm_binary
):
    helm("install", RELEASE, chart_version("0.1.0", "1.0.0"), "--set", "tag=1.0.0", "--wait")
    helm("upgrade", RELEASE, chart_version("0.2.0", "1.1.0"), "--set", "tag=1.1.0", "--wait")
    broken = chart_version("0.3.0", "1.2.0")
    crashing = helm(
        *("upgrade", RELEASE, broken, "--set", "tag=1.2.0-broken", "--wait", "--timeout", "20s"),
        check=False,
    )
    assert crashing.returncode != 0 and "context deadline exceeded" in crashing.stderr
    # Rejected by the apiserver: fails at once, and is recorded as failed all the same.
    rejected = helm(
        *("upgrade", RELEASE, broken, "--set", "tag=1.2.0-broken", "--set", "replicas=-1"),
        check=False,
    )
    assert rejected.returncode != 0 and "spec.replicas" in rejected.stderr

    history = read_release_history(kube, namespace, RELEASE)
    assert [
        {
            "revision": r.number,
            "updated": r.updated,
            "status": r.status,
            "chart": r.chart,
            "app_version": r.app_version,
            "description": r.description,
        }
        for r in history
    ] == helm_history(helm)
    assert [r.status for r in history] == ["superseded", "deployed", "failed", "failed"]
    assert [r.deployments[0].images for r in history] == [
        (f"backend={IMAGE}:1.0.0",),
        (f"backend={IMAGE}:1.1.0",),
        (f"backend={IMAGE}:1.2.0-broken",),
        (f"backend={IMAGE}:1.2.0-broken",),
    ]

    plan = plan_release_rollback(kube, namespace, RELEASE)
    # `helm rollback todo-app 0` would take revision 3, which failed.
    assert (plan.current.number, plan.target.number) == (4, 2)
    assert plan.changes == (
        "chart todo-app-0.3.0 → todo-app-0.2.0",
        "app version 1.2.0 → 1.1.0",
        f"todo-backend: backend {IMAGE}:1.2.0-broken → {IMAGE}:1.1.0",
        "values differ: replicas, tag",
    )

    new = helm_rollback(
        plan,
        source=kube,
        timeout_seconds=60,
        helm=helm_binary,
        kubeconfig=str(control_plane.kubeconfig),
    )
    assert (new.number, new.status, new.description) == (5, "deployed", "Rollback to 2")
    assert new.chart == "todo-app-0.2.0" and new.app_version == "1.1.0"
    rows = helm_history(helm)
    assert [row["status"] for row in rows] == [
        "superseded",
        "superseded",
        "failed",
        "failed",
        "deployed",
    ]

    assert release_deployments(kube, namespace, RELEASE) == ["todo-backend"]
    assert image_of(kube, namespace) == f"{IMAGE}:1.1.0"
    states = list(watch_rollout(kube, namespace, "todo-backend", timeout=60))
    assert states[-1].phase is RolloutPhase.COMPLETE
    assert states[-1].available == 2


def test_a_failed_helm_rollback_reports_helms_error_and_records_a_failed_revision(
    helm, chart_version, kube, namespace, control_plane, helm_binary
):
    chart = chart_version("0.1.0", "1.0.0")
    helm("install", RELEASE, chart, "--set", "tag=1.0.0", "--wait")
    # Without --wait helm calls a crash-looping release deployed: a good-looking bad revision.
    helm("upgrade", RELEASE, chart, "--set", "tag=2.0.0-broken")
    helm("upgrade", RELEASE, chart, "--set", "tag=2.1.0", "--wait")

    plan = plan_release_rollback(kube, namespace, RELEASE, revision=2)
    assert plan.target.status == "superseded"
    with pytest.raises(HelmRollbackFailed) as caught:
        helm_rollback(
            plan,
            source=kube,
            timeout_seconds=5,
            helm=helm_binary,
            kubeconfig=str(control_plane.kubeconfig),
        )
    assert "context deadline exceeded" in caught.value.stderr
    assert f"rollback {RELEASE} 2 --namespace {namespace} --wait --timeout 5s" in str(caught.value)

    history = read_release_history(kube, namespace, RELEASE)
    assert [(r.number, r.status) for r in history][-2:] == [(3, "deployed"), (4, "failed")]
    # The cluster now runs what the failed revision 4 applied; by default rollbot
    # goes back to revision 3, still marked deployed.
    assert plan_release_rollback(kube, namespace, RELEASE).target.number == 3


def wait_for_pending_secret(kube: Kube, namespace: str, revision: int) -> None:
    name = release_secret_name(RELEASE, revision)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for secret in kube.list_secrets(namespace, f"owner=helm,name={RELEASE}"):
            labels = secret["metadata"].get("labels") or {}
            if secret["metadata"]["name"] == name and labels.get("status") == "pending-upgrade":
                return
        time.sleep(0.2)
    raise AssertionError(f"helm never recorded {name} as pending-upgrade")


def test_a_release_stuck_in_pending_upgrade_is_refused_with_a_fix_that_works(
    helm, chart_version, kube, namespace, control_plane, helm_binary
):
    chart = chart_version("0.1.0", "1.0.0")
    helm("install", RELEASE, chart, "--set", "tag=1.0.0", "--wait")
    # An upgrade killed while it waits, as when a CI runner dies: revision 2 stays pending.
    upgrade = subprocess.Popen(
        [helm_binary, "upgrade", RELEASE, chart, "-n", namespace, "--set", "tag=1.1.0-broken"]
        + ["--wait", "--timeout", "120s"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_pending_secret(kube, namespace, 2)
    finally:
        upgrade.kill()
        upgrade.wait()

    blocked = helm("upgrade", RELEASE, chart, "--set", "tag=1.1.0", check=False)
    assert "another operation (install/upgrade/rollback) is in progress" in blocked.stderr

    stuck = release_secret_name(RELEASE, 2)
    with pytest.raises(ReleasePending) as caught:
        plan_release_rollback(kube, namespace, RELEASE)
    message = str(caught.value)
    assert "stuck in pending-upgrade at revision 2" in message
    assert f"`helm rollback {RELEASE} 1 -n {namespace}`" in message
    assert f"`kubectl delete secret {stuck} -n {namespace}`" in message
    assert kube.core.read_namespaced_secret(stuck, namespace).metadata.name == stuck

    # The first fix offered works: the release takes upgrades again.
    helm("rollback", RELEASE, "1", "--wait", "--timeout", "60s")
    assert [row["status"] for row in helm_history(helm)] == [
        "superseded",
        "pending-upgrade",
        "deployed",
    ]
    assert image_of(kube, namespace) == f"{IMAGE}:1.0.0"
    # The pending revision stays in the history, below the current one: it is skipped.
    assert plan_release_rollback(kube, namespace, RELEASE).target.number == 1
    helm("upgrade", RELEASE, chart, "--set", "tag=1.1.0", "--wait")
