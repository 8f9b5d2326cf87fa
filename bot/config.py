"""rollbot's configuration: one YAML file, validated at start with clear errors.

With no file at all rollbot still works for any Deployment in any namespace its
credentials reach; the file narrows that down and enriches it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from bot.checks import HttpCheck, VersionCheck
from bot.errors import InvalidInput, NamespaceNotAllowed
from bot.migrations import Migrations
from bot.names import check_namespace
from bot.notify.settings import NotifySettings
from bot.signals import AutoRollbackTriggers, ErrorRate, Thresholds


class ConfigError(InvalidInput):
    code = "config_error"


def _namespace_name(value: str) -> str:
    try:
        return check_namespace(value)
    except InvalidInput as err:
        raise ValueError(str(err)) from err


NamespaceName = Annotated[str, AfterValidator(_namespace_name)]


GitOpsPolicy = Literal["hold", "require", "forbid"]


class ApprovalPolicy(BaseModel):
    """Who may ask, who may approve, and how many approvals a rollback needs."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    #: Slack user IDs who may ask for a rollback; empty means anyone in the channel.
    requesters: list[str] = Field(default_factory=list)
    #: Slack user IDs who may approve; empty means anyone but (see below) the requester.
    approvers: list[str] = Field(default_factory=list)
    allow_self_approval: bool = False
    #: Distinct approvers needed before the rollback runs.
    approvals: int = Field(default=1, ge=1, le=5)
    #: Whether `--emergency` runs the rollback without waiting for approval.
    emergency_skips_approval: bool = False
    #: Whether `--emergency` also skips the DBAs' approval of a rollback across an
    #: incompatible migration (it does not, unless this says so).
    emergency_skips_schema_approval: bool = False
    #: Whether an automatic rollback runs at once instead of waiting for approval.
    auto_execute: bool = False
    #: Whether a rollback here must say why (`--reason`, or the form's reason); a dry
    #: run, which changes nothing, need not.
    reason_required: bool = False
    #: Whether Approve asks "Roll back SERVICE in ENV to revision N?" before it counts,
    #: so that a stray tap on a phone does nothing.
    protected: bool = False
    #: A workload Flux or Argo CD reconciles from Git: `hold` its reconciliation as a
    #: step of the rollback (an owner that does not exist is only said), `require`
    #: that it be held (refused if it cannot be), or `forbid` rollbot to touch it
    #: (refused: roll back in Git). README "In a GitOps cluster".
    gitops: GitOpsPolicy = "hold"


class Environment(ApprovalPolicy):
    #: The namespaces this environment is made of.
    namespaces: list[NamespaceName] = Field(min_length=1)
    #: Whether rollback drills may run here (staging): never anywhere else.
    drills: bool = False


class BlueGreen(BaseModel):
    """A blue-green service: one Service whose selector picks the live colour."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    #: The Service whose selector switches (default: the service's own name).
    service: str | None = None
    #: The selector label that names the colour.
    label: str = "color"
    #: Colour → its Deployment (default: SERVICE-blue and SERVICE-green).
    colours: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _two_colours(self) -> BlueGreen:
        if self.colours and len(self.colours) != 2:
            raise ValueError(
                f"blue_green.colours needs exactly two colours, not {len(self.colours)}"
            )
        return self


Strategy = Literal["undo", "helm", "blue-green", "argo-rollouts"]


def _crontab(value: str) -> str:
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(value)
    except ValueError as err:
        raise ValueError(f"schedule {value!r} is not a crontab line (5 fields): {err}") from None
    return value


class Drill(BaseModel):
    """A rollback drill: back one revision and forward again, in an environment
    marked for drills, on demand (`/rollback drill SERVICE`) and on a schedule."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    #: Where the drill runs (default: the service's namespace); its environment
    #: must say `drills: true`.
    namespace: NamespaceName | None = None
    #: When it runs by itself, as a crontab line in UTC ("0 10 1 * *": monthly).
    schedule: Annotated[str, AfterValidator(_crontab)] | None = None
    #: The channel the drill and its communication simulation are posted to.
    channel: str = Field(min_length=1)
    #: Whether the drill waits for an approval like a real rollback.
    approval: bool = True


class GitSettings(BaseModel):
    """Where a service's manifests live in Git, for rollbot to commit a rollback
    there (README "In a GitOps cluster": make Git match)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    #: The repository, cloned with the `git` binary: https:// (http:// only without
    #: a token, which would travel in clear, or on this machine).
    repository: str = Field(pattern=r"^https?://[^\s@]+$")
    #: The branch Flux or Argo CD follows.
    branch: str = "main"
    #: The file or folder (in the repository) whose manifests set the image.
    path: str = Field(min_length=1)
    #: Where to push: the followed branch itself (empty), or a branch of its own for a
    #: review, `{id}` being the rollback's ("rollbot/{id}").
    push_branch: str = ""
    #: The token (HTTPS basic auth, as GitHub/GitLab take it): an environment variable
    #: or a file, e.g. a mounted Secret. Never logged, posted or recorded.
    token_env: str | None = None
    token_file: Path | None = None
    author: str = "rollbot <rollbot@users.noreply.local>"

    @model_validator(mode="after")
    def _no_token_in_clear(self) -> GitSettings:
        host = urlsplit(self.repository).hostname or ""
        loopback = host in ("localhost", "127.0.0.1", "::1")
        if (
            self.repository.startswith("http://")
            and not loopback
            and (self.token_env or self.token_file)
        ):
            raise ValueError("git: a token goes over https:// only (or to this machine)")
        return self


class ServiceEntry(BaseModel):
    """A service in the catalog: where it runs and how to tell it is healthy."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    #: The namespace `/rollback SERVICE` means for this service (default: default_namespace).
    namespace: NamespaceName | None = None
    #: The Deployment to roll back (default: the service's own name).
    deployment: str | None = None
    #: Several Deployments rolled back together as one (backend, worker, beat, frontend).
    deployments: list[str] = Field(default_factory=list)
    #: How this service rolls back: a Deployment undo, a Helm release, or blue-green.
    strategy: Strategy = "undo"
    #: With strategy helm: the release (default: the service's own name).
    release: str | None = None
    #: With strategy blue-green: the Service and its colours.
    blue_green: BlueGreen | None = None
    #: With strategy argo-rollouts: the Argo Rollout (default: the service's own name).
    rollout: str | None = None
    #: With strategy argo-rollouts: after aborting an update, also undo the spec to the
    #: stable revision, so the Rollout does not try the aborted version again.
    abort_permanently: bool = False
    #: The pod label that `--divert` flips to take pods out of the Service.
    traffic_label: str = "serving"
    health_checks: list[HttpCheck] = Field(default_factory=list)
    smoke_tests: list[HttpCheck] = Field(default_factory=list)
    #: After a rollout, how many times to try the checks, and how far apart.
    verify_attempts: int = Field(default=5, ge=1, le=30)
    verify_interval_seconds: float = Field(default=10, ge=0)
    #: After a rollback: a URL whose JSON must report the target's version.
    version_check: VersionCheck | None = None
    #: The error rate: a log pattern over recent logs, or a Prometheus query.
    error_rate: ErrorRate | None = None
    #: The decision matrix's numbers.
    thresholds: Thresholds = Field(default_factory=Thresholds)
    #: Watch this service and open a rollback on its own when a new revision fails.
    auto_rollback: bool = False
    #: What counts as failing, for auto_rollback.
    auto_rollback_on: AutoRollbackTriggers = Field(default_factory=AutoRollbackTriggers)
    #: Where automatic rollbacks of this service are posted (default: auto_rollback_channel).
    channel: str | None = None
    #: Rollback drills of this service.
    drill: Drill | None = None
    #: Commit a rollback of this GitOps-managed service to Git, so that resuming
    #: reconciliation keeps the good version.
    git: GitSettings | None = None
    #: Its database migrations: where a revision's schema version is, whether older
    #: code runs on a newer schema, who approves a rollback across one, and the
    #: backup, downgrade and check Jobs (README "Database migrations").
    migrations: Migrations | None = None

    @model_validator(mode="after")
    def _one_way_to_name_workloads(self) -> ServiceEntry:
        if self.deployment and self.deployments:
            raise ValueError("give deployment (one) or deployments (several), not both")
        if self.strategy == "blue-green" and self.deployments:
            raise ValueError("a blue-green service names its Deployments in blue_green.colours")
        return self

    @model_validator(mode="after")
    def _migrations_where_they_can_be_read(self) -> ServiceEntry:
        if self.migrations is None:
            return self
        if self.migrations.version_from.helm_hook and self.strategy != "helm":
            raise ValueError(
                "migrations.version_from.helm_hook reads a Helm release: it needs strategy: helm"
            )
        named = self.migrations.deployment
        if named and self.deployments and named not in self.deployments:
            raise ValueError(
                f"migrations.deployment {named!r} is not one of deployments "
                f"({', '.join(self.deployments)})"
            )
        return self


class RollbotConfig(ApprovalPolicy):
    """The file's top level; its approval fields are the policy outside any environment."""

    #: Namespaces rollbot may touch besides the environments'; all empty means any namespace.
    namespaces: list[NamespaceName] = Field(default_factory=list)
    #: Named environments (prod, staging…), each with its namespaces and its own policy.
    environments: dict[str, Environment] = Field(default_factory=dict)
    #: The service catalog: name → namespace, Deployment, checks.
    services: dict[str, ServiceEntry] = Field(default_factory=dict)
    #: How long a rollout may take before rollbot calls it failed.
    rollout_timeout_seconds: float = Field(default=300, gt=0)
    #: The namespace `/rollback SERVICE` means when no `-n` is given.
    default_namespace: NamespaceName = "default"
    #: A channel (ID) that also gets every finished rollback's summary.
    incidents_channel: str | None = None
    #: A folder of your own templates; any file there replaces the built-in one.
    templates_dir: Path | None = None
    #: Where automatic rollbacks are posted when the service names no channel.
    auto_rollback_channel: str | None = None
    #: How often the worker looks for opted-in Deployments whose new revision failed.
    auto_rollback_interval_seconds: float = Field(default=15, gt=0)
    #: After a successful rollback, re-check the service at these minutes (empty: never).
    follow_up_minutes: list[float] = Field(default_factory=lambda: [5.0, 15.0, 30.0])
    #: How long a confirmation waits for a click before it expires.
    confirmation_ttl_seconds: float = Field(default=900, gt=0)
    #: A worker that stops renewing its lease (it died) for this long has its job
    #: handed to another; a live worker renews it every third of this.
    worker_lease_seconds: float = Field(default=15, ge=1, le=300)
    #: A message Slack has not taken for this long makes the workers' readiness fail.
    outbox_stale_seconds: float = Field(default=60, gt=0)
    #: Finished rollback records (and their backups) are kept this long, for the
    #: history, `--restore` and the stats; older ones are deleted by the workers.
    record_retention_days: float = Field(default=400, gt=0)
    #: Join a public channel where /rollback was typed before asking there (Slack
    #: scope channels:join). Off: rollbot stays where people invite it, and says so.
    join_public_channels: bool = False
    #: Where Argo CD's Applications live (an app named by its bare name).
    argocd_namespace: NamespaceName = "argocd"
    #: While a rollback holds a GitOps owner's reconciliation, remind its thread this
    #: often after the follow-ups (rollbot never resumes on its own).
    hold_reminder_minutes: float = Field(default=60, gt=0)
    #: Where each rollback's start and end are told: PagerDuty change events,
    #: webhooks, a status page (README "Telling the world").
    notify: NotifySettings = Field(default_factory=NotifySettings)

    @model_validator(mode="after")
    def _one_environment_per_namespace(self) -> RollbotConfig:
        seen: dict[str, str] = {}
        for name, env in self.environments.items():
            for namespace in env.namespaces:
                if namespace in seen:
                    raise ValueError(
                        f"namespace {namespace!r} is in two environments: "
                        f"{seen[namespace]} and {name}"
                    )
                seen[namespace] = name
        return self

    @model_validator(mode="after")
    def _drills_only_where_marked(self) -> RollbotConfig:
        for name, entry in self.services.items():
            if entry.drill is None:
                continue
            namespace = entry.drill.namespace or entry.namespace or self.default_namespace
            environment = self.environment_of(namespace)
            if environment is None or not self.environments[environment].drills:
                raise ValueError(
                    f"services.{name}.drill: namespace {namespace!r} is not in an environment "
                    "marked for drills (drills: true): drills never run anywhere else"
                )
            if entry.strategy != "undo" or entry.deployments:
                raise ValueError(
                    f"services.{name}.drill: drills roll one Deployment back and forward "
                    "with undo; this service rolls back another way"
                )
        return self

    @model_validator(mode="after")
    def _status_page_environments_exist(self) -> RollbotConfig:
        page = self.notify.statuspage
        unknown = [e for e in page.environments if e not in self.environments] if page else []
        if unknown:
            known = ", ".join(self.environments) or "none"
            raise ValueError(
                f"notify.statuspage.environments names {', '.join(unknown)}, "
                f"not in environments (known: {known})"
            )
        return self

    @property
    def allowed_namespaces(self) -> list[str]:
        listed = list(self.namespaces)
        for env in self.environments.values():
            listed += [n for n in env.namespaces if n not in listed]
        return listed

    def environment_of(self, namespace: str) -> str | None:
        return next(
            (name for name, env in self.environments.items() if namespace in env.namespaces), None
        )

    def policy_for(self, namespace: str) -> ApprovalPolicy:
        environment = self.environment_of(namespace)
        return self.environments[environment] if environment else self

    @property
    def catalog(self) -> dict[str, tuple[str | None, str | None]]:
        """Service name → (namespace, Deployment), as the command parser reads it."""
        return {name: (e.namespace, e.deployment) for name, e in self.services.items()}

    def service_for(self, namespace: str, deployment: str) -> ServiceEntry | None:
        """The catalog entry of a Deployment, if it has one."""
        for name, entry in self.services.items():
            if (entry.deployment or name) == deployment and (
                entry.namespace or self.default_namespace
            ) == namespace:
                return entry
        return None

    def check_namespace_allowed(self, namespace: str) -> None:
        check_namespace(namespace)
        allowed = self.allowed_namespaces
        if allowed and namespace not in allowed:
            raise NamespaceNotAllowed(namespace, allowed)


def _describe(err: ValidationError) -> str:
    lines = []
    for problem in err.errors():
        where = ".".join(str(p) for p in problem["loc"]) or "(top level)"
        lines.append(f"  {where}: {problem['msg']}")
    return "\n".join(lines)


def load_config(path: str | os.PathLike[str] | None = None) -> RollbotConfig:
    """The config at `path`, or `$ROLLBOT_CONFIG`, or the defaults when neither is set."""
    chosen = path if path is not None else os.environ.get("ROLLBOT_CONFIG")
    if not chosen:
        # The defaults, valid by construction: no model schema is built for them, so
        # `rollbot rollback --yes` without a file does not pay for one (defer_build).
        return RollbotConfig.model_construct()
    file = Path(chosen)
    try:
        text = file.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read config file {file}: {err.strerror or err}") from err
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {file} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"config file {file} must hold a mapping at the top level")
    try:
        return RollbotConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"config file {file} is invalid:\n{_describe(err)}") from err
