"""What every rollback strategy shares: a request, a plan a person approves, and
the progress it reports while it changes the cluster.

A strategy is two functions. `plan` reads the cluster and says what would
change, pinning everything execution needs in `Plan.pins` (plain strings, so
the record can keep them); `apply` changes the cluster to exactly that, waits
until the workloads have rolled out, and must be safe to call again after a
worker died half-way (it looks before it writes).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from bot.assessment import AssessmentSummary
from bot.bodies import Body
from bot.config import RollbotConfig, ServiceEntry
from bot.engine import KubeApi
from bot.engine import change_cause as change_cause  # the one builder: CLI and worker
from bot.errors import Forbidden, InvalidInput, PermanentError
from bot.rollout import RolloutState


class StrategyKube(KubeApi, Protocol):
    """Every cluster call a strategy makes (`bot.kube.Kube` in production): the
    engine's, plus Services, Endpoints, ConfigMaps, pods, autoscalers and the
    Helm release Secrets."""

    def list_pods(self, namespace: str, label_selector: str) -> list[Body]: ...

    def merge_patch_pod(self, namespace: str, name: str, patch: Body) -> Body: ...

    def list_services(self, namespace: str) -> list[Body]: ...

    def get_service(self, namespace: str, name: str) -> Body: ...

    def json_patch_service(self, namespace: str, name: str, ops: list[Body]) -> Body: ...

    def get_endpoints(self, namespace: str, name: str) -> Body: ...

    def get_config_map(self, namespace: str, name: str) -> Body: ...

    def json_patch_config_map(self, namespace: str, name: str, ops: list[Body]) -> Body: ...

    def list_autoscalers(self, namespace: str) -> list[Body]: ...

    def list_secrets(self, namespace: str, label_selector: str) -> list[Body]: ...


class Progress(Protocol):
    """Where a strategy reports while it works (the Slack thread, a terminal)."""

    def milestone(self, text: str) -> None: ...

    def rollout(self, workload: str, state: RolloutState) -> None: ...


@dataclass(frozen=True)
class HelmSettings:
    binary: str = "helm"
    kubeconfig: str | None = None
    context: str | None = None


@dataclass(frozen=True)
class Context:
    kube: StrategyKube
    config: RollbotConfig
    timeout: float
    helm: HelmSettings = field(default_factory=HelmSettings)
    #: A backup bundle by the id of the rollback that took it (None: unknown).
    backups: Callable[[str], Body | None] = lambda _id: None


@dataclass(frozen=True)
class Request:
    """What was asked: `/rollback SERVICE [flags]` or `rollbot rollback SERVICE …`."""

    namespace: str
    service: str
    strategy: str = "undo"
    revision: int = 0
    to_tag: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    strategy: str
    namespace: str
    #: What is rolled back, for a headline ("helm release todo-app").
    subject: str
    current: str
    target: str
    changes: tuple[str, ...]
    #: Everything `apply` needs to do what was approved, whatever changed since.
    pins: Mapping[str, str]
    #: The Deployments it touches: backed up before, verified after.
    workloads: tuple[str, ...]
    #: Extra lines for the confirmation (a release history, a warning).
    facts: tuple[str, ...] = ()
    from_images: tuple[str, ...] = ()
    to_images: tuple[str, ...] = ()
    #: Why nothing would change, if nothing would.
    nothing_to_do: str | None = None
    #: Whether health checks and smoke tests should pass afterwards (not after scale to 0).
    verify_checks: bool = True
    #: For a one-Deployment undo, what the record and the report show: the revision it
    #: runs, the one it goes to (0: a template no revision has, an image tag's), and
    #: the target's ReplicaSet ("" for such a template).
    from_revision: int | None = None
    target_revision: int | None = None
    target_replica_set: str | None = None
    #: The assessment of a workload that is not a Deployment (an Argo Rollout's own
    #: signals), made by the strategy; None: its Deployments are assessed.
    assessment: AssessmentSummary | None = None


def record_fields(plan: Plan) -> dict[str, Any]:
    """What a rollback's record keeps of its plan when it is assessed: the worker's
    assessment and a terminal rollback's record alike."""
    return {
        "pins": dict(plan.pins),
        "workloads": plan.workloads,
        "current_label": plan.current,
        "target_label": plan.target,
        "facts": plan.facts,
        "verify_checks": plan.verify_checks,
        "from_images": plan.from_images,
        "to_images": plan.to_images,
        "changes": plan.changes,
        "from_revision": plan.from_revision,
        "target_revision": plan.target_revision,
        "target_replica_set": plan.target_replica_set,
    }


class Strategy(Protocol):
    name: str

    def plan(self, ctx: Context, request: Request) -> Plan: ...

    def apply(
        self, ctx: Context, namespace: str, pins: Mapping[str, str], cause: str, progress: Progress
    ) -> str:
        """Change the cluster and wait for it; a one-line summary of what was done."""
        ...


@runtime_checkable
class OwnWorkload(Protocol):
    """A strategy whose workload is not a Deployment (an Argo Rollout): it says itself
    what the backup before it keeps and how ready its workload is after it."""

    def backup(self, ctx: Context, namespace: str, pins: Mapping[str, str]) -> Body:
        """The bundle the store keeps; its `saved` lists what is in it ("rollout/web")."""
        ...

    def readiness(self, ctx: Context, namespace: str, pins: Mapping[str, str]) -> tuple[int, int]:
        """(available, desired) replicas of the workload now."""
        ...

    def workload(self, ctx: Context, namespace: str, pins: Mapping[str, str]) -> Body:
        """The workload as it is now: its marks say who reconciles it from Git, its
        pod template what runs."""
        ...


def workloads_now(
    ctx: Context,
    strategy: Strategy,
    namespace: str,
    deployments: Sequence[str],
    pins: Mapping[str, str],
) -> list[Body]:
    """What a rollback changes, as it is now, whatever its kind: the strategy's own
    workload (an Argo Rollout), else its Deployments. The GitOps step reads their
    owners from these, and the resume question what runs."""
    if isinstance(strategy, OwnWorkload):
        return [strategy.workload(ctx, namespace, pins)]
    return [ctx.kube.get_deployment(namespace, name) for name in deployments]


class StrategyError(InvalidInput):
    code = "strategy"


def read_or_explain(read: Callable[[], Body], explain: Callable[[PermanentError], str]) -> Body:
    """An object a strategy needs, or a StrategyError saying what its absence means
    (a refusal stays a refusal: Forbidden is not explained away)."""
    try:
        return read()
    except Forbidden:
        raise
    except PermanentError as err:
        raise StrategyError(explain(err)) from err


def entry_of(ctx: Context, request: Request) -> ServiceEntry | None:
    return ctx.config.services.get(request.service)


def workloads_of(ctx: Context, request: Request) -> list[str]:
    """The Deployments a service is made of (its own name without a catalog entry)."""
    entry = entry_of(ctx, request)
    if entry is None:
        return [request.service]
    if entry.deployments:
        return list(entry.deployments)
    return [entry.deployment or request.service]


def option(request: Request, name: str) -> str:
    value = request.options.get(name)
    if value is None:
        raise StrategyError(f"the {request.strategy} strategy needs {name}")
    return value
