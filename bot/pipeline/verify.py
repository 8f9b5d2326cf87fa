"""Is the rolled-back service healthy? All replicas available, then the
catalog's health checks, smoke tests and version check — retried, as the
runbooks do, since the new pods may need a moment."""

from __future__ import annotations

from bot.checks import run_until_passing
from bot.errors import PermanentError
from bot.pipeline import schema
from bot.pipeline.wiring import Pipeline
from bot.progress import Tone
from bot.records import RollbackRecord, RollbackState
from bot.rollout import rollout_state
from bot.store import Job
from bot.strategies import OwnWorkload
from bot.strategies import get as get_strategy

S = RollbackState


def target_version(images: tuple[str, ...], container: str | None) -> str | None:
    """The version a rolled-back service should report: its target image's tag."""
    for entry in images:
        name, _, image = entry.partition("=")
        if container is None or name == container:
            last = image.rsplit("/", 1)[-1]
            return last.split("@", 1)[0].partition(":")[2] or None
    return None


def verify(p: Pipeline, record: RollbackRecord) -> RollbackRecord:
    """SUCCEEDED if healthy; a PermanentError saying what is not, otherwise."""
    counts = readiness(p, record)
    short = [f"{name} {have}/{want}" for name, (have, want) in counts.items() if have < want]
    if short:
        raise PermanentError(
            "rolled back but unhealthy: not all replicas are available: " + ", ".join(short)
        )
    available = sum(have for have, _ in counts.values())
    summary = f"{available}/{sum(want for _, want in counts.values())} replicas available"
    if not record.verify_checks:
        return _succeed(p, record, f"done: {summary}")
    if (database := schema.check_database(p, record)) is not None:
        summary += f", {database}"
    entry = p.entry(record)
    checks = [*entry.health_checks, *entry.smoke_tests] if entry else []
    if entry is not None and entry.version_check is not None:
        version = target_version(record.to_images, entry.version_check.container)
        if version is None:
            p.sink.milestone(
                record,
                "Version check skipped: the target image has no tag to compare",
                Tone.WARNING,
            )
        else:
            checks.append(entry.version_check.expecting(version))
    if checks and entry is not None:
        results, attempts = run_until_passing(
            checks, entry.verify_attempts, entry.verify_interval_seconds
        )
        lines = "\n".join(r.line() for r in results)
        if not all(r.ok for r in results):
            raise PermanentError(f"rolled back but unhealthy after {attempts} attempts:\n{lines}")
        p.sink.milestone(record, f"Verified (attempt {attempts}):\n{lines}")
        summary += f", {len(results)} checks passing"
    return _succeed(p, record, f"healthy: {summary}")


def readiness(p: Pipeline, record: RollbackRecord) -> dict[str, tuple[int, int]]:
    """(available, desired) of each workload the rollback touched."""
    strategy = get_strategy(record.strategy)
    if isinstance(strategy, OwnWorkload):  # not a Deployment: it counts its own kind
        ctx = p.strategy_context()
        return {record.workload: strategy.readiness(ctx, record.namespace, record.pins)}
    states = {
        name: rollout_state(p.kube.get_deployment(record.namespace, name))
        for name in record.deployments
    }
    return {name: (st.available, st.desired) for name, st in states.items()}


def _succeed(p: Pipeline, record: RollbackRecord, message: str) -> RollbackRecord:
    """SUCCEEDED, with the follow-ups queued in the same write: a worker that dies
    right after cannot leave a rollback without them."""

    def follow_ups(done: RollbackRecord) -> list[Job]:
        if done.trigger == "drill":  # a drill goes forward again, and is not followed up
            return [Job(kind="drill_forward", record_id=done.id)]
        if done.drill:
            return []
        finished = done.timeline[-1].at.timestamp()
        minutes = p.config.follow_up_minutes
        reminders = []
        if done.holding:  # after the last follow-up, for as long as it is held
            last = max(minutes, default=0.0) + p.config.hold_reminder_minutes
            reminders.append(
                Job(kind="hold_reminder", record_id=done.id, not_before=finished + last * 60)
            )
            reminders.append(Job(kind="git_match", record_id=done.id))  # if the service says how
        return reminders + [
            Job(
                kind="follow_up",
                record_id=done.id,
                args={"index": str(index)},
                not_before=finished + after * 60,
            )
            for index, after in enumerate(minutes)
        ]

    return p.store.update(record.id, lambda r: r.transition(S.SUCCEEDED, message), then=follow_ups)
