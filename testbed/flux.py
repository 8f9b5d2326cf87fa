"""Flux on the test control plane: the real source-controller and
kustomize-controller, built from their Go modules (`scripts/build-flux.sh`),
reconciling workloads from Git repositories served over HTTP on loopback
(`testbed.git_http`). helm-controller is not here: the Go module proxy does not
serve it, so the HelmRelease path has no real controller to test against.

`FluxControllers` installs the CRDs and runs both controllers against the test
apiserver; `Flux` is what a test holds: the controllers, a Git server, and the
calls a test makes (a GitRepository and a Kustomization for a namespace, a
commit, a reconcile request, a wait until the Kustomization is Ready at a
revision). `Flux.deploy_app` does all of it for one Deployment.

    python -m testbed.flux     # a control plane with Flux, up until Ctrl-C
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from kubernetes import client, config

from testbed.binaries import REPO, BuildError
from testbed.controlplane import ControlPlaneError, free_port
from testbed.git_http import GitRepo, GitServer
from testbed.service import LocalService

Body = dict[str, Any]
BUILD_SCRIPT = REPO / "scripts" / "build-flux.sh"
CONTROLLERS = ("source-controller", "kustomize-controller")
#: Where the controllers think they run (events and SOPS settings would live there).
RUNTIME_NAMESPACE = "flux-system"
SOURCE = ("source.toolkit.fluxcd.io", "v1", "gitrepositories")
KUSTOMIZE = ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations")
#: The annotation `flux reconcile` sets: a new value makes the controller act now.
RECONCILE_ANNOTATION = "reconcile.fluxcd.io/requestedAt"


class FluxError(RuntimeError):
    """Flux could not be built or started, or did not reach the state a test waited for."""


def flux_assets() -> Path:
    """The folder holding both controllers, crds/flux and crds/argocd, built if needed."""
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, stderr=sys.stderr, text=True
    )
    if result.returncode != 0:
        raise BuildError(
            f"building Flux failed (exit {result.returncode}); see the output of {BUILD_SCRIPT}"
        )
    folder = Path(result.stdout.strip().splitlines()[-1])
    missing = [b for b in CONTROLLERS if not (folder / b).exists()]
    if missing:
        raise BuildError(f"Flux folder {folder} lacks {', '.join(missing)}")
    return folder


def install_crds(kubectl: Path, kubeconfig: Path, folder: Path) -> None:
    """Apply every CRD in `folder` and wait until the apiserver serves them."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(kubectl), *args], env=env, capture_output=True, text=True, check=False
        )

    applied = run("apply", "--server-side", "--force-conflicts", "-f", str(folder))
    if applied.returncode != 0:
        raise FluxError(f"kubectl apply of the CRDs in {folder}: {applied.stderr.strip()}")
    deadline = time.monotonic() + 60
    while True:
        # A CRD just created has no conditions yet, and `kubectl wait` fails on that.
        waited = run("wait", "--for=condition=Established", "--timeout=30s", "-f", str(folder))
        if waited.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise FluxError(f"the CRDs in {folder} not established: {waited.stderr.strip()}")
        time.sleep(0.5)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class FluxControllers(LocalService):
    """source-controller (with its artifact server) and kustomize-controller, watching
    every namespace, leader election off, each on its own free loopback ports."""

    kubeconfig: Path
    kubectl: Path
    assets: Path | None = None
    workdir: Path | None = None
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    artifact_port: int = 0

    def start(self) -> Self:
        if self.assets is None:
            self.assets = flux_assets()
        self.workdir = Path(tempfile.mkdtemp(prefix="rollbot-flux-"))
        try:
            install_crds(self.kubectl, self.kubeconfig, self.assets / "crds" / "flux")
            (self.workdir / "artifacts").mkdir()
            self.artifact_port = free_port()
            storage = f"127.0.0.1:{self.artifact_port}"
            self._start(
                "source-controller",
                [
                    f"--storage-path={self.workdir / 'artifacts'}",
                    f"--storage-addr={storage}",
                    f"--storage-adv-addr={storage}",
                ],
            )
            self._start("kustomize-controller", [])
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            proc = self.processes.pop(name)
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self.workdir is not None and not os.environ.get("ROLLBOT_KEEP_TESTBED"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log(self, name: str) -> Path:
        assert self.workdir is not None
        return self.workdir / f"{name}.log"

    def check_alive(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                raise FluxError(f"{name} exited with {proc.returncode}:\n{_tail(self.log(name))}")

    def _start(self, name: str, extra: list[str]) -> None:
        assert self.assets is not None
        health = free_port()
        args = [
            str(self.assets / name),
            f"--health-addr=127.0.0.1:{health}",
            f"--metrics-addr=127.0.0.1:{free_port()}",
            "--enable-leader-election=false",
            "--watch-all-namespaces=true",
            "--events-addr=",
            "--log-level=info",
            *extra,
        ]
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "RUNTIME_NAMESPACE": "flux-system"}
        with self.log(name).open("wb") as log:
            self.processes[name] = subprocess.Popen(
                args,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                url = f"http://127.0.0.1:{health}/readyz"
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise FluxError(f"{name} was not ready within 60s:\n{_tail(self.log(name))}")


def raw_body(obj: object) -> Body:
    """The custom-objects client's answer: a raw dict (typed as object)."""
    if not isinstance(obj, dict):
        raise TypeError(f"expected an object's body, got {type(obj).__name__}")
    return obj


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ready(body: Body) -> Body | None:
    status = body.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            return dict(cond)
    return None


def deployment_manifest(name: str, image: str, replicas: int = 1) -> str:
    """A plain Deployment as it sits in Git (the Kustomization sets its namespace)."""
    return (
        "apiVersion: apps/v1\nkind: Deployment\n"
        f"metadata:\n  name: {name}\n  labels:\n    app: {name}\n"
        f"spec:\n  replicas: {replicas}\n  revisionHistoryLimit: 10\n"
        f"  selector:\n    matchLabels:\n      app: {name}\n"
        f"  template:\n    metadata:\n      labels:\n        app: {name}\n"
        f"    spec:\n      containers:\n      - name: {name}\n        image: {image}\n"
    )


@dataclass
class Flux(LocalService):
    """What the `flux` fixture yields: Flux's controllers, a Git server, and the calls a
    test makes on GitRepositories and Kustomizations."""

    kubeconfig: Path
    kubectl: Path
    assets: Path | None = None
    git_push_token: str | None = None
    controllers: FluxControllers | None = None
    git: GitServer = field(init=False)
    api: client.CustomObjectsApi = field(init=False)

    def start(self) -> Self:
        self.git = GitServer(push_token=self.git_push_token)
        self.git.start()
        try:
            self.controllers = FluxControllers(self.kubeconfig, self.kubectl, self.assets)
            self.controllers.start()
        except BaseException:
            self.git.stop()
            raise
        api_client = config.new_client_from_config(config_file=str(self.kubeconfig))
        self.api = client.CustomObjectsApi(api_client)
        return self

    def stop(self) -> None:
        if self.controllers is not None:
            self.controllers.stop()
        self.git.stop()

    # -- objects ---------------------------------------------------------------

    def create_git_repository(
        self, namespace: str, name: str, repo: GitRepo, interval: str = "5s"
    ) -> Body:
        """A GitRepository following `repo`'s branch, polled every `interval`."""
        body = {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"url": repo.url, "ref": {"branch": repo.branch}, "interval": interval},
        }
        group, version, plural = SOURCE
        return raw_body(
            self.api.create_namespaced_custom_object(group, version, namespace, plural, body)
        )

    def create_kustomization(
        self,
        namespace: str,
        name: str,
        *,
        source: str,
        path: str,
        interval: str = "5s",
        target_namespace: str | None = None,
        suspend: bool = False,
    ) -> Body:
        """A Kustomization applying `path` of the GitRepository `source` (same namespace)
        into `target_namespace` (default: its own), every `interval`, pruning."""
        body = {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "interval": interval,
                "path": path,
                "prune": True,
                "suspend": suspend,
                "targetNamespace": target_namespace or namespace,
                "sourceRef": {"kind": "GitRepository", "name": source},
            },
        }
        group, version, plural = KUSTOMIZE
        return raw_body(
            self.api.create_namespaced_custom_object(group, version, namespace, plural, body)
        )

    def get(self, namespace: str, name: str, kind: str = "Kustomization") -> Body:
        group, version, plural = KUSTOMIZE if kind == "Kustomization" else SOURCE
        return raw_body(
            self.api.get_namespaced_custom_object(group, version, namespace, plural, name)
        )

    def patch(self, namespace: str, name: str, patch: Body, kind: str = "Kustomization") -> Body:
        group, version, plural = KUSTOMIZE if kind == "Kustomization" else SOURCE
        return raw_body(
            self.api.patch_namespaced_custom_object(group, version, namespace, plural, name, patch)
        )

    def set_suspended(self, namespace: str, name: str, suspended: bool) -> Body:
        """`flux suspend|resume kustomization`: spec.suspend set (the controller's own
        resume also asks for a reconcile, as `flux resume` does)."""
        body = self.patch(namespace, name, {"spec": {"suspend": suspended}})
        if not suspended:
            self.request_reconcile(namespace, name)
        return body

    def request_reconcile(self, namespace: str, name: str, kind: str = "Kustomization") -> str:
        """`flux reconcile`: the requestedAt annotation set to now; the value set, which
        the controller echoes in status.lastHandledReconcileAt once it has acted."""
        token = _now()
        self.patch(
            namespace, name, {"metadata": {"annotations": {RECONCILE_ANNOTATION: token}}}, kind
        )
        return token

    def revision(self, repo: GitRepo, sha: str | None = None) -> str:
        """The revision string Flux reports for a commit: `main@sha1:<sha>`."""
        return f"{repo.branch}@sha1:{sha or repo.head()}"

    def wait_ready(
        self,
        namespace: str,
        name: str,
        *,
        kind: str = "Kustomization",
        revision: str | None = None,
        handled: str | None = None,
        timeout: float = 60,
    ) -> Body:
        """Wait until the object is Ready for its current generation and, if given, at
        `revision` (lastAppliedRevision, or the artifact's for a GitRepository) and
        having handled the reconcile request `handled`; the object, or FluxError."""
        deadline = time.monotonic() + timeout
        body: Body = {}
        while time.monotonic() < deadline:
            assert self.controllers is not None
            self.controllers.check_alive()
            body = self.get(namespace, name, kind)
            status = body.get("status") or {}
            ready = _ready(body)
            at = (
                status.get("lastAppliedRevision")
                if kind == "Kustomization"
                else (status.get("artifact") or {}).get("revision")
            )
            if (
                ready is not None
                and ready.get("status") == "True"
                and status.get("observedGeneration") == body["metadata"]["generation"]
                and (revision is None or at == revision)
                and (handled is None or status.get("lastHandledReconcileAt") == handled)
            ):
                return body
            time.sleep(0.25)
        raise FluxError(
            f"{kind} {namespace}/{name} not Ready at {revision or 'any revision'} within "
            f"{timeout:g}s; status: {body.get('status')}"
        )

    def sync(self, namespace: str, name: str, repo: GitRepo, timeout: float = 60) -> str:
        """`flux reconcile kustomization --with-source`: the source fetches the branch's
        head now, the Kustomization applies it; the revision applied."""
        revision = self.revision(repo)
        handled = self.request_reconcile(namespace, name, "GitRepository")
        self.wait_ready(
            namespace,
            name,
            kind="GitRepository",
            revision=revision,
            handled=handled,
            timeout=timeout,
        )
        handled = self.request_reconcile(namespace, name)
        self.wait_ready(namespace, name, revision=revision, handled=handled, timeout=timeout)
        return revision

    # -- one app -----------------------------------------------------------------

    def deploy_app(
        self,
        namespace: str,
        name: str = "web",
        *,
        image: str = "registry.local/web:v1",
        interval: str = "5s",
        replicas: int = 1,
        timeout: float = 90,
    ) -> FluxApp:
        """A Deployment `name` in `namespace`, reconciled by Flux from Git: a repository
        `{namespace}-{name}` holding `apps/{name}/deployment.yaml`, a GitRepository and a
        Kustomization both called `name` in `namespace`; returned once it is applied
        and the Deployment has rolled out."""
        repo = self.git.create_repo(f"{namespace}-{name}")
        app = FluxApp(self, namespace, name, repo, f"apps/{name}", replicas)
        app.commit_image(image, f"{name}: deploy {image}")
        self.create_git_repository(namespace, name, repo, interval)
        self.create_kustomization(namespace, name, source=name, path=app.path, interval=interval)
        self.wait_ready(namespace, name, revision=self.revision(repo), timeout=timeout)
        app.wait_rolled_out(image, timeout)
        return app


@dataclass
class FluxApp:
    """One Deployment Flux reconciles from its own repository (see `Flux.deploy_app`)."""

    flux: Flux
    namespace: str
    name: str  # the Deployment's, the GitRepository's and the Kustomization's
    repo: GitRepo
    path: str
    replicas: int = 1

    @property
    def manifest_path(self) -> str:
        return f"{self.path}/deployment.yaml"

    def commit_image(self, image: str, message: str | None = None) -> str:
        """Commit the Deployment with `image` to Git (nothing applied yet); the sha."""
        text = deployment_manifest(self.name, image, self.replicas)
        return self.repo.commit({self.manifest_path: text}, message or f"{self.name}: {image}")

    def release(self, image: str, timeout: float = 90) -> str:
        """Commit `image`, have Flux apply it now and wait for the rollout; the revision."""
        self.commit_image(image)
        revision = self.flux.sync(self.namespace, self.name, self.repo, timeout)
        self.wait_rolled_out(image, timeout)
        return revision

    def deployment(self) -> Body:
        return raw_body(
            self.flux.api.get_namespaced_custom_object(
                "apps", "v1", self.namespace, "deployments", self.name
            )
        )

    def image(self) -> str:
        """The image the Deployment's template holds now."""
        return str(self.deployment()["spec"]["template"]["spec"]["containers"][0]["image"])

    def kustomization(self) -> Body:
        return self.flux.get(self.namespace, self.name)

    def wait_rolled_out(self, image: str, timeout: float = 90) -> None:
        """Wait until the Deployment runs `image` with every replica updated and ready."""
        deadline = time.monotonic() + timeout
        seen = ""
        while time.monotonic() < deadline:
            try:
                dep = self.deployment()
            except client.ApiException as err:
                if err.status != 404:
                    raise
                time.sleep(0.25)
                continue
            seen = str(dep["spec"]["template"]["spec"]["containers"][0]["image"])
            status = dep.get("status") or {}
            if (
                seen == image
                and status.get("observedGeneration") == dep["metadata"]["generation"]
                and status.get("updatedReplicas", 0) == self.replicas
                and status.get("readyReplicas", 0) == self.replicas
                and status.get("replicas", 0) == self.replicas
            ):
                return
            time.sleep(0.25)
        raise FluxError(
            f"Deployment {self.namespace}/{self.name} did not roll out {image} within "
            f"{timeout:g}s (it runs {seen or 'nothing'})"
        )


def main() -> None:
    from testbed.controlplane import ControlPlane

    with ControlPlane() as plane:
        assert plane.bin_dir is not None
        with Flux(plane.kubeconfig, plane.bin_dir / "kubectl") as flux:
            assert flux.controllers is not None and flux.controllers.workdir is not None
            print(f"control plane up: export KUBECONFIG={plane.kubeconfig}")
            print(f"Flux up (logs in {flux.controllers.workdir}); Git at {flux.git.base_url}")
            print("Ctrl-C to stop", flush=True)
            try:
                while True:
                    time.sleep(1)
                    plane.check_alive()
                    flux.controllers.check_alive()
            except KeyboardInterrupt:
                pass


if __name__ == "__main__":
    try:
        main()
    except (ControlPlaneError, FluxError, BuildError) as err:
        sys.exit(str(err))
