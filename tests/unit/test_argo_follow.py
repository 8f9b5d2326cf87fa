"""Following a Rollout after rollbot changed it: its status as progress, when an
abort is done, and which pauses wait for a person."""

from __future__ import annotations

from bot.argo_rollouts import history, read_status
from bot.rollout import RolloutPhase
from bot.strategies.argo_follow import stable_serving, state_of, waits_for_a_person
from tests.unit.argo_bodies import HISTORY, replica_set, rollout


def paused_at(step: int, **kw: object):  # type: ignore[no-untyped-def]
    return rollout(
        "ghcr.io/eli/backend:1.3",
        stable="h3",
        current="h4",
        phase="Paused",
        message="CanaryPauseStep",
        step=step,
        paused=("CanaryPauseStep",),
        **kw,  # type: ignore[arg-type]
    )


def test_a_pause_with_a_duration_goes_on_by_itself_one_without_waits_for_a_person():
    timed, forever = paused_at(1), paused_at(3)  # eli-maor: {duration: 2m}, then {}
    assert waits_for_a_person(timed, read_status(timed)) is None
    assert waits_for_a_person(forever, read_status(forever)) == (
        "it is paused at step 3/6, a pause with no duration"
    )


def test_a_rollout_paused_by_hand_waits_for_a_person():
    body = paused_at(1)
    body["spec"]["paused"] = True
    assert waits_for_a_person(body, read_status(body)) == "it is paused by hand (spec.paused)"


def test_progress_carries_the_rollout_line_and_completes_only_when_told():
    body = paused_at(1)
    status = read_status(body, history(body, HISTORY))
    state = state_of(body, status, done=False)
    assert state.phase is RolloutPhase.UPDATING
    assert state.message == (
        "rollout eli-maor-backend: Paused (CanaryPauseStep): step 1/6, canary weight 20%, 5/5 ready"
    )
    assert state_of(body, status, done=True).phase is RolloutPhase.COMPLETE
    unseen = paused_at(1, generation=5, observed=4)
    assert state_of(unseen, read_status(unseen), done=False).phase is RolloutPhase.WAITING_FOR_SPEC


def test_an_abort_is_done_once_the_canary_has_no_traffic_and_stable_has_every_pod():
    aborted = paused_at(0, abort=True)
    scaled_back = [
        *HISTORY[:2],
        replica_set(3, "ghcr.io/eli/backend:1.2", "h3", created="2026-12-01T12:00:00Z", replicas=5),
        replica_set(4, "ghcr.io/eli/backend:1.3", "h4", created="2026-12-01T13:00:00Z", replicas=0),
    ]
    revisions = history(aborted, scaled_back)
    assert stable_serving(read_status(aborted, revisions), revisions)
    still_canary = history(aborted, HISTORY)  # canary 1 ready, stable 4 of 5
    assert not stable_serving(read_status(aborted, still_canary), still_canary)
    not_aborted = paused_at(0)
    assert not stable_serving(read_status(not_aborted, revisions), revisions)


def test_a_blue_green_abort_is_done_when_the_active_service_selects_stable():
    def blue_green(active: str):  # type: ignore[no-untyped-def]
        return rollout(
            "ghcr.io/eli/backend:1.3", stable="h3", current="h4", abort=True,
            blue_green=True, active=active, phase="Degraded",
        )  # fmt: skip

    full = [replica_set(3, "b:1", "h3", created="2026-12-01T12:00:00Z", replicas=5)]
    for active, done in (("h3", True), ("h4", False)):
        body = blue_green(active)
        revisions = history(body, full)
        assert stable_serving(read_status(body, revisions), revisions) is done
