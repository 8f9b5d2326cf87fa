"""What a service can be rolled back to, as `/rollback history SERVICE` and
`rollbot history SERVICE` show it: the way its strategy sees it (a Helm
release's revisions, each Deployment's rollout history, the live colour)."""

from __future__ import annotations

from typing import Any

from bot.config import BlueGreen, RollbotConfig
from bot.deployments import Revision
from bot.engine import read_history
from bot.helm_releases import read_release_history
from bot.strategies import resolve
from bot.strategies.bluegreen import colours_of


def short_images(revision: Revision) -> str:
    return ", ".join(i.split("=", 1)[-1].rsplit("/", 1)[-1] for i in revision.images)


def deployment_lines(kube: Any, namespace: str, name: str) -> list[str]:
    _, revisions = read_history(kube, namespace, name)
    lines = [f"*Rollout history of deployment {namespace}/{name}*"]
    for rev in revisions:
        mark = " (current)" if rev.current else ""
        lines.append(
            f"• {rev.number}{mark} `{short_images(rev)}` — {rev.change_cause or 'no cause'}"
        )
    return lines


def history_lines(kube: Any, config: RollbotConfig, namespace: str, service: str) -> list[str]:
    """The history of `service` (a catalog name, or a Deployment's) as lines to show."""
    config.check_namespace_allowed(namespace)
    entry = config.services.get(service)
    strategy = resolve(config, service)
    if strategy == "helm":
        release = (entry.release if entry else None) or service
        lines = [f"*Helm release {release} in {namespace}* (newest last)"]
        for rev in read_release_history(kube, namespace, release):
            app = f" (app {rev.app_version})" if rev.app_version else ""
            lines.append(
                f"• {rev.number} {rev.status} {rev.chart}{app} — "
                f"{rev.description or 'no description'}"
            )
        return lines
    if strategy == "blue-green":
        settings = (entry.blue_green if entry else None) or BlueGreen()
        name = settings.service or service
        selector = kube.get_service(namespace, name).get("spec", {}).get("selector") or {}
        live = selector.get(settings.label, "?")
        lines = [f"*Blue-green service {namespace}/{name}*: live colour {live}"]
        for deployment in colours_of(settings, service).values():
            lines += deployment_lines(kube, namespace, deployment)
        return lines
    if entry is not None and entry.deployments:
        return [
            line for name in entry.deployments for line in deployment_lines(kube, namespace, name)
        ]
    return deployment_lines(kube, namespace, (entry.deployment if entry else None) or service)
