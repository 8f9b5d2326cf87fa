"""The job runner: take a job, hand it to its stage, retry what failed for a
while, and end the record of what cannot go on. A scheduler beside the loop
promotes delayed jobs (expiries, follow-ups), puts a dead worker's jobs back,
and watches opted-in services for automatic rollbacks."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from apscheduler.schedulers.background import BackgroundScheduler

from bot.autorollback import AutoRollbackWatcher
from bot.config import RollbotConfig
from bot.errors import RollbotError, TemporaryError
from bot.pipeline import aftercare, answers, assess, autotrigger, execute
from bot.pipeline.wiring import Pipeline, WorkerKube
from bot.progress import ProgressSink
from bot.store import Job, JobQueue, RollbackStore
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
    ) -> None:
        self.pipeline = Pipeline(store, queue, kube, config, sink, helm or HelmSettings())
        self.store, self.queue = store, queue
        #: Remembers for how long each opted-in service's checks have been failing.
        self.watcher = AutoRollbackWatcher(kube, config)
        self._last_recovery = 0.0

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
        scheduler.start()
        try:
            while not stop.is_set():
                try:
                    self.run_once(poll)
                except TemporaryError as err:
                    log.warning("worker: %s", err)
                    stop.wait(1.0)
        finally:
            scheduler.shutdown(wait=False)

    def _housekeeping(self) -> None:
        try:
            self.queue.promote_due()
            if time.monotonic() - self._last_recovery > self.queue.heartbeat_ttl:
                self.queue.recover_orphans()
                self._last_recovery = time.monotonic()
        except RollbotError as err:
            log.warning("housekeeping: %s", err)

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
        try:
            self.handle(job)
        except TemporaryError as err:
            self._retry_or_give_up(job, err)
        except RollbotError as err:
            if job.record_id:
                execute.fail_record(self.pipeline, job.record_id, str(err))
        except Exception as err:
            # A bug must not kill the worker nor leave the record hanging: fail it, loudly.
            log.exception("job %s failed", job.kind)
            if job.record_id:
                execute.fail_record(
                    self.pipeline, job.record_id, f"internal error: {type(err).__name__}: {err}"
                )
        finally:
            self.queue.ack(raw)
        return True

    def handle(self, job: Job) -> None:
        stage = STAGES.get(job.kind)
        if stage is None:
            log.error("no stage runs jobs of kind %r: dropped", job.kind)
            return
        stage(self.pipeline, job)

    def _retry_or_give_up(self, job: Job, err: TemporaryError) -> None:
        problem = str(err)
        if job.attempt + 1 < MAX_ATTEMPTS:
            delay = retry_delay(job.attempt)
            if job.record_id:
                self.store.update(
                    job.record_id, lambda r: r.note(f"{problem}; retrying in {delay:g}s")
                )
            self.queue.enqueue(
                job.model_copy(
                    update={"attempt": job.attempt + 1, "not_before": time.time() + delay}
                )
            )
        elif job.record_id:
            execute.fail_record(
                self.pipeline, job.record_id, f"gave up after {MAX_ATTEMPTS} attempts: {err}"
            )
