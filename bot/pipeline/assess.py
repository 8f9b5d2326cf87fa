"""Stage one: plan and assess a request, then ask — the confirmation with its
buttons, a dry run's answer, or (where policy lets it skip approval) an
emergency's start."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from bot.assessment import Assessment, AssessmentSummary, assess_workload, headline, summarize
from bot.errors import PermanentError
from bot.gitops.planning import plan_gitops
from bot.migrations import SchemaCrossing, weigh
from bot.pipeline import execute
from bot.pipeline.wiring import Pipeline
from bot.policy import (
    NotAllowed,
    check_emergency_allowed,
    emergency_waits_for_dbas,
    needs_schema_approval,
)
from bot.records import RollbackRecord, RollbackState
from bot.schema_versions import read_crossing
from bot.signals import Thresholds
from bot.store import Job
from bot.strategies import Plan, Request, record_fields, workloads_now
from bot.strategies import get as get_strategy

S = RollbackState

#: At most this many Deployments are assessed for one confirmation.
MAX_ASSESSED = 6


def on_assess(p: Pipeline, job: Job) -> None:
    record = p.store.get(job.record_id)
    if record.state is S.REQUESTED:
        assess(p, record)
    elif record.state is S.ASSESSED:
        ask(p, record)  # its worker died between the assessment and the question
    elif record.state is S.AWAITING_APPROVAL and not record.thread_ts:
        post_confirmation(p, record)  # ...or just before posting the question
    # Otherwise a duplicate delivery: the record has moved on.


def assess_deployments(
    p: Pipeline, record: RollbackRecord, names: tuple[str, ...]
) -> list[Assessment]:
    """Each Deployment assessed at once, with the service's checks, error rate and
    thresholds (the HTTP checks once, with the first)."""
    entry = p.entry(record)

    def one(name: str) -> Assessment:
        return assess_workload(
            p.kube,
            record.namespace,
            name,
            health_checks=entry.health_checks if entry and name == names[0] else (),
            error_rate=entry.error_rate if entry else None,
            thresholds=entry.thresholds if entry else Thresholds(),
        )

    with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
        return list(pool.map(one, names))


def monitor_minutes(p: Pipeline, record: RollbackRecord) -> float | None:
    """For a "monitor" recommendation (medium severity): when to assess again."""
    if record.severity != "medium":
        return None
    entry = p.entry(record)
    return (entry.thresholds if entry else Thresholds()).monitor_minutes


def _latest_backup(p: Pipeline, record: RollbackRecord) -> str:
    """The newest earlier rollback of the same service that saved a backup."""
    for earlier in p.store.recent(200):
        if (
            earlier.id != record.id
            and earlier.workload_key == record.workload_key
            and p.store.get_backup(earlier.id) is not None
        ):
            return earlier.id
    raise PermanentError(
        f"no earlier rollback of {record.workload_key} saved a backup to restore from"
    )


def _request(record: RollbackRecord, options: dict[str, str]) -> Request:
    return Request(
        record.namespace,
        record.workload,
        record.strategy,
        record.requested_revision,
        record.to_tag,
        options,
    )


def assess_again(p: Pipeline, record: RollbackRecord) -> AssessmentSummary:
    """The assessment as the confirmation had it, made again now: each Deployment
    the plan touched or, for a strategy that assesses its own workload (a Rollout's
    phase and analysis), that strategy's assessment of it."""
    if record.workloads:
        return _assess_names(p, record, record.workloads)
    plan = get_strategy(record.strategy).plan(
        p.strategy_context(), _request(record, dict(record.options))
    )
    return plan.assessment or _assess_names(p, record, record.deployments)


def assess(p: Pipeline, record: RollbackRecord) -> None:
    """Plan the request with its strategy (the Deployment undo included) and assess
    the Deployments the plan touches."""
    options = dict(record.options)
    try:
        if options.get("backup") == "latest":
            options["backup"] = _latest_backup(p, record)
        strategy, ctx = get_strategy(record.strategy), p.strategy_context()
        plan = strategy.plan(ctx, _request(record, options))
        if plan.nothing_to_do:
            raise PermanentError(f"nothing to do: {plan.nothing_to_do}")
        changed = workloads_now(ctx, strategy, record.namespace, plan.workloads, plan.pins)
        gitops = plan_gitops(p.kube, p.config, record.namespace, changed)
    except PermanentError as err:
        p.refuse(record, str(err))
        return
    summary = plan.assessment or _assess_plan(p, record, plan)
    assessed_any = bool(plan.workloads) or plan.assessment is not None
    crossing = _crossing(p, record, plan)
    severity, recommendation = weigh(summary.severity, summary.recommendation, crossing)
    lines = (headline(severity, recommendation), *(crossing.lines() if crossing else ()))
    assessed = p.store.update(
        record.id,
        lambda r: r.transition(
            S.ASSESSED,
            f"{plan.current} → {plan.target}",
            **{**record_fields(plan), "facts": plan.facts + gitops.facts},
            options=options,
            holds=gitops.holds,
            assessment=(*lines, *summary.facts) if assessed_any else (),
            severity=severity,
            recommendation=recommendation if assessed_any else None,
            bad_since=summary.revision_since,
            migration=crossing,
        ),
    )
    ask(p, assessed)


def _crossing(p: Pipeline, record: RollbackRecord, plan: Plan) -> SchemaCrossing | None:
    """The database migration the plan crosses, for a service that declares its
    migrations; one whose versions cannot be read counts as unknown (gated)."""
    entry = p.entry(record)
    if entry is None or entry.migrations is None:
        return None
    try:
        return read_crossing(p.kube, entry.migrations, plan)
    except PermanentError as err:
        settings = entry.migrations
        return SchemaCrossing(
            current_label=plan.current,
            target_label=plan.target,
            current=None,
            target=None,
            source=f"{settings.version_from.describe()}; could not read it: {err}",
            compatible=settings.compatible,
            approvers=tuple(settings.approvers),
        )


def _assess_plan(p: Pipeline, record: RollbackRecord, plan: Plan) -> AssessmentSummary:
    return _assess_names(p, record, plan.workloads)


def _assess_names(p: Pipeline, record: RollbackRecord, names: tuple[str, ...]) -> AssessmentSummary:
    """The assessment of each Deployment named, at once; the worst severity wins."""
    names = names[:MAX_ASSESSED]
    return summarize(dict(zip(names, assess_deployments(p, record, names), strict=True)))


def ask(p: Pipeline, assessed: RollbackRecord) -> None:
    """Post the assessed rollback: a dry run's answer, an emergency's start, or
    the confirmation with its buttons (and its expiry)."""
    if assessed.dry_run:
        thread = p.sink.confirmation(assessed)
        done = p.store.update(
            assessed.id,
            lambda r: r.transition(
                S.CANCELLED, "dry run: nothing was changed", thread_ts=thread or r.thread_ts
            ),
        )
        p.sink.finished(done)
        return
    if (
        assessed.emergency
        and assessed.trigger != "drill-forward"
        and needs_schema_approval(assessed)
    ):
        _wait_for_dbas(p, assessed)
        return
    if assessed.emergency:
        _start_emergency(p, assessed)
        return
    waiting = p.store.update(
        assessed.id, lambda r: r.transition(S.AWAITING_APPROVAL, "confirmation posted")
    )
    post_confirmation(p, waiting)


def _wait_for_dbas(p: Pipeline, record: RollbackRecord) -> None:
    """A rollback across an incompatible migration never runs by itself: an automatic
    one (or a drill) waits for the usual approval and a DBA's; an `--emergency` skips
    the usual approval where policy lets it, and the DBAs' only where the environment
    says `emergency_skips_schema_approval`."""
    if record.trigger in ("manual", "cli"):
        if not emergency_waits_for_dbas(p.config, record):
            _start_emergency(p, record)
            return
        check_emergency_allowed(p.config, record.namespace)
        why = (
            "emergency: the usual approval is skipped by policy, but the rollback crosses "
            "an incompatible migration: waiting for a DBA's approval"
        )
        still_emergency = True
    else:
        why = (
            f"{record.trigger} rollback across an incompatible migration: never run by "
            "itself, waiting for approval and a DBA's"
        )
        still_emergency = False
    waiting = p.store.update(
        record.id,
        lambda r: r.transition(S.AWAITING_APPROVAL, why, emergency=still_emergency),
    )
    post_confirmation(p, waiting)


def post_confirmation(p: Pipeline, waiting: RollbackRecord) -> None:
    thread = p.sink.confirmation(waiting)
    if thread:
        p.store.update(waiting.id, lambda r: r.model_copy(update={"thread_ts": thread}))
    if (minutes := monitor_minutes(p, waiting)) is not None:
        p.queue.enqueue(
            Job(kind="reassess", record_id=waiting.id, not_before=time.time() + minutes * 60)
        )
    if waiting.expires_at is not None:
        p.queue.enqueue(
            Job(kind="expire", record_id=waiting.id, not_before=waiting.expires_at.timestamp())
        )


_WHY_NO_APPROVAL = {
    "automatic": "automatic: run at once by policy",
    "drill": "drill: run without approval (the drill's settings)",
    "drill-forward": "the drill's forward step: approved with the drill",
}


def _start_emergency(p: Pipeline, record: RollbackRecord) -> None:
    """--emergency (or an automatic rollback) where policy lets it skip approval:
    announce, then run."""
    if record.trigger == "automatic":
        if not p.config.policy_for(record.namespace).auto_execute:
            raise NotAllowed("automatic rollbacks wait for approval here")
    elif not record.drill:  # a drill's own settings said it runs without approval
        check_emergency_allowed(p.config, record.namespace)
    thread = p.sink.confirmation(record)
    approved = p.store.update(
        record.id,
        lambda r: r.transition(
            S.AWAITING_APPROVAL,
            _WHY_NO_APPROVAL.get(r.trigger, "emergency: approval skipped by policy"),
            thread_ts=thread or r.thread_ts,
        ).transition(
            S.APPROVED,
            f"{r.trigger} rollback, no approval needed",
            actor=r.requested_by,
            approved_by=r.requested_by,
        ),
    )
    execute.execute(p, approved)
