"""`kubectl rollout status`'s six answers."""

from __future__ import annotations

from bot.rollout import RolloutPhase, rollout_state


def dep(*, generation=2, observed=2, replicas=3, updated=3, total=3, available=3, condition=None):
    status = {
        "observedGeneration": observed,
        "updatedReplicas": updated,
        "replicas": total,
        "availableReplicas": available,
    }
    if condition:
        status["conditions"] = [condition]
    return {
        "metadata": {"name": "web", "generation": generation},
        "spec": {"replicas": replicas},
        "status": status,
    }


DEADLINE = {
    "type": "Progressing",
    "status": "False",
    "reason": "ProgressDeadlineExceeded",
    "lastUpdateTime": "2026-01-01T00:00:00Z",
}


def test_unobserved_spec_waits_before_anything_else():
    state = rollout_state(dep(generation=3, observed=2, condition=DEADLINE))
    assert state.phase is RolloutPhase.WAITING_FOR_SPEC


def test_a_fresh_deadline_exceeded_condition_fails_the_rollout():
    state = rollout_state(dep(condition=DEADLINE))
    assert state.phase is RolloutPhase.DEADLINE_EXCEEDED
    assert state.message == 'deployment "web" exceeded its progress deadline'


def test_the_stale_deadline_from_before_the_undo_is_ignored():
    state = rollout_state(dep(updated=1, condition=DEADLINE), stale_deadline="2026-01-01T00:00:00Z")
    assert state.phase is RolloutPhase.UPDATING


def test_the_progress_messages_match_kubectl():
    assert rollout_state(dep(updated=1)).message.endswith(
        "1 out of 3 new replicas have been updated..."
    )
    assert rollout_state(dep(total=5)).message.endswith("2 old replicas are pending termination...")
    assert rollout_state(dep(available=2)).message.endswith(
        "2 of 3 updated replicas are available..."
    )
    assert rollout_state(dep()).message == 'deployment "web" successfully rolled out'
    assert rollout_state(dep()).phase is RolloutPhase.COMPLETE


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_no_progress_for_the_deadline_fails_even_without_the_controllers_condition():
    import pytest

    from bot.errors import RolloutFailed
    from bot.rollout import RolloutJudge

    clock = FakeClock()
    judge = RolloutJudge("web", None, progress_deadline=10, clock=clock)
    judge.judge(dep(updated=0, total=3, available=2))
    clock.now = 8
    judge.judge(dep(updated=1, total=3, available=2))  # progress: the clock restarts
    clock.now = 17
    judge.judge(dep(updated=1, total=3, available=2))
    clock.now = 18.5
    with pytest.raises(RolloutFailed, match="made no progress for 10s"):
        judge.judge(dep(updated=1, total=3, available=2))


def test_a_complete_rollout_is_never_stalled():
    from bot.rollout import RolloutJudge

    clock = FakeClock()
    judge = RolloutJudge("web", None, progress_deadline=1, clock=clock)
    judge.judge(dep())
    clock.now = 100
    judge.check_stalled()
    assert judge.done
