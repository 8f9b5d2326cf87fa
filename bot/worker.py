"""The worker: runs assess and execute jobs from the queue.

Each job is idempotent on the record's state: a job delivered twice, or
re-delivered after its worker died, finds the record where the first left it
and carries on from there. The per-workload lock keeps two rollbacks of one
workload from ever running at once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import timedelta
from typing import Protocol

from apscheduler.schedulers.background import BackgroundScheduler

from bot.assessment import AssessmentSource, assess_workload
from bot.autorollback import WatchSource, find_failed_releases
from bot.backup import BackupSource, take_backup
from bot.checks import run_checks, run_until_passing
from bot.config import RollbotConfig
from bot.deployments import Revision
from bot.engine import (
    AppliedRollback,
    KubeApi,
    apply_rollback,
    change_cause_for,
    follow_rollout,
    plan_rollback,
    read_history,
)
from bot.errors import AlreadyAtTarget, PermanentError, RollbotError, TemporaryError
from bot.incident import report_context
from bot.policy import NotAllowed, check_emergency_allowed
from bot.progress import ProgressSink
from bot.records import RollbackRecord, RollbackState, requested
from bot.reports import TemplateRenderer
from bot.rollout import rollout_state
from bot.store import Job, JobQueue, RollbackStore

log = logging.getLogger("rollbot.worker")
S = RollbackState
MAX_ATTEMPTS = 5


def _images(revision: Revision | None) -> tuple[str, ...]:
    return revision.images if revision else ()


class WorkerKube(KubeApi, AssessmentSource, BackupSource, WatchSource, Protocol):
    """Everything the worker reads and writes in the cluster."""


class Worker:
    def __init__(
        self,
        store: RollbackStore,
        queue: JobQueue,
        kube: WorkerKube,
        config: RollbotConfig,
        sink: ProgressSink,
    ) -> None:
        self.store, self.queue, self.kube = store, queue, kube
        self.config, self.sink = config, sink
        self._last_recovery = 0.0
        self._last_watch = 0.0

    # -- the loop ------------------------------------------------------------------

    def run(self, stop: threading.Event, poll: int = 1) -> None:
        """Take jobs until `stop` is set. A scheduler beside the loop promotes
        delayed jobs (expiries, follow-ups) and puts a dead worker's jobs back."""
        scheduler = BackgroundScheduler(daemon=True)
        scheduler.add_job(
            self._housekeeping, "interval", seconds=0.5, max_instances=1, coalesce=True
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
            if time.monotonic() - self._last_watch > self.config.auto_rollback_interval_seconds:
                self._last_watch = time.monotonic()
                self.open_automatic_rollbacks()
            if time.monotonic() - self._last_recovery > self.queue.heartbeat_ttl:
                self.queue.recover_orphans()
                self._last_recovery = time.monotonic()
        except RollbotError as err:
            log.warning("housekeeping: %s", err)

    def run_once(self, timeout: int = 1) -> bool:
        taken = self.queue.take(timeout)
        if taken is None:
            return False
        job, raw = taken
        try:
            self.handle(job)
        except TemporaryError as err:
            problem = str(err)
            if job.attempt + 1 < MAX_ATTEMPTS:
                delay = min(30.0, 2.0**job.attempt)
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
                self._fail(job.record_id, f"gave up after {MAX_ATTEMPTS} attempts: {err}")
        except RollbotError as err:
            if job.record_id:
                self._fail(job.record_id, str(err))
        except Exception as err:
            # A bug must not kill the worker nor leave the record hanging: fail it, loudly.
            log.exception("job %s failed", job.kind)
            if job.record_id:
                self._fail(job.record_id, f"internal error: {type(err).__name__}: {err}")
        finally:
            self.queue.ack(raw)
        return True

    def handle(self, job: Job) -> None:
        if job.kind == "history":
            self.history(job.args)
            return
        record = self.store.get(job.record_id)
        if job.kind == "assess" and record.state is S.REQUESTED:
            self.assess(record)
        elif job.kind == "assess" and record.state is S.ASSESSED:
            self._ask(record)  # its worker died between the assessment and the question
        elif job.kind == "assess" and record.state is S.AWAITING_APPROVAL and not record.thread_ts:
            self._post_confirmation(record)  # ...or just before posting the question
        elif job.kind == "execute" and record.state.executing:
            self.execute(record)
        elif job.kind == "follow_up" and record.state is S.SUCCEEDED:
            self.follow_up(record, int(job.args["index"]))
        elif job.kind == "expire" and record.state is S.AWAITING_APPROVAL and record.expired():
            record = self.store.update(
                record.id,
                lambda r: r.transition(S.EXPIRED, "confirmation expired: nobody approved in time"),
            )
            self.sink.finished(record)
        # Any other combination is a duplicate delivery: the record has moved on.

    def _fail(self, record_id: str, message: str) -> RollbackRecord:
        if (current := self.store.get(record_id)).state.terminal:
            return current  # already ended (a late or repeated failure): say nothing twice
        record = self.store.update(
            record_id,
            lambda r: r if r.state.terminal else r.transition(S.FAILED, message, error=message),
        )
        self.store.unlock_workload(record.workload_key, record.id)
        self.sink.finished(record)
        if record.approved_by:
            self._report(record)
        return record

    def history(self, args: dict[str, str]) -> None:
        namespace, name = args["namespace"], args["workload"]
        try:
            self.config.check_namespace_allowed(namespace)
            _, revisions = read_history(self.kube, namespace, name)
        except PermanentError as err:
            self.sink.tell(args["channel"], args["user"], f":warning: {err}")
            return
        lines = [f"*Rollout history of {namespace}/{name}*"]
        for rev in revisions:
            images = ", ".join(i.split("=", 1)[-1] for i in rev.images)
            mark = " (current)" if rev.current else ""
            lines.append(f"• {rev.number}{mark} `{images}` — {rev.change_cause or 'no cause'}")
        self.sink.tell(args["channel"], args["user"], "\n".join(lines))

    # -- assess --------------------------------------------------------------------

    def assess(self, record: RollbackRecord) -> None:
        try:
            plan = plan_rollback(
                self.kube,
                self.config,
                record.namespace,
                record.workload,
                record.requested_revision,
                to_tag=record.to_tag,
            )
            if plan.already_at_target:
                raise AlreadyAtTarget(plan.name, plan.target.number)
        except PermanentError as err:
            problem = str(err)
            failed = self.store.update(
                record.id, lambda r: r.transition(S.FAILED, problem, error=problem)
            )
            self.sink.refused(failed, problem)
            return
        entry = self.config.service_for(record.namespace, record.workload)
        facts = assess_workload(
            self.kube,
            record.namespace,
            record.workload,
            health_checks=entry.health_checks if entry else (),
        )
        current = plan.current
        assessed = self.store.update(
            record.id,
            lambda r: r.transition(
                S.ASSESSED,
                f"revision {current.number if current else '?'} → {plan.target.number}",
                from_revision=current.number if current else None,
                target_revision=plan.target.number,
                target_replica_set=plan.target.replica_set,
                from_images=_images(current),
                to_images=_images(plan.target),
                changes=tuple(c.describe() for c in plan.changes),
                assessment=tuple(facts.summary_lines()),
                severity=facts.severity,
            ),
        )
        self._ask(assessed)

    def _ask(self, assessed: RollbackRecord) -> None:
        """Post the assessed rollback: a dry run's answer, an emergency's start, or
        the confirmation with its buttons (and its expiry)."""
        record = assessed
        if assessed.dry_run:
            thread = self.sink.confirmation(assessed)
            done = self.store.update(
                record.id,
                lambda r: r.transition(
                    S.CANCELLED, "dry run: nothing was changed", thread_ts=thread or r.thread_ts
                ),
            )
            self.sink.finished(done)
            return
        if assessed.emergency:
            self._emergency(assessed)
            return
        waiting = self.store.update(
            record.id, lambda r: r.transition(S.AWAITING_APPROVAL, "confirmation posted")
        )
        self._post_confirmation(waiting)

    def _post_confirmation(self, waiting: RollbackRecord) -> None:
        record = waiting
        thread = self.sink.confirmation(waiting)
        if thread:
            self.store.update(record.id, lambda r: r.model_copy(update={"thread_ts": thread}))
        if waiting.expires_at is not None:
            self.queue.enqueue(
                Job(kind="expire", record_id=record.id, not_before=waiting.expires_at.timestamp())
            )

    def _emergency(self, record: RollbackRecord) -> None:
        """--emergency where policy lets it skip approval: announce, then run."""
        if record.trigger == "automatic":
            if not self.config.policy_for(record.namespace).auto_execute:
                raise NotAllowed("automatic rollbacks wait for approval here")
        else:
            check_emergency_allowed(self.config, record.namespace)
        thread = self.sink.confirmation(record)
        approved = self.store.update(
            record.id,
            lambda r: r.transition(
                S.AWAITING_APPROVAL,
                "automatic: run at once by policy"
                if r.trigger == "automatic"
                else "emergency: approval skipped by policy",
                thread_ts=thread or r.thread_ts,
            ).transition(
                S.APPROVED,
                f"{r.trigger} rollback, no approval needed",
                actor=r.requested_by,
                approved_by=r.requested_by,
            ),
        )
        self.execute(approved)

    # -- execute -------------------------------------------------------------------

    def execute(self, record: RollbackRecord) -> None:
        holder = self.store.lock_workload(record.workload_key, record.id)
        if holder is not None:
            message = f"rollback {holder} of {record.workload_key} is in progress"
            refused = self.store.update(
                record.id, lambda r: r.transition(S.FAILED, message, error=message)
            )
            self.sink.refused(refused, message)
            return
        try:
            if record.state in (S.APPROVED, S.BACKING_UP):
                record = self._backup(record)
            if record.state is S.ROLLING_BACK:
                record = self._roll_back(record)
            if record.state is S.VERIFYING:
                record = self._verify(record)
        except TemporaryError:
            raise  # retried by run_once; the record says where to resume
        except RollbotError as err:
            self._fail(record.id, str(err))
            return
        self.store.unlock_workload(record.workload_key, record.id)
        self.sink.finished(record)
        self._report(record)
        if record.state is S.SUCCEEDED:
            self._schedule_follow_ups(record)

    def _schedule_follow_ups(self, record: RollbackRecord) -> None:
        finished = record.timeline[-1].at.timestamp()
        for index, minutes in enumerate(self.config.follow_up_minutes):
            self.queue.enqueue(
                Job(
                    kind="follow_up",
                    record_id=record.id,
                    args={"index": str(index)},
                    not_before=finished + minutes * 60,
                )
            )

    def follow_up(self, record: RollbackRecord, index: int) -> None:
        """Is it staying healthy? The runbooks' +5/+15/+30 minute checks."""
        minutes = self.config.follow_up_minutes
        last = index == len(minutes) - 1
        state = rollout_state(self.kube.get_deployment(record.namespace, record.workload))
        entry = self.config.service_for(record.namespace, record.workload)
        results = run_checks(entry.health_checks) if entry else []
        problems = [r.line() for r in results if not r.ok]
        if state.available < state.desired:
            problems.insert(0, f"only {state.available}/{state.desired} replicas available")
        label = f"Follow-up +{minutes[index]:g} min"
        if problems:
            text = f":warning: {label}: unhealthy again <@{record.requested_by}>:\n" + "\n".join(
                problems
            )
        elif last:
            text = f":white_check_mark: {label}: stable; the incident can be closed"
        else:
            text = f"{label}: healthy ({state.available}/{state.desired} available" + (
                f", {len(results)} checks passing)" if results else ")"
            )
        self.store.update(record.id, lambda r: r.note(text.split("\n", 1)[0]))
        self.sink.milestone(record, text)

    def open_automatic_rollbacks(self) -> list[str]:
        """A rollback for each opted-in Deployment whose fresh revision failed; the ids."""
        opened = []
        for failure in find_failed_releases(self.kube, self.config):
            key = f"{failure.namespace}/{failure.deployment}"
            if not failure.channel:
                log.warning("%s failed but has no channel for automatic rollbacks", key)
                continue
            if self.store.lock_holder(key) is not None:
                continue  # a rollback of it is under way already
            if not self.store.claim_once(f"auto:{key}:{failure.replica_set}", ttl=30 * 86400):
                continue  # this bad revision had its automatic rollback
            policy = self.config.policy_for(failure.namespace)
            record = self.store.create(
                requested(
                    failure.namespace,
                    failure.deployment,
                    "rollbot",
                    reason=f"automatic: {failure.evidence}",
                    channel=failure.channel,
                    trigger="automatic",
                    emergency=policy.auto_execute,
                    ttl=timedelta(seconds=self.config.confirmation_ttl_seconds),
                )
            )
            self.queue.enqueue(Job(kind="assess", record_id=record.id))
            opened.append(record.id)
        return opened

    def _report(self, record: RollbackRecord) -> None:
        """The runbooks' report and messages, filled in from the record and posted."""
        renderer = TemplateRenderer(self.config.templates_dir)
        context = report_context(record)
        files = {
            f"{record.id}-incident-report.md": renderer.render("incident_report.md.j2", context),
            f"{record.id}-rollback-report.md": renderer.render("rollback_report.md.j2", context),
        }
        backup = self.store.get_backup(record.id)
        if backup is not None:
            files[f"{record.id}-backup.json"] = json.dumps(backup, indent=2)
        messages = [
            ("Slack alert", "slack_alert.txt.j2"),
            ("Email", "email.txt.j2"),
            ("Incident notification", "incident_notification.txt.j2"),
        ]
        files[f"{record.id}-communications.txt"] = "\n\n".join(
            f"===== {title} =====\n{renderer.render(name, context)}" for title, name in messages
        )
        summary = renderer.render("rollback_complete.txt.j2", context)
        self.sink.report(record, summary, files, self.config.incidents_channel)

    def _backup(self, record: RollbackRecord) -> RollbackRecord:
        if record.state is S.APPROVED:
            record = self.store.update(
                record.id,
                lambda r: r.transition(S.BACKING_UP, "backing up the workload before changing it"),
            )
        bundle = take_backup(self.kube, record.namespace, record.workload)
        self.store.save_backup(record.id, bundle)
        saved = [f"deployment/{record.workload}"]
        saved += [f"service/{s['metadata']['name']}" for s in bundle["services"]]
        saved += [f"configmap/{c['metadata']['name']}" for c in bundle["config_maps"]]
        saved += [f"hpa/{h['metadata']['name']}" for h in bundle["autoscalers"]]
        self.sink.milestone(record, "Backup saved: " + ", ".join(saved))
        return self.store.update(record.id, lambda r: r.transition(S.ROLLING_BACK, "backup saved"))

    def _roll_back(self, record: RollbackRecord) -> RollbackRecord:
        if record.to_tag is not None:  # approved already: no second "never deployed" check
            plan = plan_rollback(
                self.kube,
                self.config,
                record.namespace,
                record.workload,
                to_tag=record.to_tag,
                allow_unknown_tag=True,
            )
        else:
            plan = plan_rollback(
                self.kube,
                self.config,
                record.namespace,
                record.workload,
                record.target_revision or 0,
                replica_set=record.target_replica_set,
            )
        if plan.already_at_target:
            # A worker died after the patch: the rollout only needs following.
            applied_deployment = plan.deployment
            stale = None
            self.sink.milestone(record, "Rollback was already applied; following the rollout")
        else:
            cause = change_cause_for(plan, record.approved_by or record.requested_by, record.reason)
            applied = apply_rollback(self.kube, self.config, plan, change_cause=cause)
            applied_deployment, stale = applied.deployment, applied.stale_deadline
            record = self.store.update(
                record.id,
                lambda r: r.note(
                    f"rollback applied: revision {r.from_revision} → {r.target_revision}"
                ),
            )
            self.sink.milestone(
                record,
                f"Rollback applied: revision {record.from_revision} → {record.target_revision}",
            )
        for state in follow_rollout(
            self.kube,
            AppliedRollback(plan, applied_deployment, None, 1, stale),
            self.config.rollout_timeout_seconds,
        ):
            self.sink.rollout(record, state)
        return self.store.update(
            record.id, lambda r: r.transition(S.VERIFYING, "rolled out; verifying")
        )

    def _verify(self, record: RollbackRecord) -> RollbackRecord:
        """All replicas available, then the catalog's health checks and smoke tests
        (retried, as the runbooks do: the new pods may need a moment)."""
        deployment = self.kube.get_deployment(record.namespace, record.workload)
        state = rollout_state(deployment)
        if state.available < state.desired:
            raise PermanentError(
                f"rolled back but unhealthy: only {state.available} of {state.desired} "
                "replicas are available"
            )
        summary = f"{state.available}/{state.desired} replicas available"
        entry = self.config.service_for(record.namespace, record.workload)
        checks = [*entry.health_checks, *entry.smoke_tests] if entry else []
        if checks and entry is not None:
            results, attempts = run_until_passing(
                checks, entry.verify_attempts, entry.verify_interval_seconds
            )
            lines = "\n".join(r.line() for r in results)
            if not all(r.ok for r in results):
                raise PermanentError(
                    f"rolled back but unhealthy after {attempts} attempts:\n{lines}"
                )
            self.sink.milestone(record, f"Verified (attempt {attempts}):\n{lines}")
            summary += f", {len(results)} checks passing"
        return self.store.update(
            record.id, lambda r: r.transition(S.SUCCEEDED, f"healthy: {summary}")
        )
