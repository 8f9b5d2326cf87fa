"""Helm releases: their history read from the cluster, the revision to roll back
to, and `helm rollback` itself.

The history, and what each revision deploys, is read from the release Secrets
without the helm binary (`bot/helm_history.py`). Only the rollback runs helm,
which applies the target's manifest and records the new revision.

Which revision is "current": the newest one. Every helm operation records its
revision before it changes the cluster, so the newest revision is what the
cluster was last made to run, whatever its status. After a failed upgrade the
previous revision still says `deployed`, yet the cluster runs the failed one;
rolling back to that `deployed` revision is the cure, not a no-op.

(Over ~400 lines: the checks that planning and running share — pending,
changed, already done — read best next to both.)
"""

from __future__ import annotations

import math
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from bot.errors import (
    AlreadyAtTarget,
    InvalidInput,
    PermanentError,
    RevisionNotFound,
    RolloutFailed,
    RolloutTimedOut,
)
from bot.helm_history import (
    HelmRevision,
    ReleaseNotFound,
    SecretSource,
    read_release_history,
    release_secret_name,
)

#: Seconds the Python side waits for helm beyond helm's own --timeout.
HELM_GRACE_SECONDS = 30
#: Seconds between looks at a rollback another helm process is still running.
PENDING_POLL_SECONDS = 1.0


# -- errors ------------------------------------------------------------------------


class ReleasePending(PermanentError):
    """The newest revision is pending-*: an operation is running, or died half-way."""

    code = "release_pending"

    def __init__(self, namespace: str, release: str, stuck: HelmRevision, fix: str) -> None:
        self.namespace = namespace
        self.release = release
        self.revision = stuck.number
        self.status = stuck.status
        super().__init__(
            f"Helm release {release!r} in {namespace!r} is stuck in {stuck.status} at revision "
            f"{stuck.number} ({stuck.description or 'no description'}, since {stuck.updated}): "
            "a helm operation is still running or was interrupted. While the newest revision "
            'is pending-*, helm refuses upgrades ("another operation (install/upgrade/rollback) '
            'is in progress") and rollbot will not roll back over an operation that may still '
            f"be running. Once no helm operation runs on it any more, fix it: {fix}"
        )


class NothingToRollBackTo(PermanentError):
    code = "nothing_to_roll_back_to"

    def __init__(self, namespace: str, release: str, current: HelmRevision) -> None:
        super().__init__(
            f"nothing to roll back to: Helm release {release!r} in {namespace!r} has no "
            f"deployed or superseded revision below its current revision {current.number} "
            f"({current.status})"
        )


class TargetRevisionFailed(PermanentError):
    code = "target_revision_failed"

    def __init__(self, release: str, target: HelmRevision, good: list[int]) -> None:
        self.revision = target.number
        listed = ", ".join(str(n) for n in good) or "none"
        super().__init__(
            f"refusing to roll Helm release {release!r} back to revision {target.number}: "
            f"it failed ({target.description or 'no description'}). "
            f"Revisions that were deployed: {listed}"
        )


class AlreadyAtRevision(AlreadyAtTarget):
    """The requested revision is the release's current one: nothing to do."""

    def __init__(self, release: str, revision: int) -> None:
        self.revision = revision
        PermanentError.__init__(
            self, f"Helm release {release!r} is already at revision {revision}: nothing to do"
        )


class ReleaseChanged(PermanentError):
    """Someone changed the release between the plan and the rollback."""

    code = "release_changed"


class HelmNotFound(PermanentError):
    code = "helm_not_found"

    def __init__(self, helm: str, detail: str) -> None:
        super().__init__(
            f"cannot run the helm binary {helm!r} ({detail}): install helm, or give its "
            "path in $ROLLBOT_HELM (rollbot rollback --helm PATH)"
        )


def check_helm(helm: str) -> str:
    """The helm binary's path, checked before anything says helm is running."""
    found = shutil.which(helm)
    if found is None:
        where = "no such executable file" if "/" in helm else "not found on PATH"
        raise HelmNotFound(helm, where)
    return found


class HelmRollbackFailed(RolloutFailed):
    """`helm rollback` exited non-zero; `stderr` is what helm said."""

    code = "helm_rollback_failed"

    def __init__(self, command: list[str], returncode: int, stderr: str) -> None:
        self.command = command
        self.returncode = returncode
        self.stderr = stderr.strip()
        super().__init__(
            f"helm {' '.join(command[1:])} failed (exit {returncode}): "
            f"{self.stderr or 'helm printed no error'}"
        )


def last_deployed(history: list[HelmRevision]) -> HelmRevision | None:
    deployed = [r for r in history if r.status == "deployed"]
    return deployed[-1] if deployed else None


def pending_fix(history: list[HelmRevision], namespace: str, release: str) -> str:
    """How to unblock a release whose newest revision is pending-*."""
    stuck = history[-1]
    secret = release_secret_name(release, stuck.number)
    delete = f"`kubectl delete secret {secret} -n {namespace}`"
    good = [r for r in history[:-1] if r.good]
    if not good:
        return (
            f"delete the stuck revision's record, Secret {secret} ({delete}), or "
            f"`helm uninstall {release} -n {namespace}`, then install again"
        )
    back_to = last_deployed(history[:-1]) or good[-1]
    return (
        f"`helm rollback {release} {back_to.number} -n {namespace}` (applies revision "
        f"{back_to.number} again as a new revision), or delete the stuck revision's record, "
        f"Secret {secret} ({delete}): helm then takes revision {back_to.number} for current, "
        f"while the cluster keeps what revision {stuck.number} applied"
    )


def ensure_not_pending(history: list[HelmRevision], namespace: str, release: str) -> None:
    """Raise ReleasePending when the newest revision's operation never finished."""
    if history and history[-1].pending:
        fix = pending_fix(history, namespace, release)
        raise ReleasePending(namespace, release, history[-1], fix)


def choose_target(
    history: list[HelmRevision], namespace: str, release: str, revision: int = 0
) -> HelmRevision:
    """The revision to roll back to.

    `revision` 0 means the newest deployed or superseded revision below the
    current (newest) one: never simply the previous one, which may have failed.
    An explicit revision must exist, not be the current one, and not have failed.
    """
    if not history:
        raise ReleaseNotFound(namespace, release)
    if revision < 0:
        raise InvalidInput(f"a Helm revision is a positive number, not {revision}")
    ensure_not_pending(history, namespace, release)
    current = history[-1]
    if revision == 0:
        below = [r for r in history if r.number < current.number and r.good]
        if not below:
            raise NothingToRollBackTo(namespace, release, current)
        return below[-1]
    by_number = {r.number: r for r in history}
    if revision not in by_number:
        raise RevisionNotFound(revision, sorted(by_number))
    if revision == current.number:
        raise AlreadyAtRevision(release, revision)
    target = by_number[revision]
    if target.status == "failed":
        raise TargetRevisionFailed(release, target, [r.number for r in history if r.good])
    return target


# -- the plan ---------------------------------------------------------------------------


@dataclass(frozen=True)
class HelmPlan:
    """A Helm rollback as a person approves it."""

    release: str
    namespace: str
    history: tuple[HelmRevision, ...]
    current: HelmRevision
    target: HelmRevision
    #: What would change, one human-readable line each ("chart …", "todo-backend: …").
    changes: tuple[str, ...]

    @property
    def last_deployed(self) -> HelmRevision | None:
        """The newest revision marked deployed (below `current` after a failed upgrade)."""
        return last_deployed(list(self.history))


def _flat_keys(values: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key → leaf value. A release with no values at all has no keys (not one
    empty key, which would read as "values differ: , image")."""
    if isinstance(values, dict) and values:
        flat: dict[str, Any] = {}
        for key, value in values.items():
            flat.update(_flat_keys(value, f"{prefix}{key}."))
        return flat
    if not prefix:
        return {}
    return {prefix.rstrip("."): values}


def _by_container(images: tuple[str, ...]) -> dict[str, str]:
    pairs = (image.partition("=") for image in images)
    return {container: ref for container, _, ref in pairs}


def describe_changes(current: HelmRevision, target: HelmRevision) -> list[str]:
    """What rolling back from `current` to `target` changes, one line each.

    Values are compared by key only: they may hold secrets, which must not reach
    a chat message.
    """
    changes = []
    if current.chart != target.chart:
        changes.append(f"chart {current.chart or '?'} → {target.chart or '?'}")
    if current.app_version != target.app_version:
        changes.append(
            f"app version {current.app_version or '(none)'} → {target.app_version or '(none)'}"
        )
    now = {(d.namespace, d.name): d for d in current.deployments}
    then = {(d.namespace, d.name): d for d in target.deployments}
    keys = sorted(now.keys() | then.keys())
    one_namespace = len({namespace for namespace, _ in keys}) == 1
    for key in keys:
        name = key[1] if one_namespace else f"{key[0]}/{key[1]}"
        if key not in then:
            changes.append(f"{name}: removed (not in revision {target.number})")
        elif key not in now:
            images = ", ".join(f"{c} {ref}" for c, ref in _by_container(then[key].images).items())
            changes.append(f"{name}: added ({images})")
        elif now[key].images != then[key].images:
            before, after = _by_container(now[key].images), _by_container(then[key].images)
            for container in sorted(before.keys() | after.keys()):
                if before.get(container) != after.get(container):
                    changes.append(
                        f"{name}: {container} {before.get(container, '(none)')} → "
                        f"{after.get(container, '(none)')}"
                    )
    old_values, new_values = _flat_keys(current.values), _flat_keys(target.values)
    differing = sorted(
        k for k in old_values.keys() | new_values.keys() if old_values.get(k) != new_values.get(k)
    )
    if differing:
        shown = ", ".join(differing[:10]) + (
            f" and {len(differing) - 10} more" if differing[10:] else ""
        )
        changes.append(f"values differ: {shown}")
    return changes


def plan_helm_rollback(
    history: list[HelmRevision], namespace: str, release: str, revision: int = 0
) -> HelmPlan:
    """Choose the target (see `choose_target`) and say what the rollback changes."""
    target = choose_target(history, namespace, release, revision)
    current = history[-1]
    return HelmPlan(
        release=release,
        namespace=namespace,
        history=tuple(history),
        current=current,
        target=target,
        changes=tuple(describe_changes(current, target)),
    )


def plan_release_rollback(
    source: SecretSource, namespace: str, release: str, revision: int = 0
) -> HelmPlan:
    """Read the release's history from the cluster and plan its rollback."""
    return plan_helm_rollback(
        read_release_history(source, namespace, release), namespace, release, revision
    )


# -- running helm -------------------------------------------------------------------------


def rollback_command(
    plan: HelmPlan,
    *,
    timeout_seconds: float,
    helm: str = "helm",
    kubeconfig: str | None = None,
    kube_context: str | None = None,
) -> list[str]:
    """The `helm rollback` command line for a plan, target named explicitly."""
    command = [
        helm,
        "rollback",
        plan.release,
        str(plan.target.number),
        "--namespace",
        plan.namespace,
        "--wait",
        "--timeout",
        f"{max(1, math.ceil(timeout_seconds))}s",
    ]
    if kubeconfig:
        command += ["--kubeconfig", kubeconfig]
    if kube_context:
        command += ["--kube-context", kube_context]
    return command


def rollback_done(plan: HelmPlan, history: list[HelmRevision]) -> HelmRevision | None:
    """The revision that already carried out this plan, if one did (a worker died after helm)."""
    wanted = f"Rollback to {plan.target.number}"
    for revision in reversed(history):
        if revision.number <= plan.current.number:
            break
        if revision.description == wanted and revision.status == "deployed":
            return revision
    return None


def _check_unchanged(plan: HelmPlan, history: list[HelmRevision]) -> HelmRevision | None:
    """Before writing: the release must still be as planned, unless the plan is done already."""
    ensure_not_pending(history, plan.namespace, plan.release)
    done = rollback_done(plan, history)
    if done is not None:
        return done
    newest = history[-1]
    if newest.number != plan.current.number:
        raise ReleaseChanged(
            f"Helm release {plan.release!r} in {plan.namespace!r} changed since the plan: "
            f"its newest revision is now {newest.number} ({newest.status}, "
            f"{newest.description or 'no description'}), not {plan.current.number}; plan again"
        )
    return None


def own_rollback_in_flight(plan: HelmPlan, history: list[HelmRevision]) -> HelmRevision | None:
    """This plan's `helm rollback`, started before (by a worker that died: its helm
    child outlives it) and not finished: helm records "Rollback to TARGET" as
    pending-rollback above the planned current revision before it applies anything."""
    newest = history[-1] if history else None
    if (
        newest is not None
        and newest.status == "pending-rollback"
        and newest.number > plan.current.number
        and newest.description == f"Rollback to {plan.target.number}"
    ):
        return newest
    return None


def _await_own_rollback(
    plan: HelmPlan, source: SecretSource, wait_seconds: float
) -> tuple[list[HelmRevision], HelmRevision | None]:
    """The history once this plan's own pending rollback (if any) has ended, and that
    rollback's revision; still pending after `wait_seconds` (helm's own --timeout
    and then some), the helm that ran it is gone too."""
    history = read_release_history(source, plan.namespace, plan.release)
    own = own_rollback_in_flight(plan, history)
    deadline = time.monotonic() + wait_seconds
    while own_rollback_in_flight(plan, history) and time.monotonic() < deadline:
        time.sleep(PENDING_POLL_SECONDS)
        history = read_release_history(source, plan.namespace, plan.release)
    return history, own


def helm_rollback(
    plan: HelmPlan,
    *,
    source: SecretSource,
    timeout_seconds: float,
    helm: str = "helm",
    kubeconfig: str | None = None,
    kube_context: str | None = None,
) -> HelmRevision:
    """Run `helm rollback REL TARGET --wait --timeout …` and return the new revision.

    Safe to call again: if the release already has a deployed "Rollback to
    TARGET" above the planned current revision, that revision is returned
    without running helm. If that rollback is still pending (a worker died while
    its helm ran on), it is waited for and its outcome taken, not run again;
    pending past helm's own time-out, its helm died as well and helm is run
    again (helm rolls back over a pending-rollback). Raises ReleaseChanged if
    someone else changed the release since the plan, HelmNotFound,
    HelmRollbackFailed (helm's stderr), RolloutTimedOut if helm outlives its own
    time-out.
    """
    history, own = _await_own_rollback(plan, source, timeout_seconds + HELM_GRACE_SECONDS)
    ended = next((r for r in history if own and r.number == own.number), None)
    if ended is not None and not ended.pending:
        if ended.status != "deployed":
            raise RolloutFailed(
                f"helm rollback of {plan.release!r} to revision {plan.target.number}, run by "
                f"a worker that stopped, left revision {ended.number} {ended.status}: "
                f"{ended.description or 'no description'}"
            )
        return ended
    if ended is None and (done := _check_unchanged(plan, history)) is not None:
        return done
    command = rollback_command(
        plan,
        timeout_seconds=timeout_seconds,
        helm=helm,
        kubeconfig=kubeconfig,
        kube_context=kube_context,
    )
    try:
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_seconds + HELM_GRACE_SECONDS,
        )
    except (FileNotFoundError, PermissionError, NotADirectoryError) as err:
        raise HelmNotFound(helm, err.strerror or str(err)) from err
    except subprocess.TimeoutExpired as err:
        raise RolloutTimedOut(
            f"helm rollback of {plan.release!r} did not finish within "
            f"{timeout_seconds + HELM_GRACE_SECONDS:g}s and was stopped; the release may be "
            "left pending-rollback"
        ) from err
    if result.returncode != 0:
        raise HelmRollbackFailed(command, result.returncode, result.stderr)
    history = read_release_history(source, plan.namespace, plan.release)
    newest = history[-1]
    if newest.number <= plan.current.number:
        raise RolloutFailed(
            f"helm rollback of {plan.release!r} reported success but recorded no new revision "
            f"(newest is still {newest.number})"
        )
    if newest.status != "deployed":
        raise RolloutFailed(
            f"helm rollback of {plan.release!r} to revision {plan.target.number} left revision "
            f"{newest.number} {newest.status}: {newest.description or 'no description'}"
        )
    return newest
