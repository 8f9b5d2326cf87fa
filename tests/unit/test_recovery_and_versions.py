from __future__ import annotations

import pytest

from bot.pipeline.verify import target_version
from bot.records import RollbackState, requested
from handlers.actions.recovery import follow_up_request
from handlers.blocks import recovery_buttons
from handlers.ids import ActionId

S = RollbackState


def failed_after(stage: RollbackState, **fields: object):
    record = requested("prod", "web", "U1", **fields)
    record = record.transition(S.ASSESSED, "assessed", target_revision=2)
    record = record.transition(S.AWAITING_APPROVAL, "asked").transition(S.APPROVED, "ok")
    if stage is not S.APPROVED:
        record = record.transition(S.BACKING_UP, "backup")
    if stage in (S.ROLLING_BACK, S.VERIFYING):
        record = record.transition(S.ROLLING_BACK, "rolling")
    if stage is S.VERIFYING:
        record = record.transition(S.VERIFYING, "verifying")
    return record.transition(S.FAILED, "rolled back but unhealthy")


def actions(record) -> list[str]:
    return [str(b.action_id) for b in recovery_buttons(record)]


def test_a_rollback_that_changed_the_cluster_and_failed_offers_both_ways_out():
    assert actions(failed_after(S.VERIFYING)) == [ActionId.ROLL_FURTHER, ActionId.RESTORE]


def test_a_rollback_that_failed_before_changing_anything_offers_nothing():
    assert actions(failed_after(S.BACKING_UP)) == []
    assert actions(failed_after(S.APPROVED)) == []


@pytest.mark.parametrize("strategy", ["components", "helm", "blue-green"])
def test_strategies_without_revision_numbers_offer_only_the_restore(strategy):
    assert actions(failed_after(S.VERIFYING, strategy=strategy)) == [ActionId.RESTORE]


@pytest.mark.parametrize("strategy", ["scale", "divert", "flag"])
def test_operations_offer_no_restore_of_a_rollback_state(strategy):
    assert actions(failed_after(S.VERIFYING, strategy=strategy)) == []


@pytest.mark.parametrize("kind", ["further", "again", "restore"])
def test_a_recovery_button_opens_a_rollback_counted_as_a_follow_up(kind):
    opened = follow_up_request(failed_after(S.VERIFYING), kind, "U2", ttl=900)
    assert (opened.trigger, opened.requested_by) == ("follow-up", "U2")


@pytest.mark.parametrize(
    ("images", "container", "version"),
    [
        (("app=ghcr.io/acme/api:1.4.0",), None, "1.4.0"),
        (("app=registry:5000/acme/api:v2",), None, "v2"),
        (("side=envoy:1.30", "app=api:1.4.0"), "app", "1.4.0"),
        (("app=api@sha256:abc",), None, None),
        (("app=api",), None, None),
        (("app=api:1.0",), "missing", None),
    ],
)
def test_the_expected_version_is_the_target_images_tag(images, container, version):
    assert target_version(images, container) == version
