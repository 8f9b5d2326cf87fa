"""`bot.kube.Kube` against the real apiserver: the watch it makes itself (one
request, raw dicts, closed when left), and what a rollback in a new process
loads of the client (no generated API class, no model)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from bot.errors import DeploymentNotFound
from bot.kube import Kube

pytestmark = pytest.mark.cluster


def test_a_watch_yields_each_change_after_the_resource_version_as_raw_json(kube: Kube, workloads):
    workloads.create("web", ["app:v1"])
    before = kube.get_deployment(workloads.namespace, "web")
    workloads.patch("web", {"metadata": {"annotations": {"rollbot.test/mark": "one"}}})

    started = time.monotonic()
    events = list(
        kube.watch_deployment(workloads.namespace, "web", before["metadata"]["resourceVersion"], 1)
    )

    assert time.monotonic() - started < 10, "the server ends the watch at its timeout"
    assert events, "the change after the resourceVersion is sent"
    kind, obj = events[0]
    assert kind == "MODIFIED"
    assert obj["metadata"]["annotations"]["rollbot.test/mark"] == "one"
    assert obj["apiVersion"] == "apps/v1" and "status" in obj, "the object as the API sent it"


def test_a_watch_left_early_returns_at_once_and_the_next_call_works(kube: Kube, workloads):
    workloads.create("web", ["app:v1"])

    started = time.monotonic()
    for kind, _ in kube.watch_deployment(workloads.namespace, "web", "", 60):
        assert kind == "ADDED"
        break
    left_after = time.monotonic() - started
    deployment = kube.get_deployment(workloads.namespace, "web")

    assert left_after < 5, "not held until the server's 60 s time-out"
    assert deployment["metadata"]["name"] == "web"


def test_an_unknown_deployment_is_not_found_for_each_call(kube: Kube, namespace):
    with pytest.raises(DeploymentNotFound):
        kube.get_deployment(namespace, "ghost")
    with pytest.raises(DeploymentNotFound):
        kube.json_patch_deployment(namespace, "ghost", [{"op": "remove", "path": "/spec/paused"}])
    assert list(kube.watch_deployment(namespace, "ghost", "", 1)) == []


def test_a_rollback_in_a_new_process_loads_no_generated_api_class(control_plane, workloads):
    # Each generated class builds the models of its API group: seconds of start-up
    # that `rollbot rollback` never needs (bench/rollback_vs_kubectl.py).
    workloads.create("web", ["app:v1", "app:v2"])
    script = (
        "import json, sys\n"
        "from bot.cli import run\n"
        "code = run(sys.argv[1:])\n"
        "generated = [m for m in sys.modules if m.startswith(('kubernetes.client.api.',"
        " 'kubernetes.client.models.'))]\n"
        "print(json.dumps(generated), file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    env = {**os.environ, "KUBECONFIG": str(control_plane.kubeconfig), "ROLLBOT_ACTOR": "ci"}
    env.pop("ROLLBOT_CONFIG", None)
    result = subprocess.run(
        [sys.executable, "-c", script, "rollback", "web", "-n", workloads.namespace, "--yes"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert workloads.images_of("web") == ["app:v1"]
    assert json.loads(result.stderr.strip().splitlines()[-1]) == []
