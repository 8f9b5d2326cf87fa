"""Blue-green (jarvis-api's Option C) on the real control plane: the other colour is
scaled up, the Service's selector switched, and its Endpoints, filled by the
endpoints controller from Ready pods, serve that colour's pods only."""

from __future__ import annotations

import pytest

from bot.config import BlueGreen, RollbotConfig, ServiceEntry
from bot.errors import RolloutFailed
from bot.strategies.base import Context, Request, StrategyError
from bot.strategies.bluegreen import BlueGreenStrategy, SelectorChanged
from tests.integration.strategy_helpers import (
    Recorder,
    create_deployment,
    create_service,
    deployment_body,
    ips_of,
    read,
    served_ips,
    wait_served,
)

pytestmark = pytest.mark.cluster

CONFIG = RollbotConfig(
    services={"jarvis": ServiceEntry(strategy="blue-green", blue_green=BlueGreen())}
)


def colour(workloads, name: str, tag: str, replicas: int, deadline: int = 600) -> None:
    labels = {"app": "jarvis", "color": name}
    container = {"name": "api", "image": f"jarvis:{tag}", "ports": [{"containerPort": 8080}]}
    body = deployment_body(f"jarvis-{name}", labels, replicas, [container])
    body["spec"]["progressDeadlineSeconds"] = deadline
    create_deployment(workloads, body)


@pytest.fixture
def green_live_blue_idle(workloads):
    """jarvis-green (v2) serves with 2 pods; jarvis-blue (v1) is scaled to 0."""
    colour(workloads, "blue", "v1", 0)
    colour(workloads, "green", "v2", 2)
    create_service(workloads, "jarvis", {"app": "jarvis", "color": "green"})
    wait_served(workloads, "jarvis", "color=green", 2)
    return workloads


def context(kube) -> Context:
    return Context(kube=kube, config=CONFIG, timeout=60)


def test_blue_green_scales_the_idle_colour_up_and_switches_traffic_to_it_and_back(
    kube, namespace, green_live_blue_idle
):
    workloads = green_live_blue_idle
    strategy = BlueGreenStrategy()
    request = Request(namespace, "jarvis", "blue-green")

    plan = strategy.plan(context(kube), request)
    assert plan.changes == (
        "scale deployment jarvis-blue 0 → 2",
        "service jarvis selector color: green → blue",
    )
    assert dict(plan.pins) == {
        "service": "jarvis",
        "label": "color",
        "from": "green",
        "to": "blue",
        "deployment": "jarvis-blue",
        "replicas": "2",
        "from_deployment": "jarvis-green",
    }
    assert plan.workloads == ("jarvis-blue",)
    assert plan.from_images == ("api=jarvis:v2",) and plan.to_images == ("api=jarvis:v1",)
    assert plan.nothing_to_do is None

    progress = Recorder()
    summary = strategy.apply(context(kube), namespace, plan.pins, "rollbot: test", progress)

    assert read(workloads, "service", "jarvis")["spec"]["selector"]["color"] == "blue"
    blue = workloads.get("jarvis-blue")
    assert blue["spec"]["replicas"] == 2 and blue["status"]["availableReplicas"] == 2
    # The switch is verified before apply returns: only blue's pod IPs serve.
    blue_ips = ips_of(workloads, "color=blue")
    assert len(blue_ips) == 2 and served_ips(workloads, "jarvis") == blue_ips
    assert progress.completed("jarvis-blue")
    # Green is left running, the instant way back.
    assert workloads.get("jarvis-green")["status"]["availableReplicas"] == 2
    assert any("Left jarvis-green (green) running" in m for m in progress.milestones)
    assert "switched from green to blue" in summary
    annotations = read(workloads, "service", "jarvis")["metadata"]["annotations"]
    assert annotations["kubernetes.io/change-cause"] == "rollbot: test"

    # Rolling the rollback back switches back; green runs 2 already, so no scale.
    back = strategy.plan(context(kube), request)
    assert back.changes == ("service jarvis selector color: blue → green",)
    strategy.apply(context(kube), namespace, back.pins, "rollbot: back", Recorder())
    green_ips = ips_of(workloads, "color=green")
    assert served_ips(workloads, "jarvis") == green_ips and len(green_ips) == 2

    # Applying the same pins again (a worker that died after the switch) changes nothing.
    again = Recorder()
    strategy.apply(context(kube), namespace, back.pins, "rollbot: back", again)
    assert "Service jarvis already selects color=green" in again.milestones
    assert served_ips(workloads, "jarvis") == green_ips


def test_blue_green_refuses_a_selector_value_that_is_no_known_colour_and_changes_nothing(
    kube, namespace, workloads
):
    colour(workloads, "blue", "v1", 0)
    colour(workloads, "green", "v2", 1)
    create_service(workloads, "jarvis", {"app": "jarvis", "color": "purple"})

    with pytest.raises(StrategyError) as refused:
        BlueGreenStrategy().plan(context(kube), Request(namespace, "jarvis", "blue-green"))

    message = str(refused.value)
    assert "selects color=purple, which is none of its colours" in message
    assert "blue (jarvis-blue), green (jarvis-green)" in message
    assert read(workloads, "service", "jarvis")["spec"]["selector"]["color"] == "purple"
    assert workloads.get("jarvis-blue")["spec"]["replicas"] == 0


def test_blue_green_apply_refuses_when_someone_switched_the_service_since_the_plan(
    kube, namespace, green_live_blue_idle
):
    workloads = green_live_blue_idle
    plan = BlueGreenStrategy().plan(context(kube), Request(namespace, "jarvis", "blue-green"))
    workloads.core.patch_namespaced_service(
        "jarvis", namespace, {"spec": {"selector": {"color": "canary"}}}
    )

    with pytest.raises(SelectorChanged, match="now selects color=canary"):
        BlueGreenStrategy().apply(context(kube), namespace, plan.pins, "rollbot: test", Recorder())

    # Refused before anything changed: blue was not even scaled up.
    assert workloads.get("jarvis-blue")["spec"]["replicas"] == 0
    assert read(workloads, "service", "jarvis")["spec"]["selector"]["color"] == "canary"


def test_blue_green_leaves_traffic_alone_when_the_idle_colour_does_not_become_ready(
    kube, namespace, workloads
):
    colour(workloads, "blue", "broken", 0, deadline=2)
    colour(workloads, "green", "v2", 1)
    create_service(workloads, "jarvis", {"app": "jarvis", "color": "green"})
    green_ips = wait_served(workloads, "jarvis", "color=green", 1)
    plan = BlueGreenStrategy().plan(context(kube), Request(namespace, "jarvis", "blue-green"))

    with pytest.raises(RolloutFailed, match="jarvis-blue"):
        BlueGreenStrategy().apply(context(kube), namespace, plan.pins, "rollbot: test", Recorder())

    assert read(workloads, "service", "jarvis")["spec"]["selector"]["color"] == "green"
    assert served_ips(workloads, "jarvis") == green_ips
