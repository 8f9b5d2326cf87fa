"""A service of several Deployments rolled back as one, on the real control plane."""

from __future__ import annotations

import threading

import pytest

from bot.config import RollbotConfig
from bot.rollout import RolloutState
from bot.strategies import Context, Request, StrategyError
from bot.strategies import get as get_strategy
from bot.strategies.components import ComponentsFailed
from tests.integration.workloads import Workloads

pytestmark = pytest.mark.cluster


class Recorder:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.rollouts: dict[str, list[str]] = {}
        self.lock = threading.Lock()

    def milestone(self, text: str) -> None:
        with self.lock:
            self.lines.append(text)

    def rollout(self, workload: str, state: RolloutState) -> None:
        with self.lock:
            self.rollouts.setdefault(workload, []).append(state.message)


def eli_maor(namespace: str, *names: str) -> RollbotConfig:
    return RollbotConfig.model_validate(
        {"services": {"eli-maor": {"namespace": namespace, "deployments": list(names)}}}
    )


def context(kube, config: RollbotConfig) -> Context:
    return Context(kube=kube, config=config, timeout=90)


def test_every_component_rolls_back_together_with_one_progress_view(kube, workloads: Workloads):
    for name in ("backend", "worker", "frontend"):
        workloads.create(name, [f"{name}:v1", f"{name}:v2"])
    ctx = context(kube, eli_maor(workloads.namespace, "backend", "worker", "frontend"))
    strategy = get_strategy("components")

    plan = strategy.plan(ctx, Request(workloads.namespace, "eli-maor", "components"))
    assert plan.workloads == ("backend", "worker", "frontend")
    assert set(plan.pins) == {"backend", "worker", "frontend"}
    assert "backend: container app: image: backend:v2 → backend:v1" in plan.changes
    assert plan.current == "backend r2, worker r2, frontend r2"
    assert plan.target == "backend r1, worker r1, frontend r1"

    progress = Recorder()
    done = strategy.apply(ctx, workloads.namespace, plan.pins, "rollbot: test", progress)

    for name in ("backend", "worker", "frontend"):
        assert workloads.images_of(name) == [f"{name}:v1"]
        assert any("successfully rolled out" in m for m in progress.rollouts[name])
    assert done.startswith("rolled back backend (backend:v1)")
    assert sorted(line.split(":")[0] for line in progress.lines if "rolled out" in line) == [
        "backend",
        "frontend",
        "worker",
    ]


def test_a_component_whose_target_is_broken_is_named_and_the_others_still_roll_back(
    kube, workloads: Workloads
):
    workloads.create("backend", ["backend:v1-broken", "backend:v2"], progress_deadline=4)
    workloads.create("worker", ["worker:v1", "worker:v2"])
    ctx = context(kube, eli_maor(workloads.namespace, "backend", "worker"))
    strategy = get_strategy("components")
    plan = strategy.plan(ctx, Request(workloads.namespace, "eli-maor", "components"))

    with pytest.raises(ComponentsFailed) as failure:
        strategy.apply(ctx, workloads.namespace, plan.pins, "rollbot: test", Recorder())

    assert set(failure.value.failed) == {"backend"}
    assert failure.value.done == ["worker"]
    assert "1 of 2 components failed" in str(failure.value)
    assert "progress deadline" in failure.value.failed["backend"]
    assert workloads.images_of("worker") == ["worker:v1"]


def test_a_component_never_redeployed_is_left_alone_and_said_so(kube, workloads: Workloads):
    workloads.create("backend", ["backend:v1", "backend:v2"])
    workloads.create("beat", ["beat:v1"])
    ctx = context(kube, eli_maor(workloads.namespace, "backend", "beat"))
    plan = get_strategy("components").plan(ctx, Request(workloads.namespace, "eli-maor"))
    assert set(plan.pins) == {"backend"}
    assert "beat: no earlier revision, left alone" in plan.facts


def test_one_image_tag_for_every_component(kube, workloads: Workloads):
    workloads.create("backend", ["app:1.0.0", "app:1.1.0"])
    workloads.create("worker", ["app:1.0.0", "app:1.1.0"])
    ctx = context(kube, eli_maor(workloads.namespace, "backend", "worker"))
    strategy = get_strategy("components")
    plan = strategy.plan(ctx, Request(workloads.namespace, "eli-maor", to_tag="1.0.0"))
    strategy.apply(ctx, workloads.namespace, plan.pins, "rollbot: test", Recorder())
    assert workloads.images_of("backend") == workloads.images_of("worker") == ["app:1.0.0"]


def test_revision_numbers_are_refused_for_several_components_and_nothing_changes(
    kube, workloads: Workloads
):
    workloads.create("backend", ["backend:v1", "backend:v2"])
    workloads.create("worker", ["worker:v1", "worker:v2"])
    ctx = context(kube, eli_maor(workloads.namespace, "backend", "worker"))
    with pytest.raises(StrategyError, match="each with its own revision numbers"):
        get_strategy("components").plan(ctx, Request(workloads.namespace, "eli-maor", revision=1))
    assert workloads.images_of("backend") == ["backend:v2"]


def test_a_service_with_nothing_to_roll_back_says_so(kube, workloads: Workloads):
    workloads.create("backend", ["backend:v1"])
    ctx = context(kube, eli_maor(workloads.namespace, "backend"))
    plan = get_strategy("components").plan(ctx, Request(workloads.namespace, "eli-maor"))
    assert plan.nothing_to_do == "no component has anything to roll back to"
    assert plan.pins == {}
