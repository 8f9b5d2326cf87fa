"""GitOps holds from a terminal (`rollbot`): a rollback Flux or Argo CD would
revert is refused there (it keeps no record to resume from: the Slack flow holds
reconciliation for it), and `rollbot resume ID` resumes what a Slack rollback
holds, after the same question the thread asks."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bot.bodies import Body
from bot.config import RollbotConfig
from bot.errors import PermanentError
from bot.gitops.planning import GitOpsKube, plan_gitops
from bot.gitops.steps import resume_owners, resume_question
from bot.progress import Tone
from bot.records import RollbackRecord
from bot.requests import parse_record_id
from bot.terminal import Terminal


def check_gitops(
    kube: GitOpsKube,
    config: RollbotConfig,
    namespace: str,
    workloads: Sequence[Body],
    out: Terminal,
) -> None:
    """Say who owns the workloads (Deployments, an Argo Rollout: any kind); refuse
    when one of them would revert the rollback."""
    gitops = plan_gitops(kube, config, namespace, workloads)
    for fact in gitops.facts:
        if not fact.startswith("Plan:"):
            out.say(fact)
    if gitops.holds:
        owners = ", ".join(str(hold.ref) for hold in gitops.holds)
        raise PermanentError(
            f"{owners} would revert this rollback: roll back from Slack (/rollback), which "
            "holds its reconciliation and records it, or hold it yourself first "
            "(flux suspend …, or turn off the Application's automated sync)"
        )


def resume_from_terminal(
    kube: GitOpsKube,
    record_id: str,
    actor: str,
    yes: bool,
    out: Terminal,
    running: Callable[[RollbackRecord], Sequence[Body]],
) -> bool:
    """The question, then the recorded settings put back; whether it was resumed (or
    there was nothing to resume). `running`: the workloads a record changed, as they
    are now. The record is in the store rollbot's Slack side uses (REDIS_URL), and
    so is its thread's outbox: the thread is told too."""
    from bot.outbox import Outbox, OutboxSink
    from bot.store import RollbackStore, connect

    redis_client = connect()
    store = RollbackStore(redis_client)
    record = store.get(parse_record_id("resume", record_id))
    if not record.holding:
        out.say(f"{record.id} holds no reconciliation now")
        return True
    for line in resume_question(kube, record, running(record)).splitlines():
        out.say(line)
    if not yes and not out.ask("Resume reconciliation? [y/N] "):
        out.say("kept held: nothing was changed")
        return False
    thread = OutboxSink(Outbox(redis_client))

    def say(changed: RollbackRecord, text: str, tone: Tone) -> None:
        out.say(text)
        if changed.channel:
            thread.milestone(changed, text, tone)

    resume_owners(store, kube, record, f"cli:{actor}", say)
    return True
