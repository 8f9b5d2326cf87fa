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
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, Protocol

from apscheduler.schedulers.background import BackgroundScheduler

from bot.assessment import Assessment, AssessmentSource, assess_workload
from bot.autorollback import AutoRollbackWatcher, WatchSource
from bot.backup import BackupSource, take_backup
from bot.checks import run_checks, run_until_passing
from bot.config import RollbotConfig, ServiceEntry
from bot.deployments import Revision
from bot.engine import (
    AppliedRollback,
    apply_rollback,
    change_cause_for,
    follow_rollout,
    plan_rollback,
    read_history,
)
from bot.errors import AlreadyAtTarget, PermanentError, RollbotError, TemporaryError
from bot.history import history_lines
from bot.incident import report_context
from bot.policy import NotAllowed, check_emergency_allowed
from bot.progress import ProgressSink
from bot.records import RollbackRecord, RollbackState, requested
from bot.reports import TemplateRenderer
from bot.rollout import RolloutState, rollout_state
from bot.signals import Thresholds
from bot.store import Job, JobQueue, RollbackStore
from bot.strategies import Context, HelmSettings, Plan, Request, StrategyKube
from bot.strategies import get as get_strategy

log = logging.getLogger("rollbot.worker")
S = RollbackState
MAX_ATTEMPTS = 5


#: Worst first; a multi-component assessment takes its worst component's severity.
SEVERITY_ORDER = ("critical", "high", "medium", "low")
#: At most this many Deployments are assessed for one confirmation.
MAX_ASSESSED = 6


def worst_of(results: list[Assessment]) -> Assessment:
    return min(results, key=lambda a: SEVERITY_ORDER.index(a.severity))


def _images(revision: Revision | None) -> tuple[str, ...]:
    return revision.images if revision else ()


def target_version(images: tuple[str, ...], container: str | None) -> str | None:
    """The version a rolled-back service should report: its target image's tag."""
    for entry in images:
        name, _, image = entry.partition("=")
        if container is None or name == container:
            last = image.rsplit("/", 1)[-1]
            return last.split("@", 1)[0].partition(":")[2] or None
    return None


class WorkerKube(StrategyKube, AssessmentSource, BackupSource, WatchSource, Protocol):
    """Everything the worker reads and writes in the cluster."""


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
        self.store, self.queue, self.kube = store, queue, kube
        self.config, self.sink = config, sink
        self.helm = helm or HelmSettings()
        #: Remembers for how long each opted-in service's checks have been failing.
        self.watcher = AutoRollbackWatcher(kube, config)
        self._last_recovery = 0.0

    # -- the loop ------------------------------------------------------------------

    def run(self, stop: threading.Event, poll: int = 1) -> None:
        """Take jobs until `stop` is set. A scheduler beside the loop promotes
        delayed jobs (expiries, follow-ups) and puts a dead worker's jobs back."""
        scheduler = BackgroundScheduler(daemon=True)
        scheduler.add_job(
            self._housekeeping, "interval", seconds=0.5, max_instances=1, coalesce=True
        )
        # Its own job: health checks of watched services must not hold up the queue's upkeep.
        scheduler.add_job(
            self._watch,
            "interval",
            seconds=self.config.auto_rollback_interval_seconds,
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
        elif job.kind == "reassess" and record.state in (
            S.AWAITING_APPROVAL,
            S.CANCELLED,
            S.EXPIRED,
        ):
            self.reassess(record)
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
        self._unlock(record)
        self.sink.finished(record)
        if record.approved_by:
            self._report(record)
        return record

    def history(self, args: dict[str, str]) -> None:
        try:
            lines = history_lines(self.kube, self.config, args["namespace"], args["workload"])
        except PermanentError as err:
            self.sink.tell(args["channel"], args["user"], f":warning: {err}")
            return
        self.sink.tell(args["channel"], args["user"], "\n".join(lines))

    # -- assess --------------------------------------------------------------------

    def context(self) -> Context:
        return Context(
            kube=self.kube,
            config=self.config,
            timeout=self.config.rollout_timeout_seconds,
            helm=self.helm,
            backups=self.store.get_backup,
        )

    def _latest_backup(self, record: RollbackRecord) -> str:
        """The newest earlier rollback of the same service that saved a backup."""
        for earlier in self.store.recent(200):
            if (
                earlier.id != record.id
                and earlier.workload_key == record.workload_key
                and self.store.get_backup(earlier.id) is not None
            ):
                return earlier.id
        raise PermanentError(
            f"no earlier rollback of {record.workload_key} saved a backup to restore from"
        )

    def _refuse(self, record: RollbackRecord, problem: str) -> None:
        """The request cannot go on (nothing changed): ended, and its requester told."""
        failed = self.store.update(
            record.id, lambda r: r.transition(S.FAILED, problem, error=problem)
        )
        self.sink.refused(failed, problem)

    def _assess_strategy(self, record: RollbackRecord) -> None:
        options = dict(record.options)
        try:
            if options.get("backup") == "latest":
                options["backup"] = self._latest_backup(record)
            plan = get_strategy(record.strategy).plan(
                self.context(),
                Request(
                    record.namespace,
                    record.workload,
                    record.strategy,
                    record.requested_revision,
                    record.to_tag,
                    options,
                ),
            )
            if plan.nothing_to_do:
                raise PermanentError(f"nothing to do: {plan.nothing_to_do}")
        except PermanentError as err:
            self._refuse(record, str(err))
            return
        facts = self._assess_workloads(record, plan)
        assessed = self.store.update(
            record.id,
            lambda r: r.transition(
                S.ASSESSED,
                f"{plan.current} → {plan.target}",
                options=options,
                pins=dict(plan.pins),
                workloads=plan.workloads,
                current_label=plan.current,
                target_label=plan.target,
                facts=plan.facts,
                verify_checks=plan.verify_checks,
                from_images=plan.from_images,
                to_images=plan.to_images,
                changes=plan.changes,
                assessment=tuple(facts[0]),
                severity=facts[1],
            ),
        )
        self._ask(assessed)

    def _entry(self, record: RollbackRecord) -> ServiceEntry | None:
        """The record's catalog entry: by service name, else by its Deployment."""
        return self.config.services.get(record.workload) or self.config.service_for(
            record.namespace, record.workload
        )

    def _assess(self, record: RollbackRecord, names: tuple[str, ...]) -> list[Assessment]:
        """Each Deployment assessed at once, with the service's checks, error rate and
        thresholds (the HTTP checks once, with the first)."""
        entry = self._entry(record)

        def one(name: str) -> Assessment:
            return assess_workload(
                self.kube,
                record.namespace,
                name,
                health_checks=entry.health_checks if entry and name == names[0] else (),
                error_rate=entry.error_rate if entry else None,
                thresholds=entry.thresholds if entry else Thresholds(),
            )

        with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
            return list(pool.map(one, names))

    def _assess_workloads(self, record: RollbackRecord, plan: Plan) -> tuple[list[str], str]:
        """The assessment of each Deployment, at once; the worst severity wins."""
        names = plan.workloads[:MAX_ASSESSED]
        if not names:
            return [], "low"
        results = self._assess(record, names)
        worst = worst_of(results)
        if len(results) == 1:
            return worst.summary_lines(), worst.severity
        lines = [f"Severity: *{worst.severity}* — {worst.recommendation}"]
        for name, result in zip(names, results, strict=True):
            lines += [f"*{name}*: {line}" for line in result.summary_lines()[1:3]]
        return lines, worst.severity

    def _revision_before(self, record: RollbackRecord, before: int) -> int:
        """ "Roll back further": the newest revision older than the one that did not help."""
        _, history = read_history(self.kube, record.namespace, record.workload)
        older = [r.number for r in history if r.number < before and not r.current]
        if not older:
            raise PermanentError(
                f"{record.workload_key} has no revision older than {before} to roll back to"
            )
        return max(older)

    def assess(self, record: RollbackRecord) -> None:
        if record.strategy != "undo":
            self._assess_strategy(record)
            return
        try:
            revision = record.requested_revision
            if "before" in record.options:
                revision = self._revision_before(record, int(record.options["before"]))
            plan = plan_rollback(
                self.kube,
                self.config,
                record.namespace,
                record.workload,
                revision,
                to_tag=record.to_tag,
                container=record.options.get("container"),
            )
            if plan.already_at_target:
                raise AlreadyAtTarget(plan.name, plan.target.number)
        except PermanentError as err:
            self._refuse(record, str(err))
            return
        [facts] = self._assess(record, (record.workload,))
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

    def _monitor_minutes(self, record: RollbackRecord) -> float | None:
        """For a "monitor" recommendation (medium severity): when to assess again."""
        if record.severity != "medium":
            return None
        entry = self._entry(record)
        return (entry.thresholds if entry else Thresholds()).monitor_minutes

    def _post_confirmation(self, waiting: RollbackRecord) -> None:
        record = waiting
        thread = self.sink.confirmation(waiting)
        if thread:
            self.store.update(record.id, lambda r: r.model_copy(update={"thread_ts": thread}))
        if (minutes := self._monitor_minutes(waiting)) is not None:
            self.queue.enqueue(
                Job(kind="reassess", record_id=record.id, not_before=time.time() + minutes * 60)
            )
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

    def _lock(self, record: RollbackRecord) -> str | None:
        """Take every lock the record needs; None, or why not (all released again)."""
        taken: list[str] = []
        for key in record.lock_keys:
            holder = self.store.lock_workload(key, record.id)
            if holder is not None:
                for done in taken:
                    self.store.unlock_workload(done, record.id)
                return f"rollback {holder} of {key} is in progress"
            taken.append(key)
        return None

    def _unlock(self, record: RollbackRecord) -> None:
        for key in record.lock_keys:
            self.store.unlock_workload(key, record.id)

    def execute(self, record: RollbackRecord) -> None:
        if (problem := self._lock(record)) is not None:
            refused = self.store.update(
                record.id, lambda r: r.transition(S.FAILED, problem, error=problem)
            )
            self.sink.refused(refused, problem)
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
        self._unlock(record)
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
        states = [
            (name, rollout_state(self.kube.get_deployment(record.namespace, name)))
            for name in record.deployments
        ]
        entry = self._entry(record)
        results = run_checks(entry.health_checks) if entry and record.verify_checks else []
        problems = [r.line() for r in results if not r.ok]
        problems[:0] = [
            f"{name}: only {st.available}/{st.desired} replicas available"
            for name, st in states
            if st.available < st.desired
        ]
        available = sum(st.available for _, st in states)
        desired = sum(st.desired for _, st in states)
        label = f"Follow-up +{minutes[index]:g} min"
        if problems:
            text = f":warning: {label}: unhealthy again <@{record.requested_by}>:\n" + "\n".join(
                problems
            )
        elif last:
            text = f":white_check_mark: {label}: stable; the incident can be closed"
        else:
            text = f"{label}: healthy ({available}/{desired} available" + (
                f", {len(results)} checks passing)" if results else ")"
            )
        self.store.update(record.id, lambda r: r.note(text.split("\n", 1)[0]))
        self.sink.milestone(record, text)

    def reassess(self, record: RollbackRecord) -> None:
        """The runbook's "monitor for 5–10 minutes, roll back if it gets worse": the
        assessment again, compared with the first, posted in the thread."""
        now = worst_of(self._assess(record, record.deployments[:MAX_ASSESSED]))
        before = record.severity or "unknown"
        rank = {s: i for i, s in enumerate(reversed(SEVERITY_ORDER))}
        if rank.get(now.severity, 0) > rank.get(before, 0):
            verdict = "worse"
        elif rank.get(now.severity, 0) < rank.get(before, 0):
            verdict = "better"
        else:
            verdict = "no better"
        minutes = self._monitor_minutes(record) or 0
        text = (
            f"Re-assessed after {minutes:g} min: severity {before} → *{now.severity}* "
            f"({verdict}) — {now.recommendation}"
        )
        lines = [text, *now.summary_lines()[1:]]
        self.store.update(record.id, lambda r: r.note(text))
        waiting = record.state is S.AWAITING_APPROVAL
        if waiting:
            lines.append("The confirmation above is still open: approve it to roll back.")
        self.sink.reassessed(
            record, "\n".join(lines), offer_rollback=not waiting and verdict != "better"
        )

    def open_automatic_rollbacks(self) -> list[str]:
        """A rollback for each opted-in Deployment whose fresh revision failed; the ids."""
        opened = []
        for failure in self.watcher.find_failed_releases():
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
        names = record.deployments
        bundles = [take_backup(self.kube, record.namespace, name) for name in names]
        bundle: dict[str, Any] = (
            bundles[0]
            if len(bundles) == 1
            else {"components": dict(zip(names, bundles, strict=True))}
        )
        self.store.save_backup(record.id, bundle)
        saved: list[str] = []
        for name, one in zip(names, bundles, strict=True):
            saved.append(f"deployment/{name}")
            saved += [f"service/{s['metadata']['name']}" for s in one["services"]]
            saved += [f"configmap/{c['metadata']['name']}" for c in one["config_maps"]]
            saved += [f"hpa/{h['metadata']['name']}" for h in one["autoscalers"]]
        self.sink.milestone(record, "Backup saved: " + ", ".join(dict.fromkeys(saved)))
        return self.store.update(record.id, lambda r: r.transition(S.ROLLING_BACK, "backup saved"))

    def _apply_strategy(self, record: RollbackRecord) -> RollbackRecord:
        progress = _RecordProgress(self, record)
        cause = (
            f"rollbot: {record.strategy} rollback by {record.approved_by or record.requested_by}"
            + (f": {record.reason}" if record.reason else "")
        )
        done = get_strategy(record.strategy).apply(
            self.context(), record.namespace, record.pins, cause, progress
        )
        self.sink.milestone(record, f"Applied: {done}")
        return self.store.update(
            record.id, lambda r: r.note(f"applied: {done}").transition(S.VERIFYING, "verifying")
        )

    def _roll_back(self, record: RollbackRecord) -> RollbackRecord:
        if record.strategy != "undo":
            return self._apply_strategy(record)
        if record.to_tag is not None:  # approved already: no second "never deployed" check
            plan = plan_rollback(
                self.kube,
                self.config,
                record.namespace,
                record.workload,
                to_tag=record.to_tag,
                container=record.options.get("container"),
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
        states = [
            rollout_state(self.kube.get_deployment(record.namespace, name))
            for name in record.deployments
        ]
        short = [
            f"{name} {st.available}/{st.desired}"
            for name, st in zip(record.deployments, states, strict=True)
            if st.available < st.desired
        ]
        if short:
            raise PermanentError(
                "rolled back but unhealthy: not all replicas are available: " + ", ".join(short)
            )
        available = sum(st.available for st in states)
        summary = f"{available}/{sum(st.desired for st in states)} replicas available"
        if not record.verify_checks:
            return self.store.update(
                record.id, lambda r: r.transition(S.SUCCEEDED, f"done: {summary}")
            )
        entry = self._entry(record)
        checks = [*entry.health_checks, *entry.smoke_tests] if entry else []
        if entry is not None and entry.version_check is not None:
            version = target_version(record.to_images, entry.version_check.container)
            if version is None:
                self.sink.milestone(
                    record, "Version check skipped: the target image has no tag to compare"
                )
            else:
                checks.append(entry.version_check.expecting(version))
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


class _RecordProgress:
    """A strategy's progress, into the record's thread."""

    def __init__(self, worker: Worker, record: RollbackRecord) -> None:
        self.worker, self.record = worker, record

    def milestone(self, text: str) -> None:
        self.worker.sink.milestone(self.record, text)

    def rollout(self, workload: str, state: RolloutState) -> None:
        several = len(self.record.deployments) > 1
        self.worker.sink.rollout(self.record, state, workload if several else None)
