"""Every strategy from a terminal or CI job: `rollbot rollback SERVICE …` with the
catalog's strategy or an operation flag, a plan, --dry-run, --yes, exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.backup import take_backup
from tests.integration.strategy_helpers import (
    create_deployment,
    create_service,
    deployment_body,
    ips_of,
    read,
    served_ips,
    wait_served,
)
from tests.integration.test_cli import rollbot

pytestmark = pytest.mark.cluster


def catalog(tmp_path: Path, namespace: str, **services: Any) -> str:
    path = tmp_path / "rollbot.yaml"
    entries = {name: {"namespace": namespace, **entry} for name, entry in services.items()}
    path.write_text(json.dumps({"services": entries}))
    return str(path)


def test_a_service_of_several_deployments_from_the_cli(control_plane, workloads, tmp_path):
    for name in ("backend", "worker"):
        workloads.create(name, [f"{name}:v1", f"{name}:v2"])
    config = catalog(tmp_path, workloads.namespace, shop={"deployments": ["backend", "worker"]})

    history = rollbot(control_plane, "--config", config, "history", "shop")
    assert history.returncode == 0, history.stderr
    assert f"Rollout history of deployment {workloads.namespace}/backend" in history.stdout
    assert f"Rollout history of deployment {workloads.namespace}/worker" in history.stdout
    assert "• 2 (current) worker:v2" in history.stdout

    dry = rollbot(control_plane, "--config", config, "rollback", "shop", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "shop (2 deployments)" in dry.stdout and "(components)" in dry.stdout
    assert "backend: container app: image: backend:v2 → backend:v1" in dry.stdout
    assert workloads.images_of("backend") == ["backend:v2"]

    done = rollbot(control_plane, "--config", config, "rollback", "shop", "--yes")
    assert done.returncode == 0, done.stderr
    assert workloads.images_of("backend") == ["backend:v1"]
    assert workloads.images_of("worker") == ["worker:v1"]


def test_a_broken_component_fails_the_cli_with_its_name(control_plane, workloads, tmp_path):
    workloads.create("backend", ["backend:v1-broken", "backend:v2"], progress_deadline=4)
    workloads.create("worker", ["worker:v1", "worker:v2"])
    config = catalog(tmp_path, workloads.namespace, shop={"deployments": ["backend", "worker"]})
    done = rollbot(control_plane, "--config", config, "rollback", "shop", "--yes")
    assert done.returncode == 2, done.stdout
    assert "1 of 2 components failed" in done.stderr and "backend:" in done.stderr


def test_blue_green_from_the_cli(control_plane, workloads, tmp_path):
    for name, replicas in (("blue", 0), ("green", 1)):
        labels = {"app": "jarvis", "color": name}
        body = deployment_body(
            f"jarvis-{name}", labels, replicas, [{"name": "api", "image": f"jarvis:{name}"}]
        )
        create_deployment(workloads, body)
    create_service(workloads, "jarvis", {"app": "jarvis", "color": "green"})
    wait_served(workloads, "jarvis", "color=green", 1)
    config = catalog(tmp_path, workloads.namespace, jarvis={"strategy": "blue-green"})

    done = rollbot(control_plane, "--config", config, "rollback", "jarvis", "--yes")
    assert done.returncode == 0, done.stderr
    assert "switched from green to blue" in done.stdout
    assert read(workloads, "service", "jarvis")["spec"]["selector"]["color"] == "blue"
    assert served_ips(workloads, "jarvis") == ips_of(workloads, "color=blue")
    history = rollbot(control_plane, "--config", config, "history", "jarvis")
    assert f"Blue-green service {workloads.namespace}/jarvis: live colour blue" in history.stdout


def test_flag_scale_and_traffic_from_the_cli(control_plane, workloads):
    labels = {"app": "api", "serving": "true"}
    body = deployment_body("api", labels, 2, [{"name": "api", "image": "api:v1"}], {"app": "api"})
    create_deployment(workloads, body)
    create_service(workloads, "api", labels)
    wait_served(workloads, "api", "app=api", 2)
    ns = ["-n", workloads.namespace, "--yes"]

    flag = rollbot(control_plane, "rollback", "api", "--flag", "FEATURE_X=off", *ns)
    assert flag.returncode == 0, flag.stderr
    env = workloads.get("api")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "FEATURE_X", "value": "off"} in env

    off = rollbot(control_plane, "rollback", "api", "--traffic", "off", *ns)
    assert off.returncode == 0, off.stderr
    assert served_ips(workloads, "api") == set()
    on = rollbot(control_plane, "rollback", "api", "--traffic", "on", *ns)
    assert on.returncode == 0, on.stderr
    wait_served(workloads, "api", "app=api", 2)

    down = rollbot(control_plane, "rollback", "api", "--scale", "0", *ns)
    assert down.returncode == 0, down.stderr
    assert "scale back with --scale 2" in down.stdout
    assert workloads.get("api")["spec"]["replicas"] == 0

    bad = rollbot(control_plane, "rollback", "api", "--scale", "lots", *ns)
    assert bad.returncode == 2 and "replica count" in bad.stderr


def test_config_is_restored_from_a_backup_file(control_plane, kube, workloads, tmp_path):
    workloads.core.create_namespaced_config_map(
        workloads.namespace, {"metadata": {"name": "web-config"}, "data": {"MODE": "safe"}}
    )
    reads = [{"configMapRef": {"name": "web-config"}}]
    workloads.create(
        "web", [{"containers": [{"name": "app", "image": "app:v1", "envFrom": reads}]}]
    )
    backup = tmp_path / "rb-0a1b2c3d-backup.json"
    backup.write_text(json.dumps(take_backup(kube, workloads.namespace, "web")))
    workloads.core.patch_namespaced_config_map(
        "web-config", workloads.namespace, {"data": {"MODE": "fast"}}
    )
    args = ["rollback", "web", "-n", workloads.namespace, "--config-from", str(backup)]

    dry = rollbot(control_plane, *args, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "configmap web-config: MODE changed" in dry.stdout
    done = rollbot(control_plane, *args, "--yes")
    assert done.returncode == 0, done.stderr
    assert read(workloads, "config_map", "web-config")["data"] == {"MODE": "safe"}

    missing = rollbot(control_plane, "rollback", "web", "-n", workloads.namespace,
                      "--config-from", str(tmp_path / "nope.json"), "--yes")  # fmt: skip
    assert missing.returncode == 2 and "cannot read backup" in missing.stderr
