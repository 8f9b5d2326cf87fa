"""A failing Argo Rollout, as the confirmation's assessment and the automatic
trigger see it: aborted, Degraded, a failed AnalysisRun."""

from __future__ import annotations

from bot.argo_assessment import assess_rollout, failure_signals
from bot.argo_rollouts import history, latest_analysis, read_status
from bot.autorollback import AutoRollbackWatcher, Trigger
from bot.bodies import Body
from bot.config import RollbotConfig, ServiceEntry
from bot.errors import PermanentError
from tests.unit.argo_bodies import FAILED_MESSAGE, HISTORY, analysis_run, rollout

FAILED_RUN = analysis_run("eli-maor-backend-4-2", "Failed", "2026-12-01T13:05:00Z", value="0.42")


def aborted_by_analysis() -> Body:
    return rollout(
        "ghcr.io/eli/backend:1.3",
        stable="h3",
        current="h4",
        phase="Degraded",
        message=f"RolloutAborted: Rollout aborted update to revision 4: {FAILED_MESSAGE}",
        step=0,
        abort=True,
    )


def healthy() -> Body:
    return rollout("ghcr.io/eli/backend:1.2", stable="h3", current="h3", step=6)


def status_of(body: Body):  # type: ignore[no-untyped-def]
    return read_status(body, history(body, HISTORY))


def test_an_update_aborted_by_its_failed_analysis_is_high_and_says_how_to_finish():
    body = aborted_by_analysis()
    analysis = latest_analysis(body, [FAILED_RUN])
    signals = failure_signals(status_of(body), analysis)
    assert signals == ["the update was aborted", "its analysis Failed (success-rate measured 0.42)"]
    summary = assess_rollout(status_of(body), analysis)
    assert summary.severity == "high"
    assert summary.recommendation.endswith("undo the spec to make it permanent")
    assert summary.facts[0].startswith("Rollout: Degraded (RolloutAborted:")


def test_a_degraded_update_is_high_roll_back_now():
    body = aborted_by_analysis()
    del body["status"]["abort"]
    summary = assess_rollout(status_of(body), None)
    assert summary.severity == "high"
    assert summary.recommendation == "the Rollout is Degraded (RolloutAborted): roll back now"


def test_a_healthy_rollout_has_no_failure_whatever_its_old_analysis_said():
    body = healthy()
    assert failure_signals(status_of(body), latest_analysis(body, [FAILED_RUN])) == []
    assert assess_rollout(status_of(body), None).severity == "low"


def test_no_ready_pod_is_critical():
    body = aborted_by_analysis()
    body["status"]["readyReplicas"] = 0
    assert assess_rollout(read_status(body), None).severity == "critical"


class Source:
    def __init__(self, body: Body | None) -> None:
        self.body = body

    def list_deployments(self, namespace: str, label_selector: str = "") -> list[Body]:
        return []

    def list_replica_sets(self, namespace: str, label_selector: str) -> list[Body]:
        return HISTORY

    def list_pods(self, namespace: str, label_selector: str) -> list[Body]:
        return []

    def get_rollout(self, namespace: str, name: str) -> Body:
        if self.body is None:
            raise PermanentError("not found")
        return self.body

    def list_analysis_runs(self, namespace: str, label_selector: str = "") -> list[Body]:
        return [FAILED_RUN]


def config(auto: bool = True) -> RollbotConfig:
    entry = ServiceEntry(
        namespace="production",
        strategy="argo-rollouts",
        rollout="eli-maor-backend",
        auto_rollback=auto,
        channel="C-ALERTS",
    )
    return RollbotConfig(services={"eli-maor": entry})


def test_the_trigger_opens_an_argo_rollback_of_the_service_keyed_by_the_bad_replica_set():
    (failed,) = AutoRollbackWatcher(Source(aborted_by_analysis()), config()).find_failed_releases()
    assert (failed.namespace, failed.deployment, failed.strategy) == (
        "production",
        "eli-maor",
        "argo-rollouts",
    )
    assert (failed.replica_set, failed.revision) == ("eli-maor-backend-h4", 4)
    assert failed.triggers == (Trigger.ROLLOUT_FAILED,) and failed.channel == "C-ALERTS"
    assert failed.evidence == (
        "rollout eli-maor-backend revision 4 (backend=ghcr.io/eli/backend:1.3): "
        "the update was aborted; its analysis Failed (success-rate measured 0.42)"
    )


def test_the_trigger_leaves_healthy_missing_and_not_opted_in_rollouts_alone():
    assert AutoRollbackWatcher(Source(healthy()), config()).find_failed_releases() == []
    assert AutoRollbackWatcher(Source(None), config()).find_failed_releases() == []
    watcher = AutoRollbackWatcher(Source(aborted_by_analysis()), config(auto=False))
    assert watcher.find_failed_releases() == []
