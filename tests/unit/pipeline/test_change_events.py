"""A rollback's change events are queued in the write that starts or ends it:
once each, and none for what changed nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.change_events import CHANGES, ChangeEvent
from bot.leases import Fence
from bot.pipeline.wiring import Pipeline
from bot.runtime import runtime_from_environment
from bot.store import RollbackStore
from tests.unit.pipeline.conftest import S, stored, web_request

TO_ROLLOUT = (S.ASSESSED, S.AWAITING_APPROVAL, S.APPROVED, S.BACKING_UP, S.ROLLING_BACK)


def queued(p: Pipeline) -> list[ChangeEvent]:
    return [ChangeEvent.model_validate_json(raw) for raw in p.store.redis.lrange(CHANGES, 0, -1)]


def test_a_rollback_is_told_when_it_starts_and_when_it_ends(pipeline: Pipeline) -> None:
    saved = stored(pipeline, web_request(reason="crash loop"), *TO_ROLLOUT, S.VERIFYING)
    pipeline.store.update(saved.id, lambda r: r.transition(S.SUCCEEDED, "healthy"))
    pipeline.store.update(saved.id, lambda r: r.note("follow-up: stable"))
    started, finished = queued(pipeline)
    assert (started.id, started.kind, started.state) == (
        f"{saved.id}:started",
        "started",
        "rolling_back",
    )
    assert (finished.kind, finished.state, finished.service) == ("finished", "succeeded", "web")
    assert finished.reason == "crash loop" and finished.approved_by == "U0BOB"


def test_a_failure_while_rolling_back_is_told_with_its_error(pipeline: Pipeline) -> None:
    saved = stored(pipeline, web_request(), *TO_ROLLOUT)
    pipeline.store.update(
        saved.id, lambda r: r.transition(S.FAILED, "rollout failed", error="deadline exceeded")
    )
    assert [(e.kind, e.state, e.error) for e in queued(pipeline)] == [
        ("started", "rolling_back", None),
        ("finished", "failed", "deadline exceeded"),
    ]


def test_what_changed_nothing_is_not_told(pipeline: Pipeline) -> None:
    stored(pipeline, web_request(), S.ASSESSED, S.AWAITING_APPROVAL, S.CANCELLED)
    stored(pipeline, web_request(), S.ASSESSED, S.AWAITING_APPROVAL, S.EXPIRED)
    stored(pipeline, web_request(), S.FAILED)  # refused at the assessment
    stored(pipeline, web_request(dry_run=True), *TO_ROLLOUT, S.VERIFYING, S.SUCCEEDED)
    assert queued(pipeline) == []


def test_a_drill_and_its_way_back_are_not_told(pipeline: Pipeline) -> None:
    # A drill says "nothing here was sent to anyone": no page, no webhook, no status page.
    drill = stored(pipeline, web_request(trigger="drill"), *TO_ROLLOUT, S.VERIFYING)
    pipeline.store.update(drill.id, lambda r: r.transition(S.SUCCEEDED, "healthy"))
    forward = stored(pipeline, web_request(trigger="drill-forward"), *TO_ROLLOUT)
    pipeline.store.update(forward.id, lambda r: r.transition(S.FAILED, "no", error="deadline"))
    assert queued(pipeline) == []


def test_a_config_that_includes_drills_has_them_told_marked_as_drills(pipeline: Pipeline) -> None:
    telling = RollbackStore(pipeline.store.redis, tell_drills=True)
    assert telling.fenced(Fence("rollbot:lease:x", "t")).tell_drills  # workers write fenced
    drill = telling.create(web_request(trigger="drill"))
    for state in (*TO_ROLLOUT, S.VERIFYING, S.SUCCEEDED):
        telling.update(drill.id, lambda r, s=state: r.transition(s, f"to {s}"))
    assert [(e.kind, e.state, e.drill) for e in queued(pipeline)] == [
        ("started", "rolling_back", True),
        ("finished", "succeeded", True),
    ]


@pytest.mark.parametrize("include", [True, False])
def test_the_runtimes_store_tells_drills_as_the_config_says(
    include: bool, pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "rollbot.yaml").write_text(f"notify: {{include_drills: {str(include).lower()}}}\n")
    (tmp_path / "kubeconfig").write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
    )
    socket = pipeline.store.redis.connection_pool.connection_kwargs["path"]
    monkeypatch.setenv("REDIS_URL", f"unix://{socket}")
    runtime = runtime_from_environment(str(tmp_path / "kubeconfig"), str(tmp_path / "rollbot.yaml"))
    assert runtime.store.tell_drills is include
