"""kube-apiserver killed and restarted while a worker watches the rollout: the
watch resumes and the outcome is right. On a control plane of its own, so the
restart disturbs no other test."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from bot.kube import Kube
from bot.records import RollbackState
from bot.store import RollbackStore
from testbed.controlplane import ControlPlane
from testbed.slack_api import FakeSlackApi
from tests.integration.conftest import running_control_plane
from tests.integration.faults.conftest import (
    finished,
    lock_released,
    observe,
    outcome_replies,
    rollback_under_way,
)
from tests.integration.faults.harness import wait_until
from tests.integration.workloads import Workloads


@pytest.fixture(scope="module")
def control_plane() -> Iterator[ControlPlane]:
    yield from running_control_plane()


@pytest.fixture(scope="module")
def kube(control_plane: ControlPlane) -> Kube:
    return Kube.from_kubeconfig(str(control_plane.kubeconfig))


def test_the_apiserver_restarted_mid_watch_the_rollback_still_ends_right(
    rollbot,
    control_plane: ControlPlane,
    workloads: Workloads,
    slack: FakeSlackApi,
    store: RollbackStore,
) -> None:
    bot = rollbot()
    bot.start_worker()
    record_id, generation = rollback_under_way(bot, workloads, slack, store)
    time.sleep(1)  # the worker is watching the rollout now
    control_plane.restart_apiserver(down_seconds=5)

    record = finished(store, record_id)
    changed = workloads.get("web")["metadata"]["generation"] - generation
    observe("kube-apiserver killed 5s mid-watch", store, slack, record_id, applied=changed)
    assert record.state is RollbackState.SUCCEEDED, (record.error, bot.logs())
    assert changed == 1
    assert workloads.images_of("web") == ["app:v1"]
    wait_until("the outcome in the thread", lambda: outcome_replies(slack, record))
    assert len(outcome_replies(slack, record)) == 1
    assert lock_released(store.redis, f"{workloads.namespace}/web")
