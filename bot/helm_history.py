"""Helm's release records, read from the cluster without the helm binary.

Helm keeps each revision of a release in a Secret `sh.helm.release.v1.<name>.v<rev>`
(see K8S_SEMANTICS.md, "Helm"): base64 of gzipped JSON holding the chart, the
values and the manifest. This module decodes them into `HelmRevision`s, with
the Deployments each revision's manifest creates; `bot/helm_releases.py`
chooses the revision to roll back to and runs `helm rollback`.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import yaml

from bot.bodies import Body
from bot.errors import PermanentError

SECRET_PREFIX = "sh.helm.release.v1."
#: Revisions a rollback may return to (`helm rollback REL 0` would take a failed one too).
GOOD_STATUSES = frozenset({"deployed", "superseded"})
#: Statuses of an operation that has not finished: helm refuses upgrades over them.
PENDING_STATUSES = frozenset({"pending-install", "pending-upgrade", "pending-rollback"})
_GZIP_MAGIC = b"\x1f\x8b"


def release_secret_name(release: str, revision: int) -> str:
    """The Secret helm keeps `revision` of `release` in."""
    return f"{SECRET_PREFIX}{release}.v{revision}"


class ReleaseNotFound(PermanentError):
    code = "release_not_found"

    def __init__(self, namespace: str, release: str) -> None:
        self.namespace = namespace
        self.release = release
        super().__init__(
            f"Helm release {release!r} not found in namespace {namespace!r} "
            f"(no Secret {SECRET_PREFIX}{release}.v<N> there)"
        )


# -- what a revision is ---------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseDeployment:
    """A Deployment a revision's manifest creates."""

    name: str
    namespace: str
    #: "container=image", containers then initContainers, as `Revision.images`.
    images: tuple[str, ...]
    #: Its pod template (the schema version a revision expects may be on it).
    template: Body = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class HelmRevision:
    """One row of `helm history`, plus the Deployments that revision deploys."""

    number: int
    status: str
    chart: str  # "name-version", as helm history shows it
    app_version: str
    description: str
    updated: str
    deployments: tuple[ReleaseDeployment, ...] = ()
    #: The values given to this revision: only their keys are ever shown (they may be secret).
    values: Body = field(default_factory=dict, repr=False, compare=False)
    #: The release's hooks as helm stores them (name, kind, events, manifest): a
    #: `pre-upgrade` Job among them is the revision's database migration.
    hooks: tuple[Body, ...] = field(default=(), repr=False, compare=False)

    @property
    def pending(self) -> bool:
        return self.status in PENDING_STATUSES

    @property
    def good(self) -> bool:
        """Was this revision ever deployed successfully (a target a rollback may use)?"""
        return self.status in GOOD_STATUSES


class SecretSource(Protocol):
    def list_secrets(self, namespace: str, label_selector: str) -> list[Body]: ...


def decode_release(secret: Body) -> Body:
    """The release JSON in a helm Secret: base64 (the Secret's) of base64 of gzip of JSON."""
    name = secret.get("metadata", {}).get("name", "?")
    try:
        encoded = base64.b64decode(secret["data"]["release"], validate=True)
        payload = base64.b64decode(encoded, validate=True)
        if payload[:2] == _GZIP_MAGIC:  # helm has always gzipped, but reads plain JSON too
            payload = gzip.decompress(payload)
        release = json.loads(payload)
    except (KeyError, TypeError, binascii.Error, OSError, EOFError, ValueError) as err:
        raise PermanentError(f"cannot read the Helm release record {name}: {err}") from err
    if not isinstance(release, dict):
        raise PermanentError(f"cannot read the Helm release record {name}: not a release")
    return release


def _images(pod_spec: Body) -> tuple[str, ...]:
    containers = (pod_spec.get("containers") or []) + (pod_spec.get("initContainers") or [])
    return tuple(f"{c.get('name', '?')}={c.get('image', '?')}" for c in containers)


def _objects(documents: Iterable[Any]) -> Iterable[Body]:
    for doc in documents:
        if not isinstance(doc, dict):
            continue
        if doc.get("kind") == "List":
            yield from (item for item in doc.get("items") or [] if isinstance(item, dict))
        else:
            yield doc


def deployments_in_manifest(manifest: str, namespace: str) -> tuple[ReleaseDeployment, ...]:
    """The Deployments a rendered manifest creates; one without a namespace is in the release's."""
    try:
        documents = list(yaml.safe_load_all(manifest or ""))
    except yaml.YAMLError as err:
        raise PermanentError(f"cannot parse a Helm release manifest: {err}") from err
    found = []
    for obj in _objects(documents):
        if obj.get("kind") != "Deployment":
            continue
        meta = obj.get("metadata") or {}
        template = (obj.get("spec") or {}).get("template") or {}
        found.append(
            ReleaseDeployment(
                name=str(meta.get("name", "")),
                namespace=str(meta.get("namespace") or namespace),
                images=_images(template.get("spec") or {}),
                template=template,
            )
        )
    return tuple(found)


def revision_from_release(release: Body) -> HelmRevision:
    """A HelmRevision from the release JSON helm stores (see `decode_release`)."""
    info = release.get("info") or {}
    metadata = (release.get("chart") or {}).get("metadata") or {}
    chart = f"{metadata['name']}-{metadata.get('version', '')}" if metadata.get("name") else ""
    return HelmRevision(
        number=int(release.get("version") or 0),
        status=str(info.get("status") or "unknown"),
        chart=chart,
        app_version=str(metadata.get("appVersion") or ""),
        description=str(info.get("description") or ""),
        updated=str(info.get("last_deployed") or ""),
        deployments=deployments_in_manifest(
            str(release.get("manifest") or ""), str(release.get("namespace") or "")
        ),
        values=dict(release.get("config") or {}),
        hooks=tuple(h for h in release.get("hooks") or [] if isinstance(h, dict)),
    )


def read_release_history(source: SecretSource, namespace: str, release: str) -> list[HelmRevision]:
    """Every revision of `release` in `namespace`, oldest first, read from helm's Secrets."""
    secrets = source.list_secrets(namespace, f"owner=helm,name={release}")
    prefix = f"{SECRET_PREFIX}{release}.v"
    history = [
        revision_from_release(decode_release(secret))
        for secret in secrets
        if str(secret.get("metadata", {}).get("name", "")).startswith(prefix)
    ]
    if not history:
        raise ReleaseNotFound(namespace, release)
    return sorted(history, key=lambda r: r.number)


def release_deployments(source: SecretSource, namespace: str, release: str) -> list[str]:
    """The names of the Deployments the release's current revision creates, to follow
    their rollouts after a rollback."""
    current = read_release_history(source, namespace, release)[-1]
    return [d.name for d in current.deployments]


# -- choosing the target ----------------------------------------------------------------
