"""Database migrations: how the catalog says where a revision's schema version is,
and what a rollback crossing a migration means (the runbooks' "Database
Rollback" sections: todo-app and eli-maor's `alembic downgrade`, jarvis-api's
pre-migration dump, family-assistant's "rollback the app, check the database").

This module is pure: the settings (`Migrations`, read from a service's
`migrations:`), the crossing a rollback makes (`SchemaCrossing`, kept on the
record and worded as plain text) and how it weighs on the decision matrix.
Reading the versions from the cluster is `bot/schema_versions.py`; running the
backup, downgrade and check Jobs is `bot/schema_jobs.py`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bot.bodies import Body

#: The Helm hooks a migration Job runs as (`helm.sh/hook: pre-upgrade`).
HelmHook = Literal["pre-upgrade", "pre-install", "post-upgrade", "post-install"]
Order = Literal["schema-first", "app-first"]


class SchemaVersionFrom(BaseModel):
    """Where a revision says which schema it expects: one of an annotation or a label
    on the pod template, an env var of a container, or the image tag of the Helm
    release's migration hook Job."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    annotation: str | None = None
    label: str | None = None
    env: str | None = None
    #: With env: the container that has it (default: the first that does).
    container: str | None = None
    #: A Helm release's hook Job whose image tag is the schema version.
    helm_hook: HelmHook | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SchemaVersionFrom:
        given = [n for n in ("annotation", "label", "env", "helm_hook") if getattr(self, n)]
        if len(given) != 1:
            raise ValueError(
                "version_from needs exactly one of annotation, label, env or helm_hook"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.container and not self.env:
            raise ValueError("version_from.container goes with env")
        return self

    def describe(self) -> str:
        """Where the version is read, in words."""
        if self.annotation:
            return f"pod template annotation {self.annotation}"
        if self.label:
            return f"pod template label {self.label}"
        if self.env:
            return f"env var {self.env}" + (
                f" of container {self.container}" if self.container else ""
            )
        return f"image of the Helm release's {self.helm_hook} hook Job"


class JobTemplate(BaseModel):
    """A Job rollbot runs (backup, downgrade, check). Every string (image, command,
    args, env values, labels) is a Jinja2 template rendered with the rollback's
    variables: `target_schema`, `current_schema`, `expected_schema` (the target once
    downgraded, else the current one: what a check should find), `backup_location`,
    `record_id`, `service`, `namespace`, `current_image`, `target_image`,
    `from_revision`, `target_revision`."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    image: str = Field(min_length=1)
    command: list[str] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)
    #: Container env vars as Kubernetes writes them; `value`s are rendered, a
    #: `valueFrom` (a Secret's key) is passed as it is.
    env: list[dict[str, Any]] = Field(default_factory=list)
    service_account: str | None = None
    #: Extra labels and annotations of the Job's pod.
    pod_labels: dict[str, str] = Field(default_factory=dict)
    pod_annotations: dict[str, str] = Field(default_factory=dict)
    #: Volumes of the pod and their mounts in the container (a dump's PVC).
    volumes: list[dict[str, Any]] = Field(default_factory=list)
    volume_mounts: list[dict[str, Any]] = Field(default_factory=list)
    #: How long the Job may run before rollbot calls it failed.
    timeout_seconds: float = Field(default=600, gt=0)


class Migrations(BaseModel):
    """A service's `migrations:`: how to see, gate and do a schema rollback."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    version_from: SchemaVersionFrom
    #: Whether the older code is known to run on the newer schema (an expand-only,
    #: backward-compatible migration): then only a note, and no schema step.
    compatible: bool = False
    #: Who must approve a rollback crossing an incompatible migration, besides the
    #: usual approvers: Slack user or user-group (S…) IDs, the DBAs.
    approvers: list[str] = Field(default_factory=list)
    #: The Deployment whose template carries the version (default: the first one).
    deployment: str | None = None
    #: Whether the schema is rolled back before the app (the runbooks' way: the
    #: app is untouched if it fails) or after it.
    order: Order = "schema-first"
    #: The backup Job run before any downgrade (`pg_dump` to a volume or bucket).
    backup: JobTemplate | None = None
    #: Where the backup goes, recorded on the rollback; a template
    #: (`s3://bucket/{{ record_id }}.sql.gz`), given to the Jobs as `backup_location`.
    backup_location: str | None = None
    #: The schema rollback (`alembic downgrade {{ target_schema }}`).
    downgrade: JobTemplate | None = None
    #: After the rollback: a Job (a query) that succeeds only when app and schema agree.
    check: JobTemplate | None = None

    @model_validator(mode="after")
    def _gated_and_backed_up(self) -> Migrations:
        if not self.compatible and not self.approvers:
            raise ValueError(
                "an incompatible migration (compatible: false) needs approvers: "
                "the DBAs who must approve a rollback across it"
            )
        if self.downgrade is not None and self.backup is None:
            raise ValueError("a downgrade Job needs a backup Job before it (backup:)")
        if self.backup is not None and not self.backup_location:
            raise ValueError("a backup Job needs backup_location: where the backup goes")
        return self


class SchemaCrossing(BaseModel):
    """What a rollback does to the schema, as assessed: the two revisions' schema
    versions and how the app is declared to behave. Kept on the record."""

    model_config = ConfigDict(frozen=True)

    #: "revision 42", "helm revision 7": the revisions as the plan names them.
    current_label: str
    target_label: str
    current: str | None
    target: str | None
    #: Where the versions were read, in words.
    source: str
    compatible: bool
    #: The approvers the crossing needs (pinned at assessment, for the confirmation).
    approvers: tuple[str, ...] = ()
    #: Whether the catalog has a downgrade step, and its order.
    downgrade: bool = False
    order: Order = "schema-first"
    #: Whether the catalog has a database check (None: assessed before this was kept).
    check: bool | None = None
    #: The images the two revisions run (a migration hook's, else the app's).
    current_image: str = ""
    target_image: str = ""

    @property
    def known(self) -> bool:
        return self.current is not None and self.target is not None

    @property
    def crossed(self) -> bool:
        """A migration lies between the two revisions (as far as anyone can tell)."""
        return not self.known or self.current != self.target

    @property
    def gated(self) -> bool:
        """Needs the DBAs' approval and never runs by itself: a crossing (or one that
        cannot be ruled out) of a migration the older code cannot live with."""
        return self.crossed and not self.compatible

    @property
    def runs_downgrade(self) -> bool:
        """Whether rollbot rolls the schema back as a step of this rollback."""
        return self.gated and self.known and self.downgrade

    def lines(self) -> list[str]:
        """The crossing as plain text, for the assessment."""
        if not self.known:
            missing = [
                label
                for label, value in (
                    (self.current_label, self.current),
                    (self.target_label, self.target),
                )
                if value is None
            ]
            first = (
                f"Schema: no schema version for {' and '.join(missing)} ({self.source}): "
                "cannot tell whether a migration is crossed."
            )
        elif not self.crossed:
            return [
                f"Schema: {self.current_label} and {self.target_label} both expect "
                f"{self.current}: no migration crossed."
            ]
        else:
            first = (
                f"Schema: {self.current_label} ran migration {self.current}; "
                f"{self.target_label} expects {self.target}."
            )
        if self.compatible:
            return [
                first,
                "Declared backward compatible: the older code runs on the newer schema, "
                "which is left as it is.",
            ]
        who = ", ".join(self.approvers)
        lines = [
            first,
            "Not backward compatible: the older code cannot run on the newer schema. "
            f"Needs a DBA's approval ({who}) besides the usual one; never automatic.",
        ]
        if self.runs_downgrade:
            when = "before" if self.order == "schema-first" else "after"
            lines.append(
                f"Schema step: a backup Job, then a downgrade Job to {self.target}, "
                f"{when} the app rollback."
            )
        elif self.known:
            lines.append(
                f"No schema step configured: roll the schema back to {self.target} by hand "
                "(and back it up first), or fix forward."
            )
        return lines

    def advice(self) -> str:
        """What the recommendation adds for a gated crossing."""
        if self.runs_downgrade:
            return (
                f"the rollback crosses an incompatible migration ({self.current} → "
                f"{self.target}): a DBA approves, rollbot backs the database up and "
                "downgrades the schema " + ("first" if self.order == "schema-first" else "after")
            )
        if not self.known:
            return (
                "the rollback may cross an incompatible migration (schema version unknown): "
                "check with a DBA before approving"
            )
        return (
            f"the rollback crosses an incompatible migration ({self.current} → {self.target}): "
            "roll the schema back first with a DBA (backup, then downgrade), or fix forward"
        )


#: Worst first, as `bot.assessment.SEVERITY_ORDER`.
_ORDER = ("critical", "high", "medium", "low")


def weigh(severity: str, recommendation: str, crossing: SchemaCrossing | None) -> tuple[str, str]:
    """The decision matrix's answer with the schema in it: a rollback across an
    incompatible migration is HIGH RISK (todo-app's words) — at least high, and the
    recommendation says what to do about the schema. A compatible one changes nothing."""
    if crossing is None or not crossing.gated:
        return severity, recommendation
    rank = _ORDER.index(severity) if severity in _ORDER else len(_ORDER)
    raised = severity if rank <= _ORDER.index("high") else "high"
    return raised, f"{recommendation}; {crossing.advice()}"


# -- reading a version from one revision --------------------------------------------------


def _tag_of(image: str) -> str | None:
    last = image.rsplit("/", 1)[-1].split("@", 1)[0]
    return last.partition(":")[2] or None


def version_in_template(template: Body, source: SchemaVersionFrom) -> str | None:
    """The schema version a pod template declares (annotation, label or env var)."""
    meta = template.get("metadata") or {}
    if source.annotation:
        return _text((meta.get("annotations") or {}).get(source.annotation))
    if source.label:
        return _text((meta.get("labels") or {}).get(source.label))
    if source.env:
        for container in (template.get("spec") or {}).get("containers") or []:
            if source.container and container.get("name") != source.container:
                continue
            for var in container.get("env") or []:
                if var.get("name") == source.env and "value" in var:
                    return _text(var.get("value"))
    return None


def hook_jobs(hooks: list[Body], hook: str) -> list[Body]:
    """The Jobs among a Helm release's hooks that run on `hook` (e.g. pre-upgrade)."""
    import yaml

    found = []
    for entry in hooks:
        if hook not in (entry.get("events") or []) or entry.get("kind") != "Job":
            continue
        try:
            manifest = yaml.safe_load(entry.get("manifest") or "")
        except yaml.YAMLError:
            continue
        if isinstance(manifest, dict):
            found.append(manifest)
    return found


def hook_image(hooks: list[Body], hook: str) -> str | None:
    """The image of the first container of the release's `hook` Job."""
    for job in hook_jobs(hooks, hook):
        spec = ((job.get("spec") or {}).get("template") or {}).get("spec") or {}
        containers = spec.get("containers") or []
        if containers and containers[0].get("image"):
            return str(containers[0]["image"])
    return None


def version_of_image(image: str | None) -> str | None:
    """A migration image's tag is the schema version it migrates to."""
    return _tag_of(image) if image else None


def first_image(template: Body) -> str:
    containers = (template.get("spec") or {}).get("containers") or []
    return str(containers[0].get("image", "")) if containers else ""


def _text(value: object) -> str | None:
    if value is None:
        return None
    return str(value).strip() or None
