"""What Git holds now against what runs: the question before a person resumes
reconciliation — will resuming bring the bad version back?

Flux: the source's artifact revision now against the revision the owner had
applied when it was held (the one that ran the bad version), and the images
running now against the rollback's "from" (bad) and "to" (good) images. Argo CD:
the revision it compares with and whether it finds the workload out of sync.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.bodies import Body
from bot.deployments import container_images
from bot.gitops.holds import ReconciliationHold
from bot.gitops.owner import GIT_REPOSITORY, Owner, OwnerSource, read_owner


def _source_revision(kube: OwnerSource, owner: Owner) -> str | None:
    """The revision of the GitRepository a Flux owner reads (None: not a
    GitRepository, or no artifact yet)."""
    ref = owner.spec.get("sourceRef") or {}
    if ref.get("kind") != "GitRepository" or not ref.get("name"):
        return None
    source = kube.get_custom(
        GIT_REPOSITORY.api,
        ref.get("namespace") or owner.ref.namespace,
        GIT_REPOSITORY.plural,
        str(ref["name"]),
    )
    artifact = ((source or {}).get("status") or {}).get("artifact") or {}
    revision = artifact.get("revision")
    return str(revision) if revision else None


def flux_verdict(
    hold: ReconciliationHold,
    now_revision: str | None,
    running: Sequence[str],
    bad: Sequence[str],
    good: Sequence[str],
) -> str:
    """Whether resuming a Flux owner brings the bad version back, in a line."""
    held_at = hold.applied_revision
    if now_revision is None:
        return "Git: rollbot cannot read the source's revision; check Git before resuming"
    if hold.git_commit:
        short = hold.git_commit[:12]
        if hold.git_commit in now_revision:
            return (
                f"Git holds rollbot's commit {short} ({now_revision}), which sets the good "
                "version back: resuming keeps it"
            )
        return (
            f"rollbot's commit {short} is on branch {hold.git_branch}, and the source is at "
            f"{now_revision}: until Flux has it (merged, and fetched), resuming applies "
            "that revision instead"
        )
    if held_at and now_revision == held_at:
        back = f" ({', '.join(bad)})" if bad else ""
        return (
            f"Git still holds {now_revision}, the revision Flux had applied when it was "
            f"held: resuming brings the bad version back{back}"
        )
    moved = f"{held_at} when held → {now_revision} now" if held_at else f"now {now_revision}"
    runs_good = bool(good) and sorted(running) == sorted(good)
    tail = "what runs is the rollback's target" if runs_good else "what runs is shown below"
    return (
        f"Git has changed since the hold ({moved}): resuming applies that revision; "
        f"make sure it holds the good version ({tail})"
    )


def argo_verdict(owner: Owner) -> str:
    sync = ((owner.body or {}).get("status") or {}).get("sync") or {}
    status, revision = sync.get("status") or "unknown", sync.get("revision") or "unknown"
    if status == "Synced":
        return f"Argo CD finds what runs in sync with Git at {revision}: resuming changes nothing"
    if status == "OutOfSync":
        return (
            f"Argo CD finds what runs out of sync with Git at {revision}: resuming automated "
            "sync puts Git's version back"
        )
    return f"Argo CD's sync status is {status} at {revision}: check Git before resuming"


def drift_lines(
    kube: OwnerSource,
    hold: ReconciliationHold,
    workloads: Sequence[Body],
    bad: Sequence[str],
    good: Sequence[str],
) -> list[str]:
    """The confirmation's text for resuming one hold (plain text); `workloads`
    (Deployments, an Argo Rollout) say what runs by their pod templates."""
    owner = read_owner(kube, hold.ref)
    templates = [(w.get("spec") or {}).get("template") or {} for w in workloads]
    running = [image for template in templates for image in container_images(template)]
    since = f" since {hold.held_at:%Y-%m-%d %H:%M} UTC" if hold.held_at else ""
    lines = [f"{hold.ref}: held{since}; resuming restores {hold.previous_text()}"]
    if not owner.exists:
        lines.append(f"{hold.ref} does not exist any more: there is nothing to resume")
        return lines
    if hold.kind == "Application":
        lines.append(argo_verdict(owner))
    else:
        lines.append(flux_verdict(hold, _source_revision(kube, owner), running, bad, good))
    lines.append("Running now: " + (", ".join(running) or "no containers"))
    return lines
