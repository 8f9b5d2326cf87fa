from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot.config import RollbotConfig
from bot.policy import (
    MembershipUnknown,
    NotAllowed,
    check_may_approve,
    check_may_cancel,
    check_may_read_history,
    check_may_request,
    check_may_see,
)
from bot.records import InvalidTransition, RollbackRecord, RollbackState, requested

S = RollbackState


def test_a_rollback_walks_its_states_and_the_timeline_records_each_step():
    record = requested("prod", "web", "U1", reason="5xx")
    for state in (
        S.ASSESSED,
        S.AWAITING_APPROVAL,
        S.APPROVED,
        S.BACKING_UP,
        S.ROLLING_BACK,
        S.VERIFYING,
        S.SUCCEEDED,
    ):
        record = record.transition(state, f"now {state}")
    assert [e.state for e in record.timeline][0] is S.REQUESTED
    assert len(record.timeline) == 8
    assert record.state.terminal


def test_impossible_steps_are_refused_with_the_current_state():
    record = requested("prod", "web", "U1")
    with pytest.raises(InvalidTransition, match="is requested; it cannot become approved"):
        record.transition(S.APPROVED, "skip ahead")
    done = record.transition(S.CANCELLED, "no")
    with pytest.raises(InvalidTransition):
        done.transition(S.ASSESSED, "again")


def test_a_confirmation_expires_after_its_ttl():
    record = requested("prod", "web", "U1", ttl=timedelta(minutes=5))
    assert not record.expired()
    assert record.expired(record.created_at + timedelta(minutes=5))


def test_self_approval_is_refused_unless_policy_allows_it():
    record = requested("prod", "web", "U1")
    with pytest.raises(NotAllowed, match="someone else to approve"):
        check_may_approve(RollbotConfig(), record, "U1")
    check_may_approve(RollbotConfig(allow_self_approval=True), record, "U1")
    check_may_approve(RollbotConfig(), record, "U2")


def test_only_listed_people_may_request_or_approve_when_lists_are_set():
    config = RollbotConfig(requesters=["U1"], approvers=["U9"])
    check_may_request(config, "prod", "U1")
    with pytest.raises(NotAllowed, match="request a rollback"):
        check_may_request(config, "prod", "U2")
    with pytest.raises(NotAllowed, match="may not approve"):
        check_may_approve(config, requested("prod", "web", "U1"), "U2")


def test_the_decision_matrix_on_kubernetes_facts():
    from bot.assessment import PodFacts, decide

    assert decide(PodFacts(0, 3, 9, ("a/app: CrashLoopBackOff",)), False, ())[0] == "critical"
    assert decide(PodFacts(1, 3, 2, ("a", "b")), False, ())[0] == "high"
    assert decide(PodFacts(3, 4, 1, ("a",)), True, ())[0] == "high"
    assert decide(PodFacts(3, 4, 1, ("a",)), False, ())[0] == "medium"
    assert decide(PodFacts(3, 3, 0, ()), False, ("web-1: ERROR db timeout",))[0] == "medium"
    calm = decide(PodFacts(3, 3, 0, ()), False, ())
    assert calm.severity == "low" and "fixing forward" in calm.recommendation
    assert decide(None, False, None)[0] == "low"


def test_emergency_needs_an_environment_that_lets_it_skip_approval():
    config = RollbotConfig.model_validate(
        {
            "environments": {
                "prod": {"namespaces": ["prod"], "emergency_skips_approval": True},
                "staging": {"namespaces": ["staging"]},
            }
        }
    )
    check_may_request(config, "prod", "U1", emergency=True)
    with pytest.raises(NotAllowed, match="--emergency may not skip approval in staging"):
        check_may_request(config, "staging", "U1", emergency=True)


def test_the_same_person_cannot_count_twice_towards_several_approvals():
    record = requested("prod", "web", "U1").model_copy(update={"approvals": ("U2",)})
    with pytest.raises(NotAllowed, match="approved this rollback already"):
        check_may_approve(RollbotConfig(), record, "U2")


def test_a_record_stored_before_recommendation_and_without_status_ts_still_loads():
    stored = requested("prod", "web", "U1").model_dump(mode="json")
    stored.pop("recommendation")
    stored["status_ts"] = "1700000000.000100"  # a field older versions wrote
    record = RollbackRecord.model_validate_json(json.dumps(stored))
    assert record.recommendation is None and record.workload == "web"


def test_the_reason_given_is_kept_without_the_credentials_pasted_into_it():
    record = requested("prod", "web", "U1", reason="5xx; curl -H 'Authorization: Bearer abc.def'")
    assert record.reason == "5xx; curl -H 'Authorization: Bearer [redacted]'"
    assert "abc.def" not in record.timeline[0].message


def test_cancel_is_for_the_requester_and_those_who_may_approve():
    config = RollbotConfig(approvers=["U9"])
    record = requested("prod", "web", "U1")
    check_may_cancel(config, record, "U1")
    check_may_cancel(config, record, "U9")
    with pytest.raises(NotAllowed, match="only its requester and those who may approve"):
        check_may_cancel(config, record, "U2")
    check_may_cancel(RollbotConfig(), record, "U2")  # no approvers listed: anyone may approve


def test_status_and_history_are_for_those_who_may_request_in_that_namespace():
    config = RollbotConfig.model_validate(
        {
            "environments": {
                "prod": {"namespaces": ["prod"], "requesters": ["U1"]},
                "staging": {"namespaces": ["staging"]},
            }
        }
    )
    check_may_see(config, requested("prod", "web", "U1"), "U1")
    check_may_see(config, requested("staging", "web", "U1"), "U2")
    with pytest.raises(NotAllowed, match="status of .* only to people who may request"):
        check_may_see(config, requested("prod", "web", "U1"), "U2")
    check_may_read_history(config, "prod", "U1")
    with pytest.raises(NotAllowed, match="history of namespace prod is shown only"):
        check_may_read_history(config, "prod", "U2")


def test_a_group_that_cannot_be_read_is_neither_yes_nor_no():
    def slack_down(user: str, groups: frozenset[str]) -> frozenset[str]:
        raise MembershipUnknown()

    config = RollbotConfig(requesters=["S0ONCALL"], approvers=["S0LEADS"])
    with pytest.raises(MembershipUnknown, match="could not check your group membership"):
        check_may_request(config, "prod", "U1", groups_of=slack_down)
    with pytest.raises(MembershipUnknown):
        check_may_approve(config, requested("prod", "web", "U1"), "U2", slack_down)
    check_may_request(config, "prod", "S0ONCALL")  # listed by ID: no lookup needed
