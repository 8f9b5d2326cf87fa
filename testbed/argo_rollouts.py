"""The real Argo Rollouts controller on the test control plane, its kubectl
plugin, and a metric endpoint the tests set.

`scripts/build-argo-rollouts.sh` builds `rollouts-controller` and
`kubectl-argo-rollouts` from the upstream Go module and copies the module's
CRDs beside them. `ArgoRollouts` installs those CRDs into a running
`ControlPlane` and runs the controller against it as kube-controller-manager
runs: admin kubeconfig, every namespace, leader election off, its healthz and
metrics servers on free ports, its log in the control plane's work folder.
The kubelet-playing process makes the pods Ready, so the ReplicaSets the
controller creates become available and canary steps really progress.

`WebMetric` is what the `web` metric provider of an AnalysisTemplate asks:

    GET /{key} → 200 {"key": KEY, "value": V}   (V the test's value, `default` if unset)
    GET /{key} → 500 when the test made the key fail (the measurement errors)

so `successCondition: result >= 0.95` with `jsonPath: "{$.value}"` passes or
fails as the test chose. A test gives each Rollout its own key.

    python -m testbed.argo_rollouts    # a control plane with the controller, until Ctrl-C
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote, unquote, urlsplit

from testbed.binaries import argo_rollouts_binaries
from testbed.controlplane import ControlPlane, ControlPlaneError, free_port
from testbed.service import LocalService, QuietHTTPServer, ThreadedHttpService

CONTROLLER_READY = "Started controller"  # logged once its informers have synced


class WebMetric(ThreadedHttpService):
    """The endpoint of the `web` metric provider: one value per key, set by the test."""

    def __init__(self, default: float = 1.0) -> None:
        self.default = default
        self.values: dict[str, float] = {}
        self.failing: dict[str, int] = {}
        #: How many times each key was asked for: proof that an analysis really ran.
        self.requests: dict[str, int] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url_for(self, key: str) -> str:
        return f"{self.url}/{quote(key, safe='')}"

    def set(self, key: str, value: float) -> None:
        self.failing.pop(key, None)
        self.values[key] = value

    def fail(self, key: str, status: int = 500) -> None:
        """Answer `status` for this key: the analysis' measurements end in Error."""
        self.failing[key] = status

    def _make_server(self) -> ThreadingHTTPServer:
        metric = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                key = unquote(urlsplit(self.path).path.lstrip("/"))
                metric.requests[key] = metric.requests.get(key, 0) + 1
                status = metric.failing.get(key)
                if status is not None:
                    body: dict[str, Any] = {"error": "the test made this metric fail"}
                else:
                    status = 200
                    body = {"key": key, "value": metric.values.get(key, metric.default)}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return QuietHTTPServer(("127.0.0.1", 0), Handler)


@dataclass
class ArgoRollouts(LocalService):
    """The Argo Rollouts controller (and its CRDs) on `plane`, which must be running."""

    plane: ControlPlane
    bin_dir: Path | None = None
    metric: WebMetric = field(default_factory=WebMetric)
    process: subprocess.Popen[bytes] | None = None
    healthz_port: int = 0

    @property
    def plugin(self) -> Path:
        """`kubectl-argo-rollouts`, built from the same module as the controller."""
        assert self.bin_dir is not None
        return self.bin_dir / "kubectl-argo-rollouts"

    @property
    def log_path(self) -> Path:
        assert self.plane.workdir is not None
        return self.plane.workdir / "argo-rollouts.log"

    def start(self) -> Self:
        if self.bin_dir is None:
            self.bin_dir = argo_rollouts_binaries()
        self.install_crds()
        self.metric.start()
        try:
            self._start_controller()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.metric.stop()

    def check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            raise ControlPlaneError(
                f"rollouts-controller is not running (exit {code}):\n{self._log_tail()}"
            )

    def install_crds(self) -> None:
        """The module's CRDs, server-side applied (the Rollout CRD is too big for the
        annotation a client-side apply writes), and waited for until Established.
        kubectl's own validation is off: it would fetch the OpenAPI schema and check
        3 MB of YAML against it, doubling the time; the apiserver checks them anyway."""
        assert self.bin_dir is not None and self.plane.bin_dir is not None
        kubectl = [str(self.plane.bin_dir / "kubectl"), f"--kubeconfig={self.plane.kubeconfig}"]
        crds = str(self.bin_dir / "crds")
        applied = self._kubectl(
            kubectl + ["apply", "--server-side", "--force-conflicts", "--validate=false"],
            ["-f", crds, "-o", "name"],
        )
        self._kubectl(kubectl + ["wait", "--for=condition=Established", "--timeout=60s"], applied)

    def _kubectl(self, command: list[str], args: list[str]) -> list[str]:
        result = subprocess.run(command + args, capture_output=True, text=True)
        if result.returncode != 0:
            raise ControlPlaneError(
                f"kubectl {command[2]} of the Argo Rollouts CRDs failed: {result.stderr.strip()}"
            )
        return result.stdout.split()

    def run_plugin(
        self, *args: str, namespace: str | None = None, user: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`kubectl argo rollouts ARGS` as admin (or as `user`, one of the plane's
        static tokens); the result, never raising on a non-zero exit."""
        kubeconfig = self.plane.kubeconfig if user is None else self.plane.kubeconfig_for(user)
        command = [str(self.plugin), *args, f"--kubeconfig={kubeconfig}"]
        if namespace is not None:
            command.append(f"--namespace={namespace}")
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    def _start_controller(self) -> None:
        assert self.bin_dir is not None
        self.healthz_port = free_port()
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                str(self.bin_dir / "rollouts-controller"),
                f"--kubeconfig={self.plane.kubeconfig}",
                "--leader-elect=false",
                f"--healthzPort={self.healthz_port}",
                f"--metricsPort={free_port()}",
                "--loglevel=info",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.check_alive()
            if CONTROLLER_READY in self.log_path.read_text(errors="replace") and self._healthy():
                return
            time.sleep(0.2)
        raise ControlPlaneError(
            f"rollouts-controller did not start within 60s:\n{self._log_tail()}"
        )

    def _healthy(self) -> bool:
        url = f"http://127.0.0.1:{self.healthz_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def _log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def main() -> None:
    with ControlPlane() as plane, ArgoRollouts(plane) as argo:
        print(f"control plane up: {plane.server}, Argo Rollouts controller running")
        print(f"export KUBECONFIG={plane.kubeconfig}")
        print(f"plugin: {argo.plugin}; web metric: {argo.metric.url}/KEY")
        print(f"logs in {plane.workdir}; Ctrl-C to stop", flush=True)
        try:
            while True:
                time.sleep(1)
                plane.check_alive()
                argo.check_alive()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
