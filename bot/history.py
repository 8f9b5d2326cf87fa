"""What a service can be rolled back to, as `/rollback history SERVICE` and
`rollbot history SERVICE` show it: the way its strategy sees it (a Helm
release's revisions, each Deployment's rollout history, the live colour).

The history is data (`HistorySection`: a title and its entries, plain text),
so each surface decorates it its own way; `history_lines` is the plain
rendering. Change causes and Helm descriptions are written by whoever deployed:
they are redacted.

`rollback_targets` is the same history as choices (the form's target list):
what a revision may be named with `--to-revision`, and which one rollbot picks
when none is named.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.argo_rollouts import RolloutRevision, RolloutStatus, UndoProblem, read_status, undo_target
from bot.argo_rollouts import history as argo_history
from bot.config import BlueGreen, RollbotConfig
from bot.deployments import Revision, choose_target
from bot.engine import read_history
from bot.errors import PermanentError
from bot.helm_history import read_release_history
from bot.helm_releases import choose_target as choose_helm_target
from bot.redaction import redact
from bot.strategies import resolve
from bot.strategies.argo import read_rollout
from bot.strategies.argo_follow import replica_sets_of
from bot.strategies.bluegreen import colours_of


@dataclass(frozen=True)
class HistorySection:
    """One thing's history: "Rollout history of deployment prod/web" and a line per revision."""

    title: str
    entries: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        return [self.title, *(f"• {entry}" for entry in self.entries)]


def short_images(revision: Revision) -> str:
    return ", ".join(i.split("=", 1)[-1].rsplit("/", 1)[-1] for i in revision.images)


def deployment_history(kube: Any, namespace: str, name: str) -> HistorySection:
    _, revisions = read_history(kube, namespace, name)
    return HistorySection(
        f"Rollout history of deployment {namespace}/{name}",
        tuple(
            f"{rev.number}{' (current)' if rev.current else ''} {short_images(rev)} — "
            f"{redact(rev.change_cause) if rev.change_cause else 'no cause'}"
            for rev in revisions
        ),
    )


def _argo_revisions(
    kube: Any, namespace: str, name: str
) -> tuple[RolloutStatus, list[RolloutRevision]]:
    rollout = read_rollout(kube, namespace, name)
    revisions = argo_history(rollout, replica_sets_of(kube, namespace, rollout))
    return read_status(rollout, revisions), revisions


def argo_rollout_history(kube: Any, namespace: str, name: str) -> HistorySection:
    status, revisions = _argo_revisions(kube, namespace, name)
    return HistorySection(
        f"Argo Rollout {namespace}/{name}: {status.describe()}",
        tuple(
            f"{rev.number}{' (stable)' if rev.stable else ''}{' (canary)' if rev.canary else ''} "
            + ", ".join(i.split("=", 1)[-1].rsplit("/", 1)[-1] for i in rev.images)
            + f" — {rev.ready}/{rev.replicas} ready"
            for rev in revisions
        ),
    )


def history_sections(
    kube: Any, config: RollbotConfig, namespace: str, service: str
) -> list[HistorySection]:
    """The history of `service` (a catalog name, or a Deployment's), one section per thing."""
    config.check_namespace_allowed(namespace)
    entry = config.services.get(service)
    strategy = resolve(config, service)
    if strategy == "helm":
        release = (entry.release if entry else None) or service
        return [
            HistorySection(
                f"Helm release {release} in {namespace} (newest last)",
                tuple(
                    f"{rev.number} {rev.status} {rev.chart}"
                    + (f" (app {rev.app_version})" if rev.app_version else "")
                    + f" — {redact(rev.description) if rev.description else 'no description'}"
                    for rev in read_release_history(kube, namespace, release)
                ),
            )
        ]
    if strategy == "argo-rollouts":
        rollout = (entry.rollout if entry else None) or service
        return [argo_rollout_history(kube, namespace, rollout)]
    if strategy == "blue-green":
        settings = (entry.blue_green if entry else None) or BlueGreen()
        name = settings.service or service
        selector = kube.get_service(namespace, name).get("spec", {}).get("selector") or {}
        live = selector.get(settings.label, "?")
        return [
            HistorySection(f"Blue-green service {namespace}/{name}: live colour {live}"),
            *(
                deployment_history(kube, namespace, deployment)
                for deployment in colours_of(settings, service).values()
            ),
        ]
    if entry is not None and entry.deployments:
        return [deployment_history(kube, namespace, name) for name in entry.deployments]
    name = (entry.deployment if entry else None) or service
    return [deployment_history(kube, namespace, name)]


def history_lines(kube: Any, config: RollbotConfig, namespace: str, service: str) -> list[str]:
    """The history as plain lines: each section's title, then its entries."""
    return [
        line
        for section in history_sections(kube, config, namespace, service)
        for line in section.lines()
    ]


# -- the same history, as choices --------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A revision a rollback may go to: its number, what it runs, and since when."""

    revision: int
    #: Short images ("app:v1, sidecar:2"), or a Helm revision's chart.
    what: str
    created: datetime | None


@dataclass(frozen=True)
class Targets:
    """What `service` may be rolled back to, newest first, the current one left out.

    `default` is the revision rollbot picks with no `--to-revision` (None when it
    has none to pick); `fixed` says why no revision can be chosen (blue-green goes
    to the other colour, several Deployments each to their previous revision)."""

    choices: tuple[Target, ...] = ()
    default: int | None = None
    fixed: str = ""


def _when(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def rollback_targets(kube: Any, config: RollbotConfig, namespace: str, service: str) -> Targets:
    """The revisions `service` (a catalog name, or a Deployment's) may be rolled back
    to, read the way its strategy reads them."""
    config.check_namespace_allowed(namespace)
    entry = config.services.get(service)
    strategy = resolve(config, service)
    if strategy == "blue-green":
        return Targets(fixed="the other colour")
    if strategy == "components":
        return Targets(fixed="each Deployment's previous revision")
    if strategy == "argo-rollouts":
        status, rollout_revisions = _argo_revisions(
            kube, namespace, (entry.rollout if entry else None) or service
        )
        stable = next((r.number for r in rollout_revisions if r.stable), None)
        try:
            previous: int | None = undo_target(rollout_revisions, 0).number
        except UndoProblem:
            previous = None
        return Targets(
            tuple(
                Target(r.number, ", ".join(r.images), _when(r.created))
                for r in reversed(rollout_revisions)
                if r.pod_hash != status.current_hash
            ),
            stable if status.updating else previous,
        )
    if strategy == "helm":
        release = (entry.release if entry else None) or service
        history = read_release_history(kube, namespace, release)
        current = history[-1].number if history else None
        try:
            default: int | None = choose_helm_target(history, namespace, release).number
        except PermanentError:
            default = None
        return Targets(
            tuple(
                Target(rev.number, rev.chart, _when(rev.updated))
                for rev in reversed(history)
                if rev.number != current and rev.status != "failed" and not rev.pending
            ),
            default,
        )
    name = (entry.deployment if entry else None) or service
    _, revisions = read_history(kube, namespace, name)
    try:
        default = choose_target(name, revisions, 0).number
    except PermanentError:
        default = None
    return Targets(
        tuple(
            Target(rev.number, short_images(rev), _when(rev.created))
            for rev in reversed(revisions)
            if not rev.current
        ),
        default,
    )
