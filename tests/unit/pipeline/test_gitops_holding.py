"""The hold step and the resume, over a real (embedded) Redis store: recorded
before each patch, finished by a retry, restored exactly, never on its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from bot.config import GitSettings, RollbotConfig, ServiceEntry
from bot.gitops.holds import ReconciliationHold
from bot.gitops.owner import GIT_REPOSITORY, KUSTOMIZATION
from bot.pipeline import Pipeline
from bot.pipeline.holding import (
    hold_reconciliation,
    on_git_match,
    on_resume,
    on_resume_check,
    resume,
)
from bot.records import RollbackRecord, requested
from bot.store import Job, JobQueue, RollbackStore
from tests.unit.argo_bodies import UID, rollout
from tests.unit.gitops.conftest import GitOpsCluster, deployment, kustomization
from tests.unit.gitops.test_gitmatch import seeded_origin
from tests.unit.pipeline.conftest import RecordingSink, S, stored, web_request

KEY = (KUSTOMIZATION.api, "flux-system", KUSTOMIZATION.plural, "apps")


@pytest.fixture
def flux() -> GitOpsCluster:
    cluster = GitOpsCluster()
    cluster.put(KUSTOMIZATION.api, KUSTOMIZATION.plural, kustomization())
    cluster.deployments[("prod", "web")] = deployment()
    return cluster


@pytest.fixture
def gitops_pipeline(
    redis_client: redis.Redis, sink: RecordingSink, flux: GitOpsCluster
) -> Pipeline:
    store, queue = RollbackStore(redis_client), JobQueue(redis_client)
    return Pipeline(store, queue, flux, RollbotConfig(), sink)  # type: ignore[arg-type]


def _planned(p: Pipeline, **hold: object) -> RollbackRecord:
    record = stored(p, web_request(), S.ASSESSED, S.AWAITING_APPROVAL, S.APPROVED)
    planned = ReconciliationHold(kind="Kustomization", namespace="flux-system", name="apps")
    return p.store.update(
        record.id,
        lambda r: r.model_copy(
            update={
                "holds": (planned.model_copy(update=hold),),
                "from_images": ("web=web:1.2",),
                "to_images": ("web=web:1.1",),
            }
        ),
    )


def test_the_hold_records_the_setting_then_suspends_and_says_since_when(
    gitops_pipeline: Pipeline, flux: GitOpsCluster, sink: RecordingSink
) -> None:
    held = hold_reconciliation(gitops_pipeline, _planned(gitops_pipeline))
    assert flux.objects[KEY]["spec"]["suspend"] is True
    hold = held.holds[0]
    assert json.loads(hold.previous or "") == {"suspend": None}
    assert hold.applied_revision == "main@sha1:bad0000"
    assert held.holding == (hold,)
    (text, _, _), *_ = sink.of("milestone")
    assert text.startswith("Reconciliation held since ")
    assert f"/rollback resume {held.id}" in text
    assert "reconciliation held: Flux Kustomization flux-system/apps: suspended" in (
        held.timeline[-1].message
    )


def test_a_worker_that_died_after_the_patch_does_not_record_the_held_setting(
    gitops_pipeline: Pipeline, flux: GitOpsCluster
) -> None:
    """Died between the patch and marking it held: the record already has the
    previous setting, which the retry keeps (it does not read "suspend: true")."""
    record = _planned(gitops_pipeline, previous=json.dumps({"suspend": None}))
    flux.objects[KEY]["spec"]["suspend"] = True  # the patch that was made
    held = hold_reconciliation(gitops_pipeline, record)
    assert held.holds[0].previous_value is None and held.holds[0].held
    resumed = resume(gitops_pipeline, held, "U0CAROL")
    assert "suspend" not in flux.objects[KEY]["spec"]
    assert resumed.holds[0].resumed_by == "U0CAROL"


def test_a_hold_done_already_is_not_done_twice(
    gitops_pipeline: Pipeline, flux: GitOpsCluster
) -> None:
    held = hold_reconciliation(gitops_pipeline, _planned(gitops_pipeline))
    patches = len(flux.patches)
    assert hold_reconciliation(gitops_pipeline, held) == held
    assert len(flux.patches) == patches


def test_resume_restores_exactly_and_once(
    gitops_pipeline: Pipeline, flux: GitOpsCluster, sink: RecordingSink
) -> None:
    before = dict(flux.objects[KEY]["spec"])
    held = hold_reconciliation(gitops_pipeline, _planned(gitops_pipeline))
    resumed = resume(gitops_pipeline, held, "U0CAROL")
    assert flux.objects[KEY]["spec"] == before
    assert not resumed.holding
    patches = len(flux.patches)
    assert resume(gitops_pipeline, resumed, "U0CAROL") == resumed  # a second click
    assert len(flux.patches) == patches
    assert sink.of("milestone")[-1][0] == (
        "Reconciliation resumed by U0CAROL: Flux Kustomization flux-system/apps back to "
        "spec.suspend absent"
    )


def _source(flux: GitOpsCluster, revision: str) -> None:
    flux.put(
        GIT_REPOSITORY.api,
        GIT_REPOSITORY.plural,
        {
            "metadata": {"name": "apps", "namespace": "flux-system"},
            "status": {"artifact": {"revision": revision}},
        },
    )


def test_the_resume_question_says_git_would_bring_the_bad_version_back(
    gitops_pipeline: Pipeline, flux: GitOpsCluster, sink: RecordingSink
) -> None:
    _source(flux, "main@sha1:bad0000")
    held = hold_reconciliation(gitops_pipeline, _planned(gitops_pipeline))
    job = Job(kind="resume_check", record_id=held.id, args={"user": "U0CAROL"})
    on_resume_check(gitops_pipeline, job)
    (text,) = sink.of("resume_question")
    assert "restores spec.suspend absent" in text
    assert "resuming brings the bad version back (web=web:1.2)" in text
    assert "Running now: web=web:1.1" in text
    assert flux.objects[KEY]["spec"]["suspend"] is True  # asking resumes nothing


def test_the_resume_question_says_when_git_has_moved_on(
    gitops_pipeline: Pipeline, flux: GitOpsCluster, sink: RecordingSink
) -> None:
    _source(flux, "main@sha1:f1xed00")
    held = hold_reconciliation(gitops_pipeline, _planned(gitops_pipeline))
    on_resume_check(
        gitops_pipeline, Job(kind="resume_check", record_id=held.id, args={"user": "U0C"})
    )
    (text,) = sink.of("resume_question")
    assert "Git has changed since the hold (main@sha1:bad0000 when held → main@sha1:f1xed00" in text
    assert "what runs is the rollback's target" in text


def test_the_resume_question_of_a_rollout_shows_what_the_rollout_runs(
    gitops_pipeline: Pipeline, flux: GitOpsCluster, sink: RecordingSink
) -> None:
    _source(flux, "main@sha1:bad0000")
    flux.rollouts[("prod", "eli-maor-backend")] = rollout(
        "ghcr.io/eli/backend:1.2", stable="h3", current="h3"
    )
    record = stored(
        gitops_pipeline,
        requested("prod", "eli-maor", "U0ALICE", channel="C0OPS", strategy="argo-rollouts"),
        S.ASSESSED,
        S.AWAITING_APPROVAL,
        S.APPROVED,
    )
    hold = ReconciliationHold(kind="Kustomization", namespace="flux-system", name="apps")
    planned = gitops_pipeline.store.update(
        record.id,
        lambda r: r.model_copy(
            update={"holds": (hold,), "pins": {"rollout": "eli-maor-backend", "uid": UID}}
        ),
    )
    held = hold_reconciliation(gitops_pipeline, planned)
    on_resume_check(
        gitops_pipeline, Job(kind="resume_check", record_id=held.id, args={"user": "U0C"})
    )
    (text,) = sink.of("resume_question")
    assert "Running now: backend=ghcr.io/eli/backend:1.2" in text


def test_nothing_held_nothing_to_ask(gitops_pipeline: Pipeline, sink: RecordingSink) -> None:
    record = _planned(gitops_pipeline)
    on_resume_check(
        gitops_pipeline, Job(kind="resume_check", record_id=record.id, args={"user": "U0C"})
    )
    assert sink.of("resume_question") == []
    assert "holds no reconciliation" in sink.of("tell")[0][1]


def test_the_git_commit_is_recorded_and_then_resuming_keeps_the_good_version(
    redis_client: redis.Redis, sink: RecordingSink, flux: GitOpsCluster, tmp_path: Path
) -> None:
    origin = seeded_origin(tmp_path)
    git = GitSettings.model_construct(
        repository=str(origin), branch="main", path="apps", push_branch="",
        token_env=None, token_file=None, author="rollbot <rollbot@example>",
    )  # fmt: skip
    config = RollbotConfig.model_construct(
        services={"web": ServiceEntry.model_construct(namespace="prod", git=git)}
    )
    p = Pipeline(RollbackStore(redis_client), JobQueue(redis_client), flux, config, sink)  # type: ignore[arg-type]
    planned = p.store.update(
        _planned(p).id,
        lambda r: r.model_copy(
            update={
                "from_images": ("web=registry.local/web:1.2",),
                "to_images": ("web=registry.local/web:1.1",),
            }
        ),
    )
    held = hold_reconciliation(p, planned)
    on_git_match(p, Job(kind="git_match", record_id=held.id))
    hold = p.store.get(held.id).holds[0]
    assert hold.git_commit and hold.git_branch == "main"
    assert sink.of("milestone")[-1][0].startswith(
        f"Git: the rollback committed as {hold.git_commit[:12]} on "
    )
    _source(flux, f"main@sha1:{hold.git_commit}")
    on_resume_check(p, Job(kind="resume_check", record_id=held.id, args={"user": "U0C"}))
    (text,) = sink.of("resume_question")
    assert "which sets the good version back: resuming keeps it" in text


def test_a_resume_refused_by_rbac_is_said_and_the_hold_kept(
    gitops_pipeline: Pipeline, flux: GitOpsCluster, sink: RecordingSink
) -> None:
    held = hold_reconciliation(gitops_pipeline, _planned(gitops_pipeline))
    flux.refused.add(("patch", "kustomizations"))
    on_resume(gitops_pipeline, Job(kind="resume", record_id=held.id, args={"user": "U0CAROL"}))
    assert gitops_pipeline.store.get(held.id).holding
    text, tone, alert = sink.of("milestone")[-1]
    assert text.startswith("Reconciliation not resumed: ") and alert == "U0CAROL"
