"""`/metrics`: rollbacks by state and how long finished ones took, in Prometheus's
text exposition format (version 0.0.4).

The figures are counted from the store's most recent records rather than kept in
each process, so every replica reports the same numbers whichever of them
handled a rollback: aggregate with `max`, not `sum`, across replicas.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from bot.records import RollbackRecord, RollbackState

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: How many of the most recent records the figures are computed from.
WINDOW = 1000
#: The outcomes a duration is reported for: a rollback that ran to its end.
OUTCOMES = (RollbackState.SUCCEEDED, RollbackState.FAILED)


def duration_seconds(record: RollbackRecord) -> float | None:
    """From the request to the terminal state (the time to restore), if it ended."""
    finished = next((e.at for e in record.timeline if e.state.terminal), None)
    if finished is None:
        return None
    return max(0.0, (finished - record.created_at).total_seconds())


def render(records: Sequence[RollbackRecord] | None) -> str:
    """The exposition text; `records` None means the store could not be read."""
    lines = [
        "# HELP rollbot_store_up Whether the store (Redis) answered this scrape.",
        "# TYPE rollbot_store_up gauge",
        f"rollbot_store_up {0 if records is None else 1}",
    ]
    if records is None:
        return "\n".join(lines) + "\n"
    rollbacks = [r for r in records if not r.dry_run]
    by_state = Counter(r.state for r in rollbacks)
    lines += [
        f"# HELP rollbot_rollbacks Rollbacks by state among the {WINDOW} most recent requests "
        "(dry runs aside).",
        "# TYPE rollbot_rollbacks gauge",
        *(f'rollbot_rollbacks{{state="{s.value}"}} {by_state[s]}' for s in RollbackState),
        "# HELP rollbot_dry_runs Dry runs among the most recent requests.",
        "# TYPE rollbot_dry_runs gauge",
        f"rollbot_dry_runs {len(records) - len(rollbacks)}",
        "# HELP rollbot_rollback_duration_seconds Request to outcome, of the finished "
        "rollbacks among the most recent requests.",
        "# TYPE rollbot_rollback_duration_seconds summary",
    ]
    for outcome in OUTCOMES:
        durations = [
            d for r in rollbacks if r.state is outcome and (d := duration_seconds(r)) is not None
        ]
        label = f'{{outcome="{outcome.value}"}}'
        lines.append(f"rollbot_rollback_duration_seconds_sum{label} {float(sum(durations))!r}")
        lines.append(f"rollbot_rollback_duration_seconds_count{label} {len(durations)}")
    return "\n".join(lines) + "\n"
