"""The operational rollbacks on the real control plane: a ConfigMap restored from a
backup and its readers restarted, a feature flag set off, an emergency scale to 0
and back, and pods labelled out of their Service and back in."""

from __future__ import annotations

import pytest
from kubernetes import client

from bot.backup import take_backup
from bot.config import RollbotConfig, ServiceEntry
from bot.strategies.base import Context, Request, StrategyError
from bot.strategies.divert import DivertStrategy
from bot.strategies.flag import FlagStrategy
from bot.strategies.restore import RESTARTED_AT, RestoreStrategy
from bot.strategies.scale import ScaleStrategy
from tests.integration.strategy_helpers import (
    Recorder,
    create_deployment,
    create_service,
    deployment_body,
    ips_of,
    pods,
    read,
    served_ips,
    wait_served,
)

pytestmark = pytest.mark.cluster

CONFIG = RollbotConfig(
    services={
        "web": ServiceEntry(),
        "api": ServiceEntry(),
        "shop": ServiceEntry(deployments=["shop-web", "shop-worker"]),
        "backend": ServiceEntry(traffic_label="serving"),
    }
)
BACKUP_ID = "rb-0a1b2c3d"


def context(kube, backups=None) -> Context:
    return Context(kube=kube, config=CONFIG, timeout=60, backups=lambda id: (backups or {}).get(id))


def container(name: str, image: str, **extra) -> dict:
    return {"name": name, "image": image, "ports": [{"containerPort": 8080}], **extra}


# -- restore ----------------------------------------------------------------------------


def config_map(workloads, name: str, data: dict) -> None:
    workloads.core.create_namespaced_config_map(
        workloads.namespace, {"metadata": {"name": name}, "data": data}
    )


def web_reading_config(workloads) -> None:
    config_map(workloads, "web-config", {"MODE": "safe", "LIMIT": "10"})
    body = deployment_body(
        "web",
        {"app": "web"},
        2,
        [container("app", "web:v1", envFrom=[{"configMapRef": {"name": "web-config"}}])],
    )
    create_deployment(workloads, body)


def test_config_restore_puts_the_backed_up_data_back_and_restarts_its_readers(
    kube, namespace, workloads
):
    web_reading_config(workloads)
    backup = take_backup(kube, namespace, "web")
    workloads.core.patch_namespaced_config_map(
        "web-config", namespace, {"data": {"MODE": "fast", "EXTRA": "1"}}
    )
    revisions_before = len(workloads.revisions("web"))
    strategy = RestoreStrategy()
    ctx = context(kube, {BACKUP_ID: backup})
    request = Request(namespace, "web", "restore", options={"backup": BACKUP_ID, "what": "config"})

    plan = strategy.plan(ctx, request)
    assert plan.changes == (
        "configmap web-config: EXTRA removed, MODE changed",
        "restart deployment web (it reads configmap web-config)",
    )
    assert plan.pins["config_maps"] == "web-config" and plan.pins["restart"] == "web"
    assert plan.workloads == ("web",)

    progress = Recorder()
    summary = strategy.apply(ctx, namespace, plan.pins, "rollbot: restore", progress)

    assert read(workloads, "config_map", "web-config")["data"] == {"MODE": "safe", "LIMIT": "10"}
    web = workloads.wait_complete("web")
    annotations = web["spec"]["template"]["metadata"]["annotations"]
    assert annotations[RESTARTED_AT] == plan.pins["restarted_at"]
    assert web["metadata"]["annotations"]["kubernetes.io/change-cause"] == "rollbot: restore"
    assert len(workloads.revisions("web")) == revisions_before + 1  # restarted: new pods
    assert progress.completed("web")
    assert summary == f"restored configmap web-config; restarted web (backup of {BACKUP_ID})"

    # Safe to run again after a crash: nothing is written or restarted twice.
    strategy.apply(ctx, namespace, plan.pins, "rollbot: restore", Recorder())
    assert len(workloads.revisions("web")) == revisions_before + 1
    assert strategy.plan(ctx, request).nothing_to_do == (
        f"the live configuration already matches backup {BACKUP_ID}"
    )


def test_restore_all_puts_every_component_back_from_a_several_deployment_backup(
    kube, namespace, workloads
):
    for name, replicas in (("shop-web", 2), ("shop-worker", 1)):
        body = deployment_body(name, {"app": name}, replicas, [container("app", f"{name}:v1")])
        create_deployment(workloads, body)
    backup = {
        "components": {n: take_backup(kube, namespace, n) for n in ("shop-web", "shop-worker")}
    }
    workloads.roll("shop-web", {"containers": [container("app", "shop-web:v2")]})
    workloads.wait_complete("shop-web")
    workloads.scale("shop-worker", 3)
    ctx = context(kube, {BACKUP_ID: backup})
    request = Request(namespace, "shop", "restore", options={"backup": BACKUP_ID, "what": "all"})

    plan = RestoreStrategy().plan(ctx, request)
    assert "deployment shop-worker: replicas 3 → 1" in plan.changes
    assert any(c.startswith("deployment shop-web: container app: image") for c in plan.changes)
    assert plan.to_images == ("app=shop-web:v1", "app=shop-worker:v1")

    progress = Recorder()
    RestoreStrategy().apply(ctx, namespace, plan.pins, "rollbot: restore all", progress)

    assert workloads.images_of("shop-web") == ["shop-web:v1"]
    assert workloads.wait_complete("shop-web")["status"]["availableReplicas"] == 2
    assert workloads.wait_complete("shop-worker")["status"]["availableReplicas"] == 1
    assert progress.completed("shop-web") and progress.completed("shop-worker")


def test_restore_from_a_backup_of_another_workload_is_refused(kube, namespace, workloads):
    web_reading_config(workloads)
    ctx = context(kube, {BACKUP_ID: take_backup(kube, namespace, "web")})
    request = Request(namespace, "api", "restore", options={"backup": BACKUP_ID, "what": "all"})
    with pytest.raises(StrategyError, match=f"backup '{BACKUP_ID}' is of web, not of api"):
        RestoreStrategy().plan(ctx, request)


def test_restore_from_an_unknown_backup_is_refused_by_name(kube, namespace, workloads):
    request = Request(namespace, "web", "restore", options={"backup": "rb-ffffffff"})
    with pytest.raises(StrategyError, match="no backup named 'rb-ffffffff'"):
        RestoreStrategy().plan(context(kube), request)


# -- flag -------------------------------------------------------------------------------


def test_a_feature_flag_is_set_off_on_every_container_and_rolled_out(kube, namespace, workloads):
    on = [{"name": "FEATURE_NEW_DASHBOARD", "value": "true"}, {"name": "OTHER", "value": "1"}]
    body = deployment_body(
        "api",
        {"app": "api"},
        2,
        [container("app", "api:v1", env=on), {"name": "proxy", "image": "proxy:v1"}],
    )
    create_deployment(workloads, body)
    strategy = FlagStrategy()
    request = Request(namespace, "api", "flag", options={"flag": "FEATURE_NEW_DASHBOARD=false"})

    plan = strategy.plan(context(kube), request)
    assert len(plan.changes) == 2
    assert plan.changes[0].startswith("deployment api container app: env FEATURE_NEW_DASHBOARD: ")
    assert plan.changes[0].endswith(" → false") and "true" not in plan.changes[0]
    assert plan.changes[1] == (
        "deployment api container proxy: env FEATURE_NEW_DASHBOARD: (unset) → false"
    )

    progress = Recorder()
    summary = strategy.apply(context(kube), namespace, plan.pins, "rollbot: flag off", progress)

    api = workloads.wait_complete("api")
    app, proxy = api["spec"]["template"]["spec"]["containers"]
    assert app["env"] == [
        {"name": "FEATURE_NEW_DASHBOARD", "value": "false"},
        {"name": "OTHER", "value": "1"},
    ]
    assert proxy["env"] == [{"name": "FEATURE_NEW_DASHBOARD", "value": "false"}]
    assert progress.completed("api")
    assert summary == "set FEATURE_NEW_DASHBOARD=false on api"

    again = strategy.plan(context(kube), request)
    assert again.nothing_to_do == "every container of api already has FEATURE_NEW_DASHBOARD=false"
    assert again.changes == ()


# -- scale ------------------------------------------------------------------------------


def test_an_emergency_scale_to_zero_leaves_no_pods_and_scales_back(kube, namespace, workloads):
    create_deployment(
        workloads, deployment_body("web", {"app": "web"}, 2, [container("app", "w:1")])
    )
    client.AutoscalingV2Api(workloads.core.api_client).create_namespaced_horizontal_pod_autoscaler(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 2,
                "maxReplicas": 5,
            },
        },
    )
    strategy = ScaleStrategy()

    down = strategy.plan(
        context(kube), Request(namespace, "web", "scale", options={"replicas": "0"})
    )
    assert down.changes == ("scale deployment web 2 → 0",)
    assert "scale back with --scale 2" in down.facts
    assert any(f.startswith("HorizontalPodAutoscaler web targets web") for f in down.facts)
    assert down.verify_checks is False

    progress = Recorder()
    assert strategy.apply(context(kube), namespace, down.pins, "c", progress) == "scaled web to 0"
    assert workloads.get("web")["spec"]["replicas"] == 0
    assert pods(workloads, "app=web") == []
    assert "No pods left of web" in progress.milestones

    up = strategy.plan(context(kube), Request(namespace, "web", "scale", options={"replicas": "2"}))
    assert up.changes == ("scale deployment web 0 → 2",) and up.verify_checks is True
    assert any("it will fight this change" in f for f in up.facts)
    strategy.apply(context(kube), namespace, up.pins, "c", Recorder())
    assert workloads.get("web")["status"]["availableReplicas"] == 2

    same = strategy.plan(
        context(kube), Request(namespace, "web", "scale", options={"replicas": "2"})
    )
    assert same.nothing_to_do == "web already runs 2"


def test_a_crash_looping_deployment_past_its_deadline_can_still_be_scaled_to_zero(
    kube, namespace, workloads
):
    workloads.create("web", ["app:v1", "app:broken"], replicas=2, progress_deadline=2)
    workloads.wait_deadline_exceeded("web")
    strategy = ScaleStrategy()

    plan = strategy.plan(
        context(kube), Request(namespace, "web", "scale", options={"replicas": "0"})
    )
    strategy.apply(context(kube), namespace, plan.pins, "c", Recorder())

    assert pods(workloads, "app=web") == []


# -- divert -----------------------------------------------------------------------------


def backend(workloads, service_selector: dict) -> None:
    labels = {"app": "backend", "serving": "true"}
    body = deployment_body(
        "backend", labels, 2, [container("app", "backend:v1")], selector={"app": "backend"}
    )
    create_deployment(workloads, body)
    create_service(workloads, "backend", service_selector)


def test_divert_takes_the_pods_out_of_the_service_and_puts_them_back(kube, namespace, workloads):
    backend(workloads, {"app": "backend", "serving": "true"})
    ips = wait_served(workloads, "backend", "app=backend", 2)
    strategy = DivertStrategy()

    out = strategy.plan(
        context(kube), Request(namespace, "backend", "divert", options={"serving": "false"})
    )
    assert out.changes[0].startswith("label pods of backend serving=false: backend-")
    assert out.pins["services"] == "backend" and out.verify_checks is False
    progress = Recorder()
    summary = strategy.apply(context(kube), namespace, out.pins, "c", progress)

    assert served_ips(workloads, "backend") == set()
    assert {p["metadata"]["labels"]["serving"] for p in pods(workloads, "app=backend")} == {"false"}
    assert ips_of(workloads, "app=backend") == ips  # still running, the same pods
    assert workloads.get("backend")["status"]["availableReplicas"] == 2
    assert summary == "diverted 2 pod(s) out of service backend (serving=false)"

    back = strategy.plan(
        context(kube), Request(namespace, "backend", "divert", options={"serving": "true"})
    )
    assert back.verify_checks is True
    strategy.apply(context(kube), namespace, back.pins, "c", Recorder())
    assert served_ips(workloads, "backend") == ips


def test_divert_is_refused_when_no_service_selects_on_the_traffic_label(kube, namespace, workloads):
    backend(workloads, {"app": "backend"})

    with pytest.raises(StrategyError) as refused:
        DivertStrategy().plan(
            context(kube), Request(namespace, "backend", "divert", options={"serving": "false"})
        )

    message = str(refused.value)
    assert "no Service selects the pods of backend on the 'serving' label" in message
    assert "service backend selects app=backend" in message
    assert 'selector must include serving: "true"' in message
    assert {p["metadata"]["labels"]["serving"] for p in pods(workloads, "app=backend")} == {"true"}
