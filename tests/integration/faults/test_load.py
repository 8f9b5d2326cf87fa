"""Load: many rollbacks across many namespaces, three workers (separate
processes): every rollback succeeds, none is applied twice, and the rate is
printed in rollbacks per minute.

CI runs 20 rollbacks in 10 namespaces; `make faults` (ROLLBOT_FAULTS_LONG=1)
runs issue 16's 100 in 50, the figure bench/README.md records."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from bot.kube import Kube
from bot.records import RollbackRecord, RollbackState
from bot.store import RollbackStore
from handlers.ids import ActionId
from testbed.slack_api import FakeSlackApi
from testbed.slack_user import SlackUser
from tests.integration.faults.conftest import (
    ALICE,
    BOB,
    REPORT_FILES,
    lock_released,
    observe,
    outcome_replies,
    report_files,
)
from tests.integration.faults.harness import SECRET
from tests.integration.workloads import Workloads

LONG = os.environ.get("ROLLBOT_FAULTS_LONG") == "1"
ROLLBACKS, NAMESPACES = (100, 50) if LONG else (20, 10)
WORKERS = 3
PER_NAMESPACE = ROLLBACKS // NAMESPACES


@pytest.fixture
def load_namespaces(kube: Kube, namespace: str) -> Iterator[list[str]]:
    names = [f"{namespace}-{i}" for i in range(NAMESPACES)]
    for name in names:
        kube.core.create_namespace({"metadata": {"name": name}})
    yield names
    for name in names:
        kube.core.delete_namespace(name)


def channel_of(index: int) -> str:
    """A channel per rollback, as on-call teams have: Slack's per-channel posting
    limit then measures rollbot, not one crowded channel."""
    return f"C0LOAD{index:03d}"


def approve_all(
    slack: FakeSlackApi, url: str, records: list[RollbackRecord], timeout: float
) -> set[str]:
    """Bob approves each confirmation as it arrives; the ids approved (all, unless
    some confirmation never came within `timeout`)."""
    bob = {r.channel: SlackUser(url, BOB, r.channel, SECRET) for r in records}
    approved: set[str] = set()
    deadline = time.monotonic() + timeout
    while len(approved) < len(records) and time.monotonic() < deadline:
        for message in slack.messages():
            for block in message.blocks:
                for element in block.get("elements", []):
                    record_id = element.get("value")
                    if element.get("action_id") == ActionId.APPROVE and record_id not in approved:
                        click = bob[message.channel].click(ActionId.APPROVE, record_id, message.ts)
                        assert click.status_code == 200
                        approved.add(record_id)
        time.sleep(0.2)
    return approved


def when_finished(store: RollbackStore, ids: list[str], timeout: float) -> list[RollbackRecord]:
    """The records once all have ended, or as they are after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        records = [store.get(i) for i in ids]
        if all(r.state.terminal for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.5)


def first_at(record: RollbackRecord, state: RollbackState) -> float:
    return next(e.at for e in record.timeline if e.state is state).timestamp()


@pytest.mark.timeout(3600 if LONG else 600)
def test_many_rollbacks_across_namespaces_with_three_workers_each_succeed_once(
    rollbot, kube: Kube, load_namespaces: list[str], slack: FakeSlackApi, store: RollbackStore
) -> None:
    targets = {
        (ns, f"app{j}"): Workloads(kube.api_client, ns)
        for ns in load_namespaces
        for j in range(PER_NAMESPACE)
    }
    generations = {}
    for (ns, name), workloads in targets.items():
        workloads.create(name, [f"{name}:v1", f"{name}:v2"], replicas=1)
        generations[ns, name] = workloads.get(name)["metadata"]["generation"]
    bot = rollbot()
    for _ in range(WORKERS):
        bot.start_worker()

    for index, (ns, name) in enumerate(targets):
        alice = SlackUser(bot.events_url, ALICE, channel_of(index), SECRET)
        assert alice.command(f"{name} -n {ns}").status_code == 200
    requested = store.recent(2 * ROLLBACKS)  # written before the ack
    assert len(requested) == ROLLBACKS
    approved = approve_all(slack, bot.events_url, requested, timeout=60 + 3 * ROLLBACKS)
    records = when_finished(store, [r.id for r in requested], timeout=120 + 6 * ROLLBACKS)

    changed = {}
    for (ns, name), workloads in targets.items():
        changed[ns, name] = workloads.get(name)["metadata"]["generation"] - generations[ns, name]
    for record in records:
        observe(
            f"load: one of {ROLLBACKS} rollbacks in {NAMESPACES} namespaces, {WORKERS} workers",
            store, slack, record.id, record.channel,
            applied=changed[record.namespace, record.workload],
        )  # fmt: skip
    unfinished = [
        (r.id, r.state.value, r.error, [e.message for e in r.timeline])
        for r in records
        if r.state is not RollbackState.SUCCEEDED
    ]
    assert not unfinished, (
        f"{len(approved)}/{ROLLBACKS} approved",
        unfinished,
        bot.log_lines("Traceback", "Error", *(r[0] for r in unfinished)),
    )
    asked = min(r.timeline[0].at.timestamp() for r in records)
    started = min(first_at(r, RollbackState.APPROVED) for r in records)
    ended = max(r.timeline[-1].at.timestamp() for r in records)
    print(
        f"\nload: {ROLLBACKS} rollbacks, {NAMESPACES} namespaces, {WORKERS} workers: "
        f"{ended - started:.1f} s from the first approval to the last outcome, "
        f"{ROLLBACKS / ((ended - started) / 60):.1f} rollbacks per minute; "
        f"{ended - asked:.1f} s from the first request ({ROLLBACKS / ((ended - asked) / 60):.1f}"
        " per minute with the assessments)"
    )
    assert set(changed.values()) == {1}, "each Deployment patched exactly once"
    for (ns, name), workloads in targets.items():
        # Undone once, v1's ReplicaSet becomes revision 3; twice, v2 would be revision 4.
        assert max(workloads.revisions(name)) == 3, (ns, name)
        assert workloads.images_of(name) == [f"{name}:v1"], (ns, name)
    for record in records:
        assert len(outcome_replies(slack, record, record.channel)) == 1
        assert len(report_files(slack, record)) == REPORT_FILES
        assert lock_released(store.redis, f"{record.namespace}/{record.workload}")
