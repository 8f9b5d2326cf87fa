"""The job runner: take a job, hand it to its stage, retry what failed for a
while, and end the record of what cannot go on. A scheduler beside the loop
promotes delayed jobs (expiries, follow-ups), puts a dead worker's jobs back,
and watches opted-in services for automatic rollbacks."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.autorollback import AutoRollbackWatcher
from bot.config import RollbotConfig
from bot.errors import RollbotError, TemporaryError
from bot.leases import LeaseLost, RecordLeases
from bot.pipeline import aftercare, answers, assess, autotrigger, drilling, execute, holding
from bot.pipeline.liveness import Liveness
from bot.pipeline.wiring import Pipeline, WorkerKube
from bot.progress import ProgressSink
from bot.retention import backfill_outcomes, prune
from bot.store import LOCK_TTL, PREFIX, Job, JobQueue, RollbackStore, StoreUnavailable
from bot.strategies import HelmSettings

log = logging.getLogger("rollbot.worker")
MAX_ATTEMPTS = 5

Stage = Callable[[Pipeline, Job], None]

#: Which stage runs each kind of job.
STAGES: dict[str, Stage] = {
    "assess": assess.on_assess,
    "execute": execute.on_execute,
    "follow_up": aftercare.on_follow_up,
    "reassess": aftercare.on_reassess,
    "expire": aftercare.on_expire,
    "history": answers.on_history,
    "drill_forward": drilling.on_drill_forward,
    "resume_check": holding.on_resume_check,
    "resume": holding.on_resume,
    "hold_reminder": holding.on_hold_reminder,
    "git_match": holding.on_git_match,
}


def retry_delay(attempt: int) -> float:
    """Seconds before the next try of a job that failed `attempt + 1` times."""
    return min(30.0, 2.0**attempt)


class Worker:
    def __init__(
        self,
        store: RollbackStore,
        queue: JobQueue,
        kube: WorkerKube,
        config: RollbotConfig,
        sink: ProgressSink,
        helm: HelmSettings | None = None,
        names_of: Callable[[set[str]], Mapping[str, str]] | None = None,
        liveness: tuple[Liveness, int] | None = None,
    ) -> None:
        self.pipeline = Pipeline(store, queue, kube, config, sink, helm or HelmSettings())
        if names_of is not None:
            self.pipeline.names_of = names_of
        self.store, self.queue = store, queue
        #: Remembers for how long each opted-in service's checks have been failing.
        self.watcher = AutoRollbackWatcher(kube, config)
        self.leases = RecordLeases(store.redis, ttl=queue.heartbeat_ttl)
        self._last_recovery = 0.0
        #: The raw jobs a thread of this worker runs now, and the ones of its own list
        #: that no thread ran at the last sweep (put back at the next if still idle).
        self._running: set[str] = set()
        self._idle_own: set[str] = set()
        #: When the loop last came round, and when the job in hand started (in memory
        #: the HTTP processes see): a stuck or dead loop makes readiness fail.
        self.liveness, self.slot = liveness or (Liveness(1), 0)

    def run(self, stop: threading.Event, poll: int = 1) -> None:
        """Take jobs until `stop` is set."""
        scheduler = BackgroundScheduler(daemon=True)
        scheduler.add_job(
            self._housekeeping, "interval", seconds=0.5, max_instances=1, coalesce=True
        )
        # Its own job: health checks of watched services must not hold up the queue's upkeep.
        scheduler.add_job(
            self._watch,
            "interval",
            seconds=self.pipeline.config.auto_rollback_interval_seconds,
            max_instances=1,
            coalesce=True,
        )
        # Each scheduled drill: every worker schedules it, one opens it (a claim).
        for service, entry in self.pipeline.config.services.items():
            if entry.drill is not None and entry.drill.schedule:
                scheduler.add_job(
                    self.scheduled_drill,
                    CronTrigger.from_crontab(entry.drill.schedule, timezone=UTC),
                    args=[service],
                    coalesce=True,
                    misfire_grace_time=300,
                )
        # Its own too, hourly from the start: the records past the retention.
        scheduler.add_job(
            self.prune, "interval", hours=1, next_run_time=datetime.now(UTC), coalesce=True
        )
        scheduler.start()
        try:
            while not stop.is_set():
                self.liveness.beat(self.slot)
                try:
                    self.run_once(poll)
                except TemporaryError as err:
                    log.warning("worker: %s", err)
                    stop.wait(1.0)
                except Exception:
                    # Nothing a job or a client raises may end this loop for good.
                    log.exception("worker loop")
                    stop.wait(1.0)
        finally:
            scheduler.shutdown(wait=False)

    def _housekeeping(self) -> None:
        try:
            self.queue.heartbeat()
            self.queue.promote_due()
            if time.monotonic() - self._last_recovery > self.queue.heartbeat_ttl:
                self.queue.recover_orphans()
                self._requeue_stranded()
                self._last_recovery = time.monotonic()
        except RollbotError as err:
            log.warning("housekeeping: %s", err)

    def scheduled_drill(self, service: str) -> str | None:
        fired = datetime.now(UTC).replace(second=0, microsecond=0)
        try:
            return drilling.run_scheduled_drill(self.pipeline, service, fired)
        except RollbotError as err:
            log.warning("scheduled drill of %s: %s", service, err)
            return None

    def prune(self) -> int:
        """Delete the finished records past the retention (and their backups)."""
        keep = timedelta(days=self.pipeline.config.record_retention_days)
        try:
            if added := backfill_outcomes(self.store):
                log.info("kept the outcomes of %d earlier rollback(s) for the stats", added)
            pruned = prune(self.store, keep)
        except RollbotError as err:
            log.warning("retention: %s", err)
            return 0
        if pruned:
            log.info("deleted %d finished record(s) past the retention", pruned)
        return pruned

    def _requeue_stranded(self) -> None:
        """Jobs left in this worker's own list by a step Redis was away for: put back
        once two sweeps in a row found them there with no thread running them."""
        own = set(self.queue.own_jobs()) - self._running
        stranded = own & self._idle_own
        if stranded and (moved := self.queue.requeue_own(stranded)):
            log.warning("put back %d job(s) stranded by a Redis outage", moved)
        self._idle_own = own - stranded

    def _watch(self) -> None:
        try:
            self.open_automatic_rollbacks()
        except RollbotError as err:
            log.warning("automatic rollback watch: %s", err)

    def open_automatic_rollbacks(self) -> list[str]:
        return autotrigger.open_automatic_rollbacks(self.pipeline, self.watcher)

    def run_once(self, timeout: int = 1) -> bool:
        """Run one job if one comes within `timeout` seconds; whether one came."""
        taken = self.queue.take(timeout)
        if taken is None:
            return False
        job, raw = taken
        self._running.add(raw)
        self.liveness.job(self.slot, started=True)
        try:
            if self._run_owned(job):
                self.queue.ack(raw)
        except StoreUnavailable as err:
            # Its retry or ack could not be written: the job stays in this worker's
            # list, and the housekeeping puts it back once Redis answers again.
            log.warning("job %s %s kept for later: %s", job.kind, job.record_id, err)
        finally:
            self._running.discard(raw)
            self.liveness.job(self.slot, started=False)
        return True

    def _run_owned(self, job: Job) -> bool:
        """Run `job` holding its record's lease; whether it is done with (to ack)."""
        if not job.record_id:
            self._run(self.pipeline, job)
            return True
        fence = self.leases.acquire(job.record_id)
        if fence is None:
            # Another worker runs this record now (a re-delivered job, or one of its
            # other jobs): try again once that is likely over; the stage then finds
            # the record moved on, or carries on from where it is.
            self.queue.enqueue(
                job.model_copy(update={"not_before": time.time() + self.leases.ttl / 2})
            )
            return True
        pipeline = dataclasses.replace(self.pipeline, store=self.store.fenced(fence))
        try:
            with self.leases.kept(fence, also=self._renewer(job.record_id)):
                self._run(pipeline, job)
        except LeaseLost as err:
            # Stopped, writing nothing more; but the job is not done: if no other worker
            # took the record over (this one was only starved past its lease), nobody
            # else has the job. Queued again, it waits for whoever owns the record now.
            log.warning("job %s: %s; stopped, queued again", job.kind, err)
            self.queue.enqueue(
                job.model_copy(update={"not_before": time.time() + self.leases.ttl / 2})
            )
        finally:
            try:
                self.leases.release(fence)
            except Exception as err:  # it expires by itself
                log.warning("could not release %s: %s", fence.key, err)
        return True

    def _renewer(self, record_id: str) -> Callable[[], None]:
        """What the lease keeper renews besides the lease: this worker's heartbeat and
        the workload locks the record holds."""
        try:
            keys = self.store.get(record_id).lock_keys
        except RollbotError:
            keys = ()  # no such record: the stage will say so

        def renew() -> None:
            self.queue.heartbeat()
            for key in keys:
                self.leases.renew_key(f"{PREFIX}lock:{key}", record_id, LOCK_TTL)

        return renew

    def _run(self, p: Pipeline, job: Job) -> None:
        """The job's stage; a failure retried or ending its record, never raised
        (but LeaseLost: the record is someone else's, and StoreUnavailable from the
        bookkeeping of a retry)."""
        try:
            self.handle(job, p)
        except LeaseLost:
            raise
        except TemporaryError as err:
            self._retry_or_give_up(p, job, err)
        except RollbotError as err:
            if job.record_id:
                execute.fail_record(p, job.record_id, str(err))
        except Exception as err:
            # A bug must not kill the worker nor leave the record hanging: fail it, loudly.
            log.exception("job %s failed", job.kind)
            if job.record_id:
                execute.fail_record(
                    p, job.record_id, f"internal error: {type(err).__name__}: {err}"
                )

    def handle(self, job: Job, p: Pipeline | None = None) -> None:
        stage = STAGES.get(job.kind)
        if stage is None:
            log.error("no stage runs jobs of kind %r: dropped", job.kind)
            return
        stage(p or self.pipeline, job)

    def _retry_or_give_up(self, p: Pipeline, job: Job, err: TemporaryError) -> None:
        problem = str(err)
        if job.attempt + 1 < MAX_ATTEMPTS:
            delay = retry_delay(job.attempt)
            if job.record_id:
                p.store.update(
                    job.record_id, lambda r: r.note(f"{problem}; retrying in {delay:g}s")
                )
            self.queue.enqueue(
                job.model_copy(
                    update={"attempt": job.attempt + 1, "not_before": time.time() + delay}
                )
            )
        elif job.record_id:
            execute.fail_record(p, job.record_id, f"gave up after {MAX_ATTEMPTS} attempts: {err}")
