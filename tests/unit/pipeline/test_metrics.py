"""/metrics: counters and histograms each finished rollback adds to once, in Redis,
so every replica shows the same growing figures; written by the official client."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import render
from bot.pipeline.wiring import Pipeline
from bot.retention import BACKFILLED, backfill_outcomes
from bot.store import COUNTERS
from tests.unit.pipeline.conftest import S, stored, web_request

TO_THE_END = (S.ASSESSED, S.AWAITING_APPROVAL, S.APPROVED, S.BACKING_UP, S.ROLLING_BACK)


def scrape(p: Pipeline) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = render(p.store.recent(1000), p.store.counters(), {"prod": "production"}.get)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def labels(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(values.items()))


WEB = {"service": "web", "namespace": "prod", "environment": "production"}


def test_each_finished_rollback_counts_once_by_outcome_and_trigger(pipeline: Pipeline) -> None:
    for end in (S.SUCCEEDED, S.SUCCEEDED, S.FAILED):
        saved = stored(pipeline, web_request(), *TO_THE_END, S.VERIFYING)
        pipeline.store.update(saved.id, lambda r, e=end: r.transition(e, "end"))
        pipeline.store.update(saved.id, lambda r: r.note("a follow-up note"))  # not again
    stored(pipeline, web_request(), S.ASSESSED)  # under way: not counted
    samples = scrape(pipeline)
    common = {**WEB, "strategy": "undo", "trigger": "manual"}
    assert samples[("rollbot_rollbacks_total", labels(**common, outcome="succeeded"))] == 2
    assert samples[("rollbot_rollbacks_total", labels(**common, outcome="failed"))] == 1
    by_person = {**WEB, "trigger": "manual"}
    assert samples[("rollbot_time_to_restore_seconds_count", labels(**by_person))] == 2
    assert samples[("rollbot_time_to_restore_seconds_bucket", labels(**by_person, le="30.0"))] == 2
    assert samples[("rollbot_approval_wait_seconds_count", labels(**by_person))] == 3
    assert samples[("rollbot_store_up", ())] == 1


def test_counters_survive_the_records_that_made_them(pipeline: Pipeline) -> None:
    saved = stored(pipeline, web_request(), S.CANCELLED)
    pipeline.store.forget(saved.id)  # pruned past the retention
    samples = scrape(pipeline)
    key = labels(**WEB, strategy="undo", trigger="manual", outcome="cancelled")
    assert samples[("rollbot_rollbacks_total", key)] == 1


def test_records_from_before_the_counters_are_counted_once(pipeline: Pipeline) -> None:
    stored(pipeline, web_request(), S.CANCELLED)
    pipeline.store.redis.delete(COUNTERS, "rollbot:outcomes", BACKFILLED)
    assert backfill_outcomes(pipeline.store) == 1
    pipeline.store.redis.delete(BACKFILLED)
    assert backfill_outcomes(pipeline.store) == 0  # its outcome is there: not again
    key = labels(**WEB, strategy="undo", trigger="manual", outcome="cancelled")
    assert scrape(pipeline)[("rollbot_rollbacks_total", key)] == 1


def test_a_store_that_does_not_answer_is_said() -> None:
    text = render(None, None)
    assert "rollbot_store_up 0.0" in text and "rollbot_rollbacks_total" not in text


def test_durations_are_kept_by_trigger_and_only_of_rollbacks_the_stats_count(
    pipeline: Pipeline,
) -> None:
    """A dashboard leaves drills out by their trigger, and a confirmation nobody ran
    has no time to detection in the histogram, as in /rollback stats."""
    bad_since = datetime.now(UTC) - timedelta(minutes=20)
    for trigger, end in (("drill", S.SUCCEEDED), ("manual", S.SUCCEEDED), ("manual", S.CANCELLED)):
        request = web_request(trigger=trigger).model_copy(update={"bad_since": bad_since})
        if end is S.CANCELLED:
            stored(pipeline, request, S.ASSESSED, S.CANCELLED)
        else:
            stored(pipeline, request, *TO_THE_END, S.VERIFYING, end)
    samples = scrape(pipeline)
    for trigger in ("drill", "manual"):
        by = labels(**WEB, trigger=trigger)
        assert samples[("rollbot_time_to_restore_seconds_count", by)] == 1
        assert samples[("rollbot_time_to_detection_seconds_count", by)] == 1  # not cancelled


def test_histograms_kept_before_the_trigger_label_are_still_shown() -> None:
    old = {json.dumps(["time_to_restore", "web", "prod", "+Inf"]): 2.0}
    text = render([], old, {"prod": "production"}.get)
    assert (
        'rollbot_time_to_restore_seconds_count{environment="production",namespace="prod",'
        'service="web",trigger=""} 2.0'
    ) in text
