"""What a service can be rolled back to, as `/rollback history SERVICE` and
`rollbot history SERVICE` show it: the way its strategy sees it (a Helm
release's revisions, each Deployment's rollout history, the live colour).

The history is data (`HistorySection`: a title and its entries, plain text),
so each surface decorates it its own way; `history_lines` is the plain
rendering. Change causes and Helm descriptions are written by whoever deployed:
they are redacted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.config import BlueGreen, RollbotConfig
from bot.deployments import Revision
from bot.engine import read_history
from bot.helm_history import read_release_history
from bot.redaction import redact
from bot.strategies import resolve
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
