"""The schema versions of the revision a rollback leaves and the one it goes to,
read from the cluster the way the plan pinned them: a Deployment's template and
its target ReplicaSet's (undo, several Deployments), the two colours' templates
(blue-green), or two revisions of a Helm release (their Deployments' templates,
or their migration hook Job's image).
Strategies that do not change which code runs (a flag, a scale, a restore)
cross no migration."""

from __future__ import annotations

from bot.bodies import Body
from bot.config import RollbotConfig
from bot.engine import TAG_PIN, read_history
from bot.helm_history import HelmRevision, SecretSource, read_release_history
from bot.migrations import (
    Migrations,
    SchemaCrossing,
    first_image,
    hook_image,
    version_in_template,
    version_of_image,
)
from bot.strategies.base import Plan, StrategyKube


def crossing_of_service(
    kube: StrategyKube, config: RollbotConfig, namespace: str, service: str, plan: Plan
) -> SchemaCrossing | None:
    """The crossing of a service that declares its migrations (by its catalog name,
    else by its Deployment); None for one that does not."""
    entry = config.services.get(service) or config.service_for(namespace, service)
    if entry is None or entry.migrations is None:
        return None
    return read_crossing(kube, entry.migrations, plan)


def read_crossing(kube: StrategyKube, settings: Migrations, plan: Plan) -> SchemaCrossing | None:
    """The crossing `plan` makes, or None when it changes no code revision."""
    if plan.strategy == "helm":
        return _helm_crossing(kube, settings, plan)
    if plan.strategy == "blue-green":
        live, other = plan.pins["from_deployment"], plan.pins["deployment"]
        return _crossing(
            settings,
            f"{live} ({plan.pins['from']})",
            f"{other} ({plan.pins['to']})",
            kube.get_deployment(plan.namespace, live)["spec"]["template"],
            kube.get_deployment(plan.namespace, other)["spec"]["template"],
        )
    if plan.strategy not in ("undo", "components"):
        return None
    name = settings.deployment or (plan.workloads[0] if plan.workloads else "")
    pin = plan.pins.get(name)
    if pin is None:
        return None
    deployment, history = read_history(kube, plan.namespace, name)
    current_template: Body = deployment["spec"]["template"]
    current = next((r for r in history if r.current), None)
    if pin.startswith(TAG_PIN):
        # An image tag: the same template with another image; what it declares stays.
        target_template, target_label = (
            current_template,
            f"image tag {pin.removeprefix(TAG_PIN).partition('|')[0]}",
        )
    else:
        target = next((r for r in history if r.replica_set == pin), None)
        if target is None:
            return None
        target_template, target_label = target.template, f"revision {target.number}"
    return _crossing(
        settings,
        f"revision {current.number}" if current else "the current revision",
        target_label,
        current_template,
        target_template,
    )


def _crossing(
    settings: Migrations,
    current_label: str,
    target_label: str,
    current: Body,
    target: Body,
) -> SchemaCrossing:
    source = settings.version_from
    return SchemaCrossing(
        current_label=current_label,
        target_label=target_label,
        current=version_in_template(current, source),
        target=version_in_template(target, source),
        source=source.describe(),
        compatible=settings.compatible,
        approvers=tuple(settings.approvers),
        downgrade=settings.downgrade is not None,
        check=settings.check is not None,
        order=settings.order,
        current_image=first_image(current),
        target_image=first_image(target),
    )


def _helm_crossing(kube: SecretSource, settings: Migrations, plan: Plan) -> SchemaCrossing | None:
    release, current_n, target_n = (plan.pins.get(k) for k in ("release", "current", "target"))
    if not (release and current_n and target_n):
        return None
    history = {r.number: r for r in read_release_history(kube, plan.namespace, release)}
    current, target = history.get(int(current_n)), history.get(int(target_n))
    if current is None or target is None:
        return None
    labels = f"helm revision {current.number}", f"helm revision {target.number}"
    hook = settings.version_from.helm_hook
    if hook is None:
        return _crossing(
            settings, *labels, _template(current, settings), _template(target, settings)
        )
    current_image, target_image = (
        hook_image(list(current.hooks), hook),
        hook_image(list(target.hooks), hook),
    )
    return SchemaCrossing(
        current_label=labels[0],
        target_label=labels[1],
        current=version_of_image(current_image),
        target=version_of_image(target_image),
        source=settings.version_from.describe(),
        compatible=settings.compatible,
        approvers=tuple(settings.approvers),
        downgrade=settings.downgrade is not None,
        check=settings.check is not None,
        order=settings.order,
        current_image=current_image or "",
        target_image=target_image or "",
    )


def _template(revision: HelmRevision, settings: Migrations) -> Body:
    """The pod template of the release's Deployment that carries the version."""
    for deployment in revision.deployments:
        if settings.deployment in (None, deployment.name):
            return deployment.template
    return {}
