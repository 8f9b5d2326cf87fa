"""The "monitor" recommendation's re-assessment: made again as the confirmation had
it, whatever kind of workload the strategy rolls back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from bot.assessment import AssessmentSummary
from bot.errors import PermanentError
from bot.pipeline import Pipeline, aftercare
from bot.pipeline import assess as assess_stage
from bot.store import Job
from bot.strategies import Plan, Request
from bot.strategies.base import Context
from tests.unit.pipeline.conftest import DeploymentsOnly, RecordingSink, S, stored, web_request


class SelfAssessing:
    """A strategy whose workload is not a Deployment (as a Rollout is): it assesses it."""

    name = "self-assessing"

    def __init__(self, summary: AssessmentSummary | None = None, error: str = "") -> None:
        self.summary, self.error = summary, error
        self.requests: list[Request] = []

    def plan(self, ctx: Context, request: Request) -> Plan:
        self.requests.append(request)
        if self.error:
            raise PermanentError(self.error)
        return Plan(
            strategy=self.name,
            namespace=request.namespace,
            subject=f"rollout {request.service}",
            current="revision 2",
            target="revision 1",
            changes=(),
            pins={},
            workloads=(),
            assessment=self.summary,
        )

    def apply(self, ctx: Context, namespace: str, pins: Mapping[str, str], *args: Any) -> str:
        raise AssertionError("a re-assessment applies nothing")


def waiting_record(pipeline: Pipeline, **fields: Any) -> str:
    record = stored(pipeline, web_request(), S.ASSESSED, S.AWAITING_APPROVAL)
    pipeline.store.update(
        record.id, lambda r: r.model_copy(update={"severity": "medium", **fields})
    )
    return record.id


def test_a_workload_the_strategy_assesses_is_reassessed_by_that_strategy(
    pipeline: Pipeline, sink: RecordingSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    strategy = SelfAssessing(
        AssessmentSummary("high", "analysis failed: roll back now", ("Rollout: Degraded",))
    )
    monkeypatch.setattr(assess_stage, "get_strategy", lambda name: strategy)
    record_id = waiting_record(pipeline, strategy="self-assessing", workloads=())

    aftercare.on_reassess(pipeline, Job(kind="reassess", record_id=record_id))

    [(text, offer)] = sink.of("reassessed")
    assert text.startswith("Re-assessed after 10 min: severity medium → high (worse)")
    assert "analysis failed: roll back now" in text and "Rollout: Degraded" in text
    assert not offer, "the confirmation is still open: it is the way to roll back"
    assert strategy.requests[0].service == "web"


def test_the_deployments_a_plan_touched_are_assessed_again_without_planning(
    pipeline: Pipeline,
    sink: RecordingSink,
    cluster: DeploymentsOnly,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    strategy = SelfAssessing(error="planning is not needed")
    monkeypatch.setattr(assess_stage, "get_strategy", lambda name: strategy)
    cluster.put("prod", "web", desired=2, available=2)
    record_id = waiting_record(pipeline, workloads=("web",))
    monkeypatch.setattr(
        assess_stage,
        "assess_deployments",
        lambda p, record, names: [_low(name) for name in names],
    )

    aftercare.on_reassess(pipeline, Job(kind="reassess", record_id=record_id))

    [(text, _)] = sink.of("reassessed")
    assert "severity medium → low (better)" in text
    assert strategy.requests == []


def test_a_workload_that_cannot_be_planned_any_more_is_said_not_reassessed(
    pipeline: Pipeline, sink: RecordingSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        assess_stage, "get_strategy", lambda name: SelfAssessing(error="rollout web not found")
    )
    record_id = waiting_record(pipeline, strategy="self-assessing", workloads=())

    aftercare.on_reassess(pipeline, Job(kind="reassess", record_id=record_id))

    assert sink.of("reassessed") == []
    [milestone] = sink.of("milestone")
    assert "Could not re-assess after 10 min: rollout web not found" in str(milestone)
    assert "Could not re-assess" in pipeline.store.get(record_id).timeline[-1].message


def _low(name: str) -> Any:
    from bot.assessment import Assessment

    return Assessment(
        rollout=f"{name}: 2/2 available",
        pods=None,
        warnings=None,
        error_lines=None,
        severity="low",
        recommendation="no action needed",
    )
