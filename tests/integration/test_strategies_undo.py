"""The Deployment undo as a strategy on the real control plane: what is approved is
what is applied, whatever happened in between, and a second apply only follows."""

from __future__ import annotations

import pytest

from bot.config import RollbotConfig
from bot.deployments import TagNeverDeployed
from bot.strategies import Context, Request, change_cause
from bot.strategies import get as get_strategy
from tests.integration.strategy_helpers import Recorder
from tests.integration.workloads import Workloads

pytestmark = pytest.mark.cluster
UNDO = get_strategy("undo")


def context(kube) -> Context:
    return Context(kube=kube, config=RollbotConfig(), timeout=60)


def test_the_approved_revision_is_applied_even_after_a_new_deploy_lands(kube, workloads):
    workloads.create("web", ["app:v1", "app:v2"])
    ctx = context(kube)
    plan = UNDO.plan(ctx, Request(workloads.namespace, "web"))
    assert (plan.from_revision, plan.target_revision) == (2, 1)
    workloads.roll("web", "app:v3", cause="a deploy racing the rollback")
    workloads.wait_complete("web")
    progress = Recorder()
    cause = change_cause("undo", "alice", from_revision=2, target_revision=1)
    done = UNDO.apply(ctx, workloads.namespace, plan.pins, cause, progress)
    assert done == "deployment/web rolled back to app:v1"
    assert workloads.images_of("web") == ["app:v1"]
    assert progress.milestones == ["Rollback applied: revision 3 → 1"]
    assert progress.completed("web")


def test_applying_again_after_the_patch_only_follows_the_rollout(kube, workloads: Workloads):
    workloads.create("web", ["app:v1", "app:v2"])
    ctx = context(kube)
    plan = UNDO.plan(ctx, Request(workloads.namespace, "web"))
    UNDO.apply(ctx, workloads.namespace, plan.pins, "rollbot: first", Recorder())
    generation = workloads.get("web")["metadata"]["generation"]
    again = Recorder()
    UNDO.apply(ctx, workloads.namespace, plan.pins, "rollbot: second", again)
    assert again.milestones == ["Rollback was already applied; following the rollout"]
    assert again.completed("web")
    assert workloads.get("web")["metadata"]["generation"] == generation, "patched once"


def test_an_image_tag_is_refused_at_plan_time_and_applied_once_approved(kube, workloads):
    workloads.create("web", ["reg.local/app:v1", "reg.local/app:v2"])
    ctx = context(kube)
    with pytest.raises(TagNeverDeployed, match="'v7' was never deployed"):
        UNDO.plan(ctx, Request(workloads.namespace, "web", to_tag="v7"))
    plan = UNDO.plan(ctx, Request(workloads.namespace, "web", to_tag="v1"))
    assert plan.pins == {"web": "tag:v1"}
    UNDO.apply(ctx, workloads.namespace, plan.pins, "rollbot: tag", Recorder())
    assert workloads.images_of("web") == ["reg.local/app:v1"]


def test_roll_back_further_goes_past_the_revision_that_did_not_help(kube, workloads):
    workloads.create("web", ["app:v1", "app:v2", "app:v3"])
    ctx = context(kube)
    plan = UNDO.plan(ctx, Request(workloads.namespace, "web", options={"before": "2"}))
    assert plan.target_revision == 1
    UNDO.apply(ctx, workloads.namespace, plan.pins, "rollbot: further", Recorder())
    assert workloads.images_of("web") == ["app:v1"]
