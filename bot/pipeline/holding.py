"""GitOps holds around a rollback, as the worker's stages: reconciliation held
before the rollback is applied, the question before a person resumes it (what
Git holds against what runs), the resume itself, and reminders while it stays
held. rollbot never resumes on its own. The steps are `bot.gitops.steps`."""

from __future__ import annotations

import time

from bot.errors import PermanentError
from bot.gitops.gitmatch import GitFailed, GitMatch, commit_rollback, read_token
from bot.gitops.steps import hold_owners, reminder_text, resume_owners, resume_question
from bot.pipeline.wiring import Pipeline
from bot.progress import Tone
from bot.records import RollbackRecord
from bot.store import Job
from bot.strategies import get as get_strategy
from bot.strategies import workloads_now

__all__ = ["hold_reconciliation", "reminder_text", "resume", "schedule_reminder"]


def hold_reconciliation(p: Pipeline, record: RollbackRecord) -> RollbackRecord:
    return hold_owners(
        p.store, p.kube, record, lambda r, text, tone: p.sink.milestone(r, text, tone)
    )


def resume(p: Pipeline, record: RollbackRecord, user: str) -> RollbackRecord:
    return resume_owners(
        p.store, p.kube, record, user, lambda r, text, tone: p.sink.milestone(r, text, tone)
    )


def on_resume_check(p: Pipeline, job: Job) -> None:
    record = p.store.get(job.record_id)
    user, channel = str(job.args["user"]), str(job.args.get("channel") or record.channel)
    if not record.holding:
        p.sink.tell(channel, user, f"Rollback {record.id} holds no reconciliation now.")
        return
    try:
        running = workloads_now(
            p.strategy_context(),
            get_strategy(record.strategy),
            record.namespace,
            record.deployments,
            record.pins,
        )
        text = resume_question(p.kube, record, running)
    except PermanentError as err:
        p.sink.tell(channel, user, f"Cannot show what Git holds for {record.id}: {err}")
        return
    asked = p.store.update(record.id, lambda r: r.note(f"resume asked by {user}", user))
    p.sink.resume_question(asked, text)


def on_resume(p: Pipeline, job: Job) -> None:
    """A resume that cannot be done (no right to patch any more) is said in the
    thread, the hold left as recorded: the record ended long ago, so the runner's
    way of ending a record would say nothing."""
    record, user = p.store.get(job.record_id), str(job.args["user"])
    try:
        resume(p, record, user)
    except PermanentError as err:
        text = f"Reconciliation not resumed: {err}"
        p.store.update(record.id, lambda r: r.note(text, user))
        p.sink.milestone(p.store.get(record.id), text, Tone.WARNING, user)


def on_git_match(p: Pipeline, job: Job) -> None:
    """After a rollback that holds reconciliation: commit it to Git where the service
    says how, so that resuming keeps the good version. A failure is said, and leaves
    the rollback as it is (Git is then a person's to fix)."""
    record = p.store.get(job.record_id)
    entry = p.entry(record)
    if entry is None or entry.git is None or not record.holding:
        return
    if any(h.git_commit for h in record.holding):
        return  # done (a re-delivered job)
    settings = entry.git
    try:
        done = commit_rollback(
            settings,
            read_token(settings),
            record.id,
            record.workload,
            record.from_images,
            record.to_images,
            record.reason,
        )
    except GitFailed as err:
        text = f"Git not updated: {err}. Set the good version in Git before resuming."
        p.store.update(record.id, lambda r: r.note(text))
        p.sink.milestone(record, text, Tone.WARNING, record.requested_by)
        return
    text = git_match_text(done, settings.repository, settings.branch)
    record = p.store.update(
        record.id,
        lambda r: r.model_copy(
            update={
                "holds": tuple(
                    h.model_copy(update={"git_commit": done.commit, "git_branch": done.branch})
                    if h.held
                    else h
                    for h in r.holds
                )
            }
        ).note(text),
    )
    p.sink.milestone(record, text, Tone.GOOD if done.branch == settings.branch else Tone.INFO)


def git_match_text(done: GitMatch, repository: str, followed: str) -> str:
    if done.already:
        return f"Git already holds the good version on {followed} ({done.commit[:12]})"
    where = f"{repository} branch {done.branch}"
    text = f"Git: the rollback committed as {done.commit[:12]} on {where} ({', '.join(done.files)})"
    if done.introduced_by:
        text += f"; the bad image came with {done.introduced_by}"
    if done.branch != followed:
        text += f". Merge it into {followed}, then resume"
    return text


def on_hold_reminder(p: Pipeline, job: Job) -> None:
    """After the follow-ups: a reminder now and then, for as long as it is held."""
    record = p.store.get(job.record_id)
    if (text := reminder_text(record)) is None:
        return
    p.sink.milestone(record, text, Tone.WARNING, record.requested_by)
    schedule_reminder(p, record)


def schedule_reminder(p: Pipeline, record: RollbackRecord) -> None:
    at = time.time() + p.config.hold_reminder_minutes * 60
    p.queue.enqueue(Job(kind="hold_reminder", record_id=record.id, not_before=at))
