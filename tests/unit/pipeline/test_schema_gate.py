"""A rollback across an incompatible migration never runs by itself: what the
assess stage does with an automatic rollback and an --emergency that crosses one."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from bot.config import RollbotConfig
from bot.migrations import SchemaCrossing
from bot.pipeline import Pipeline, assess
from bot.policy import NotAllowed
from tests.unit.pipeline.conftest import RecordingSink, S, stored, web_request

INCOMPATIBLE = SchemaCrossing(
    current_label="revision 42",
    target_label="revision 41",
    current="0042",
    target="0041",
    source="env var SCHEMA_VERSION",
    compatible=False,
    approvers=("S0DBAS",),
)


def assessed(p: Pipeline, **kwargs: Any):
    record = stored(p, web_request(**kwargs), S.ASSESSED)
    return p.store.update(record.id, lambda r: r.model_copy(update={"migration": INCOMPATIBLE}))


def policy(p: Pipeline, **fields: Any) -> Pipeline:
    return replace(p, config=RollbotConfig(**fields))


def test_an_automatic_rollback_across_it_waits_for_approval_even_where_policy_runs_them_at_once(
    pipeline: Pipeline, sink: RecordingSink
) -> None:
    p = policy(pipeline, auto_execute=True, emergency_skips_approval=True)
    record = assessed(p, trigger="automatic", emergency=True)

    assess.ask(p, record)

    waiting = p.store.get(record.id)
    assert waiting.state is S.AWAITING_APPROVAL and not waiting.emergency
    assert "never run by itself, waiting for approval and a DBA's" in waiting.timeline[-1].message
    assert sink.kinds() == ["confirmation"]


def test_an_emergency_across_it_skips_the_usual_approval_but_waits_for_a_dba(
    pipeline: Pipeline, sink: RecordingSink
) -> None:
    p = policy(pipeline, emergency_skips_approval=True)
    record = assessed(p, emergency=True)

    assess.ask(p, record)

    waiting = p.store.get(record.id)
    assert waiting.state is S.AWAITING_APPROVAL and waiting.emergency
    assert "waiting for a DBA's approval" in waiting.timeline[-1].message


def test_an_emergency_where_policy_allows_none_is_still_refused(pipeline: Pipeline) -> None:
    record = assessed(pipeline, emergency=True)
    with pytest.raises(NotAllowed, match="may not skip approval"):
        assess.ask(pipeline, record)
