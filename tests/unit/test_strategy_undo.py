"""The Deployment undo as a strategy, planned against an in-memory cluster: what
it pins, what it tells the record, what it refuses before anyone approves; and the
one change-cause wording the CLI and the worker share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.bodies import Body
from bot.config import RollbotConfig, ServiceEntry
from bot.deployments import TagNeverDeployed
from bot.engine import TargetGone, plan_pinned
from bot.errors import DeploymentPaused, PermanentError
from bot.strategies import Context, Request, StrategyError, change_cause, get
from tests.unit.builders import deployment, replica_set, template


class Cluster:
    """The calls an undo plan makes, over one Deployment and its ReplicaSets."""

    def __init__(self, dep: Body, replica_sets: list[Body]) -> None:
        self.dep, self.replica_sets = dep, replica_sets

    def get_deployment(self, namespace: str, name: str) -> Body:
        return self.dep

    def list_replica_sets(self, namespace: str, label_selector: str) -> list[Body]:
        return self.replica_sets

    def json_patch_deployment(self, namespace: str, name: str, ops: list[Body]) -> Body:
        raise AssertionError("planning never writes")

    def watch_deployment(
        self, namespace: str, name: str, resource_version: str, timeout_seconds: int
    ) -> Iterator[tuple[str, Body]]:
        return iter(())


def cluster(current: str = "app:v3", *, paused: bool = False) -> Cluster:
    """Revisions 1 (v1), 2 (v2), 3 (v3); the Deployment runs `current`."""
    rsets = [
        replica_set(f"web-{n}", str(n), template(f"app:v{n}", hash_label=f"h{n}"), created=f"{n}")
        for n in (1, 2, 3)
    ]
    return Cluster(deployment(template(current), paused=paused), rsets)


def context(kube: Cluster, config: RollbotConfig | None = None) -> Context:
    return Context(kube=kube, config=config or RollbotConfig(), timeout=5)  # type: ignore[arg-type]


def test_the_previous_revision_is_pinned_by_its_replica_set_with_the_records_numbers():
    planned = get("undo").plan(context(cluster()), Request("prod", "web"))
    assert planned.pins == {"web": "web-2"}
    assert (planned.from_revision, planned.target_revision) == (3, 2)
    assert planned.target_replica_set == "web-2"
    assert planned.workloads == ("web",)
    assert planned.from_images == ("app=app:v3",) and planned.to_images == ("app=app:v2",)
    assert planned.changes == ("container app: image: app:v3 → app:v2",)
    assert planned.nothing_to_do is None


def test_a_named_revision_and_roll_back_further_pick_their_revisions():
    kube = cluster()
    assert get("undo").plan(context(kube), Request("prod", "web", revision=1)).pins == {
        "web": "web-1"
    }
    further = get("undo").plan(context(kube), Request("prod", "web", options={"before": "2"}))
    assert further.target_revision == 1


def test_roll_back_further_with_nothing_older_is_refused():
    with pytest.raises(PermanentError, match="no revision older than 1"):
        get("undo").plan(context(cluster()), Request("prod", "web", options={"before": "1"}))


def test_already_at_the_target_is_nothing_to_do_not_an_error():
    planned = get("undo").plan(context(cluster()), Request("prod", "web", revision=3))
    assert planned.nothing_to_do is not None
    assert "already matches revision 3" in planned.nothing_to_do


def test_a_paused_deployment_is_refused_at_plan_time():
    with pytest.raises(DeploymentPaused):
        get("undo").plan(context(cluster(paused=True)), Request("prod", "web"))


def test_a_tag_never_deployed_is_refused_at_plan_time_unless_forced():
    with pytest.raises(TagNeverDeployed, match="'v7' was never deployed"):
        get("undo").plan(context(cluster()), Request("prod", "web", to_tag="v7"))
    forced = get("undo").plan(
        context(cluster()), Request("prod", "web", to_tag="v7", options={"force": "true"})
    )
    assert forced.pins == {"web": "tag:v7"}
    assert forced.target_revision == 0 and forced.target_replica_set == ""
    assert forced.target.startswith("image tag v7")


def test_a_tag_for_one_container_is_pinned_with_it_and_read_back_the_same():
    planned = get("undo").plan(
        context(cluster()), Request("prod", "web", to_tag="v1", options={"container": "app"})
    )
    assert planned.pins == {"web": "tag:v1|app"}
    again = plan_pinned(cluster(), RollbotConfig(), "prod", "web", "tag:v1|app")  # type: ignore[arg-type]
    assert (again.to_tag, again.container, again.target.replica_set) == ("v1", "app", "web-1")


def test_a_pinned_replica_set_is_planned_again_even_when_previous_means_another_now():
    kube = cluster()
    kube.replica_sets.append(
        replica_set("web-4", "4", template("app:v4", hash_label="h4"), created="4")
    )
    kube.dep = deployment(template("app:v4"))
    again = plan_pinned(kube, RollbotConfig(), "prod", "web", "web-2")  # type: ignore[arg-type]
    assert again.target.number == 2


def test_a_pinned_replica_set_gone_from_the_history_says_so():
    with pytest.raises(TargetGone, match="ReplicaSet web-9"):
        plan_pinned(cluster(), RollbotConfig(), "prod", "web", "web-9")  # type: ignore[arg-type]


def test_a_catalog_service_rolls_back_its_deployment():
    config = RollbotConfig(services={"shop": ServiceEntry(deployment="web")})
    planned = get("undo").plan(context(cluster(), config), Request("prod", "shop"))
    assert planned.pins == {"web": "web-2"} and planned.subject == "deployment/web"


def test_components_pin_their_deployments_the_undo_way():
    config = RollbotConfig(services={"shop": ServiceEntry(deployments=["web"])})
    planned = get("components").plan(
        context(cluster(), config), Request("prod", "shop", "components", to_tag="v1")
    )
    assert planned.pins == {"web": "tag:v1"}


def test_an_undo_applies_one_deployment_and_refuses_more_before_touching_anything():
    with pytest.raises(StrategyError, match="one Deployment, not 2"):
        get("undo").apply(context(cluster()), "prod", {"a": "a-1", "b": "b-1"}, "x", None)  # type: ignore[arg-type]


def test_the_change_cause_names_the_revisions_of_an_undo_and_the_strategy_otherwise():
    assert (
        change_cause("undo", "alice", "500s on /chat", from_revision=3, target_revision=2)
        == "rollbot: rolled back by alice from revision 3 to 2: 500s on /chat"
    )
    assert (
        change_cause("undo", "ci-job", from_revision=2, target_revision=1, to_tag="v1")
        == "rollbot: rolled back by ci-job from revision 2 to image tag v1"
    )
    assert change_cause("helm", "bob", "bad chart") == "rollbot: helm rollback by bob: bad chart"
