"""`make demo`: a broken release rolled back by rollbot on a local control plane.

It starts a real kube-apiserver and kube-controller-manager (built from source
on the first run), deploys `family-assistant` through three revisions, the last
of which crash-loops and misses its progress deadline, and then runs
`rollbot rollback` on it exactly as a person would from a terminal.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time

from rich.console import Console
from rich.rule import Rule

from testbed.controlplane import ControlPlane
from testbed.sample_app import SampleApp

NAMESPACE, APP = "homelab", "family-assistant"
REVISIONS = [
    ("ghcr.io/example/family-assistant:1.4.0", "deploy 1.4.0: calendar sync"),
    ("ghcr.io/example/family-assistant:1.5.0", "deploy 1.5.0: faster chat"),
    ("ghcr.io/example/family-assistant:1.6.0-broken", "deploy 1.6.0: new memory store"),
]


def main() -> int:
    console = Console(highlight=False)
    console.print(Rule("rollbot demo"))
    console.print(
        "Starting a local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager)."
    )
    console.print(
        "[dim]The first run builds them from the upstream Go modules: 10-25 minutes "
        "on 2 cores. Later runs start in seconds.[/]"
    )
    started = time.monotonic()
    with ControlPlane() as plane:
        console.print(f"control plane up in {time.monotonic() - started:.1f}s at {plane.server}")
        env = {**os.environ, "KUBECONFIG": str(plane.kubeconfig), "ROLLBOT_ACTOR": "demo-oncall"}
        from kubernetes import config as kconfig

        app = SampleApp(kconfig.new_client_from_config(str(plane.kubeconfig)), NAMESPACE, APP)
        app.ensure_namespace()
        console.print(Rule(f"Deploying {APP} through three revisions"))
        for number, (image, cause) in enumerate(REVISIONS, start=1):
            broken = number == len(REVISIONS)
            app.deploy(image, cause, progress_deadline=10)
            console.print(
                f"revision {number}: {image}"
                + (
                    "  [red](crash-loops: waiting for it to miss its 10s progress deadline)[/]"
                    if broken
                    else ""
                )
            )
            app.wait("deadline" if broken else "complete")

        def rollbot(*args: str) -> int:
            console.print(f"\n[bold]$ rollbot {shlex.join(args)}[/]", markup=True)
            return subprocess.call([sys.executable, "-m", "bot", *args], env=env)

        console.print(Rule("The release is broken: what does rollbot see?"))
        rollbot("status", APP, "-n", NAMESPACE, "--no-watch")
        rollbot("history", APP, "-n", NAMESPACE)
        console.print(Rule("Rolling back"))
        code = rollbot(
            "rollback", APP, "-n", NAMESPACE, "--yes", "--reason", "1.6.0 crash-loops on start"
        )
        console.print(Rule("Afterwards"))
        rollbot("history", APP, "-n", NAMESPACE)
        if code == 0:
            console.print(
                f"\n[green]Done:[/] {APP} is back on 1.5.0 and fully available. "
                "Run `make test` for the test suite."
            )
        else:
            console.print(f"\n[red]The rollback exited with {code}[/]")
        return code


if __name__ == "__main__":
    sys.exit(main())
