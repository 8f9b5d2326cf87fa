"""A real, local Kubernetes control plane: etcd, kube-apiserver,
kube-controller-manager and a process that plays kubelet.

Used by the tests, `make demo` and the benchmarks. Every process listens on a
free loopback port and writes its log to the control plane's work folder, so a
failure to start says which component failed and shows the end of its log.

    python -m testbed.controlplane     # start one and keep it up until Ctrl-C
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from testbed.binaries import testbed_binaries
from testbed.kubelet import NODE_NAME
from testbed.service import LocalService

ADMIN_TOKEN_USER = "admin"


class ControlPlaneError(RuntimeError):
    """The control plane could not be built or started; the message says why."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class Credential:
    """A static token the apiserver accepts: tests use these to act as other users."""

    user: str
    token: str
    groups: tuple[str, ...] = ()


@dataclass
class ControlPlane(LocalService):
    bin_dir: Path | None = None
    workdir: Path | None = None
    #: Image tags matching this pattern crash-loop instead of becoming Ready.
    broken_pattern: str = "broken"
    extra_users: tuple[str, ...] = ("alice", "bob", "limited")
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    credentials: dict[str, Credential] = field(default_factory=dict)
    api_port: int = 0
    _own_workdir: bool = False
    _apiserver_args: list[str] = field(default_factory=list)

    # -- lifecycle -------------------------------------------------------------

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def kubeconfig(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "kubeconfig"

    def kubeconfig_for(self, user: str) -> Path:
        """A kubeconfig that authenticates as `user` (one of the static tokens)."""
        assert self.workdir is not None
        path = self.workdir / f"kubeconfig-{user}"
        if not path.exists():
            self._write_kubeconfig(path, self.credentials[user].token, user)
        return path

    def start(self) -> Self:
        if self.bin_dir is None:
            self.bin_dir = testbed_binaries()
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="rollbot-k8s-"))
            self._own_workdir = True
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._start_etcd()
            self._start_apiserver()
            self._write_kubeconfig(
                self.kubeconfig, self.credentials[ADMIN_TOKEN_USER].token, ADMIN_TOKEN_USER
            )
            self._start_controller_manager()
            self._start_kubelet()
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
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if (
            self._own_workdir
            and self.workdir is not None
            and not os.environ.get("ROLLBOT_KEEP_TESTBED")
        ):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def check_alive(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                raise ControlPlaneError(
                    f"{name} exited with code {proc.returncode}:\n{_tail(self._log(name))}"
                )

    # -- components ------------------------------------------------------------

    def _log(self, name: str) -> Path:
        assert self.workdir is not None
        return self.workdir / f"{name}.log"

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = self._log(name).open("wb")
        proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.processes[name] = proc
        return proc

    def _wait_http(
        self,
        name: str,
        url: str,
        timeout: float,
        token: str | None = None,
        ready: Callable[[bytes], bool] = lambda body: True,
    ) -> None:
        context = ssl._create_unverified_context()  # the apiserver's self-signed cert
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            self.check_alive()
            request = urllib.request.Request(url)
            if token:
                request.add_header("Authorization", f"Bearer {token}")
            try:
                with urllib.request.urlopen(request, timeout=2, context=context) as response:
                    if response.status == 200 and ready(response.read()):
                        return
            except (urllib.error.URLError, OSError) as err:
                last = str(err)
            time.sleep(0.2)
        raise ControlPlaneError(
            f"{name} did not become ready within {timeout:g}s ({last}):\n{_tail(self._log(name))}"
        )

    def _start_etcd(self) -> None:
        assert self.workdir is not None and self.bin_dir is not None
        client_port, peer_port = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client_port}"
        peer = f"http://127.0.0.1:{peer_port}"
        self._spawn(
            "etcd",
            [
                str(self.bin_dir / "etcd"),
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=default={peer}",
                "--unsafe-no-fsync",  # a throwaway test store: speed over durability
                "--log-level=warn",
            ],
        )
        self._wait_http("etcd", f"{self.etcd_url}/health", 30)

    def _start_apiserver(self) -> None:
        assert self.workdir is not None and self.bin_dir is not None
        key = self.workdir / "sa.key"
        subprocess.run(
            ["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True
        )
        users = [Credential(ADMIN_TOKEN_USER, secrets.token_hex(16), ("system:masters",))]
        users += [Credential(u, secrets.token_hex(16)) for u in self.extra_users]
        lines = []
        for cred in users:
            self.credentials[cred.user] = cred
            groups = f',"{",".join(cred.groups)}"' if cred.groups else ""
            lines.append(f"{cred.token},{cred.user},{cred.user}-uid{groups}")
        tokens = self.workdir / "tokens.csv"
        tokens.write_text("\n".join(lines) + "\n")
        self.api_port = free_port()
        self._apiserver_args = [
            str(self.bin_dir / "kube-apiserver"),
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.api_port}",
            f"--cert-dir={self.workdir / 'certs'}",
            f"--token-auth-file={tokens}",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={key}",
            f"--service-account-signing-key-file={key}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--disable-admission-plugins=ServiceAccount",
            "--allow-privileged=true",
            "--enable-priority-and-fairness=false",
            # The fake kubelet's node is reachable at its InternalIP only; with no
            # --kubelet-certificate-authority its self-signed certificate is not verified.
            "--kubelet-preferred-address-types=InternalIP",
            "--v=0",
        ]
        self._spawn("kube-apiserver", self._apiserver_args)
        self._wait_http(
            "kube-apiserver",
            f"{self.server}/readyz",
            90,
            token=self.credentials[ADMIN_TOKEN_USER].token,
        )

    def restart_apiserver(self, down_seconds: float) -> None:
        """Kill kube-apiserver (SIGKILL, as a crash or a node loss would), keep it down
        for `down_seconds`, and start it again as it was (same port, tokens, etcd)."""
        proc = self.processes.pop("kube-apiserver")
        proc.kill()
        proc.wait()
        time.sleep(down_seconds)
        self._spawn("kube-apiserver", self._apiserver_args)
        self._wait_http(
            "kube-apiserver",
            f"{self.server}/readyz",
            90,
            token=self.credentials[ADMIN_TOKEN_USER].token,
        )

    def _write_kubeconfig(self, path: Path, token: str, user: str) -> None:
        assert self.workdir is not None
        # The apiserver's self-signed certificate (written to --cert-dir) is its own CA.
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: rollbot-testbed\n  cluster:\n    server: {self.server}\n"
            f"    certificate-authority: {self.workdir / 'certs' / 'apiserver.crt'}\n"
            f"users:\n- name: {user}\n  user:\n    token: {token}\n"
            f"contexts:\n- name: {user}@rollbot-testbed\n  context:\n"
            f"    cluster: rollbot-testbed\n    user: {user}\n    namespace: default\n"
            f"current-context: {user}@rollbot-testbed\n"
        )

    def _start_controller_manager(self) -> None:
        assert self.bin_dir is not None
        self._spawn(
            "kube-controller-manager",
            [
                str(self.bin_dir / "kube-controller-manager"),
                f"--kubeconfig={self.kubeconfig}",
                "--leader-elect=false",
                "--use-service-account-credentials=false",
                "--secure-port=0",
                # endpoint: fills each Service's Endpoints from its Ready pods (they need a
                # node name, which the fake kubelet's binding gives them). job and
                # ttl-after-finished: Jobs' status is the real controller's, their pods run to
                # completion on the fake kubelet.
                "--controllers=deployment,replicaset,garbagecollector,namespace,serviceaccount,"
                "endpoint,job,ttl-after-finished",
                "--concurrent-deployment-syncs=10",
                "--concurrent-replicaset-syncs=10",
                "--v=0",
            ],
        )
        time.sleep(0.5)
        self.check_alive()

    def _start_kubelet(self) -> None:
        assert self.workdir is not None
        self._spawn(
            "kubelet",
            [
                sys.executable,
                "-m",
                "testbed.kubelet",
                f"--kubeconfig={self.kubeconfig}",
                f"--broken-pattern={self.broken_pattern}",
                f"--cert-dir={self.workdir / 'kubelet'}",
            ],
        )

        def serving(body: bytes) -> bool:
            status = json.loads(body).get("status", {})
            return bool(status.get("daemonEndpoints", {}).get("kubeletEndpoint", {}).get("Port"))

        # Registered with its API port: from now on pods get scheduled and logs answer.
        self._wait_http(
            "kubelet",
            f"{self.server}/api/v1/nodes/{NODE_NAME}",
            30,
            token=self.credentials[ADMIN_TOKEN_USER].token,
            ready=serving,
        )


def main() -> None:
    with ControlPlane() as plane:
        print(f"control plane up: {plane.server}")
        print(f"export KUBECONFIG={plane.kubeconfig}")
        print(f"logs in {plane.workdir}; Ctrl-C to stop", flush=True)
        try:
            while True:
                time.sleep(1)
                plane.check_alive()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
