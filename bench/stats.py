"""`rollbot stats` over a year of rollbacks: 10 000 synthetic finished records in a
real redis-server (the embedded one, as `rollbot stats` uses on a laptop), then,
in rounds whose order alternates:

* the floor: ZRANGEBYSCORE of the year's outcomes, the bytes only (the Redis
  round trip and transfer; nothing rollbot could cut). This is the baseline;
* rollbot: the outcomes read and decoded, and the figures computed (per
  service and environment, durations, trend), as the CLI and Slack do;
* the whole records instead: read, unsealed and validated, then computed
  from (what the stats would cost without the outcomes kept beside them).

Goal (issue 13): the stats of a year of records in well under a second.

    python bench/stats.py [--records 10000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.records import RollbackRecord, RollbackState, TimelineEntry  # noqa: E402
from bot.retention import RECORDS, created_between, outcomes_between  # noqa: E402
from bot.stats import Outcome, compute  # noqa: E402
from bot.store import OUTCOMES, RollbackStore, connect  # noqa: E402

S = RollbackState
PATH = (S.ASSESSED, S.AWAITING_APPROVAL, S.APPROVED, S.BACKING_UP, S.ROLLING_BACK, S.VERIFYING)
NOW = datetime.now(UTC)
YEAR = timedelta(days=365)


def synthetic(rng: random.Random, n: int) -> RollbackRecord:
    at = NOW - timedelta(days=rng.uniform(0, 364))
    end = rng.choice([S.SUCCEEDED] * 8 + [S.FAILED, S.CANCELLED])
    steps = PATH if end is not S.CANCELLED else PATH[:2]
    entries = [TimelineEntry(at=at, state=S.REQUESTED, message="requested", actor="U0ALICE")]
    for i, state in enumerate(steps, start=1):
        seconds = 5 * i + (rng.uniform(10, 600) if state is S.APPROVED else 0)
        entries.append(TimelineEntry(at=at + timedelta(seconds=seconds), state=state, message="x"))
    entries.append(
        TimelineEntry(at=entries[-1].at + timedelta(minutes=3), state=end, message="end")
    )
    return RollbackRecord(
        namespace=rng.choice(["prod", "staging"]),
        workload=f"service-{n % 40}",
        requested_by="U0ALICE",
        created_at=at,
        state=end,
        timeline=tuple(entries),
        bad_since=at - timedelta(minutes=rng.uniform(1, 90)),
        strategy=rng.choice(["undo", "helm", "components"]),
        trigger=rng.choice(["manual", "automatic", "cli"]),
        version=1,
    )


def fill(store: RollbackStore, count: int) -> None:
    rng = random.Random(13)
    pipe = store.redis.pipeline(transaction=False)
    for n in range(count):
        record = synthetic(rng, n)
        key = f"rollbot:record:{record.id}"
        outcome = Outcome.of(record)
        pipe.set(key, store._seal(key, record))
        pipe.zadd(RECORDS, {record.id: outcome.created_at})
        pipe.zadd(OUTCOMES, {outcome.to_json(): outcome.created_at})
        if n % 1000 == 999:
            pipe.execute()
    pipe.execute()


def environment_of(namespace: str) -> str | None:
    return {"prod": "production"}.get(namespace)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = RollbackStore(connect(data_dir=folder), key=b"bench-key" * 4)
        fill(store, args.records)
        since = NOW - YEAR

        def floor() -> int:
            return len(store.redis.zrangebyscore(OUTCOMES, since.timestamp(), "+inf"))

        def rollbot() -> int:
            stats = compute(outcomes_between(store, since), environment_of, since=since)
            return stats.total.rollbacks + stats.total.not_run

        def whole_records() -> int:
            stats = compute(created_between(store, since), environment_of, since=since)
            return stats.total.rollbacks + stats.total.not_run

        kinds: dict[str, Callable[[], int]] = {
            "floor: the outcomes' bytes from Redis": floor,
            "rollbot stats (outcomes read, figures computed)": rollbot,
            "from the whole records instead": whole_records,
        }
        times: dict[str, list[float]] = {name: [] for name in kinds}
        for round_ in range(args.rounds):
            order = list(kinds.items())
            if round_ % 2:
                order.reverse()
            for name, run in order:
                started = time.perf_counter()
                counted = run()
                times[name].append(time.perf_counter() - started)
                assert counted == args.records, f"{name} counted {counted}"
        base = statistics.median(times[next(iter(kinds))])
        print(f"{args.records} finished rollbacks over a year, {args.rounds} rounds, medians:")
        print("| | seconds | ratio vs the floor |\n|---|---|---|")
        for name, values in times.items():
            median = statistics.median(values)
            print(f"| {name} | {median:.3f} | {median / base:.1f} |")
        store.redis.connection_pool.disconnect()
        try:
            store.redis.shutdown(nosave=True)
        except Exception:  # noqa: BLE001 - it went already: SHUTDOWN closes the connection
            pass


if __name__ == "__main__":
    main()
