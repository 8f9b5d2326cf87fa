"""Where the test bed's binaries are, building them first if needed.

`scripts/build-testbed.sh` does the work (and honours KUBEBUILDER_ASSETS), and
`scripts/build-argo-rollouts.sh` for Argo Rollouts (ARGO_ROLLOUTS_ASSETS); this
module only runs them, streaming their progress to stderr, and reads their answer.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = REPO / "scripts" / "build-testbed.sh"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl", "helm")
ARGO_BUILD_SCRIPT = REPO / "scripts" / "build-argo-rollouts.sh"
ARGO_BINARIES = ("rollouts-controller", "kubectl-argo-rollouts", "crds/rollout-crd.yaml")


class BuildError(RuntimeError):
    pass


def _built(script: Path, what: str, expected: tuple[str, ...]) -> Path:
    result = subprocess.run(
        ["bash", str(script)], stdout=subprocess.PIPE, stderr=sys.stderr, text=True
    )
    if result.returncode != 0:
        raise BuildError(
            f"building {what} failed (exit {result.returncode}); see the output of {script} above"
        )
    folder = Path(result.stdout.strip().splitlines()[-1])
    missing = [b for b in expected if not (folder / b).exists()]
    if missing:
        raise BuildError(f"{what} folder {folder} lacks {', '.join(missing)}")
    return folder


def testbed_binaries() -> Path:
    """The folder holding etcd, kube-apiserver, kube-controller-manager, kubectl, helm."""
    return _built(BUILD_SCRIPT, "the Kubernetes test bed", BINARIES)


def argo_rollouts_binaries() -> Path:
    """The folder holding rollouts-controller, kubectl-argo-rollouts and crds/*.yaml."""
    return _built(ARGO_BUILD_SCRIPT, "Argo Rollouts", ARGO_BINARIES)
