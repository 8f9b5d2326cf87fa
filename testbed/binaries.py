"""Where the test bed's binaries are, building them first if needed.

`scripts/build-testbed.sh` does the work (and honours KUBEBUILDER_ASSETS); this
module only runs it, streaming its progress to stderr, and reads its answer.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = REPO / "scripts" / "build-testbed.sh"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl", "helm")


class BuildError(RuntimeError):
    pass


def testbed_binaries() -> Path:
    """The folder holding etcd, kube-apiserver, kube-controller-manager, kubectl, helm."""
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, stderr=sys.stderr, text=True
    )
    if result.returncode != 0:
        raise BuildError(
            f"building the Kubernetes test bed failed (exit {result.returncode}); "
            f"see the output of {BUILD_SCRIPT} above"
        )
    folder = Path(result.stdout.strip().splitlines()[-1])
    missing = [b for b in BINARIES if not (folder / b).exists()]
    if missing:
        raise BuildError(f"test bed folder {folder} lacks {', '.join(missing)}")
    return folder
