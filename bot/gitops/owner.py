"""Who reconciles a workload from Git, read from the marks the tools leave on it
— the same marks whatever its kind (a Deployment, an Argo Rollout), so only its
metadata is read.

Flux's kustomize-controller labels what it applies with
`kustomize.toolkit.fluxcd.io/name|namespace`, helm-controller with
`helm.toolkit.fluxcd.io/name|namespace`. Argo CD tracks by the annotation
`argocd.argoproj.io/tracking-id` (`APP:GROUP/KIND:NS/NAME`, APP being
`NAMESPACE_NAME` when Applications live outside its own namespace), or by the
label `app.kubernetes.io/instance`. That label is also what every Helm chart
sets to its release name, so on its own it names an owner only if that
Application exists: a label that names none is not read as a missing owner.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from bot.bodies import Body

FLUX_KUSTOMIZE = "kustomize.toolkit.fluxcd.io"
FLUX_HELM = "helm.toolkit.fluxcd.io"
ARGO_TRACKING_ID = "argocd.argoproj.io/tracking-id"
ARGO_INSTANCE = "app.kubernetes.io/instance"


@dataclass(frozen=True)
class Kind:
    tool: str
    kind: str
    #: The API path of its group and version, as `bot.kube` takes it.
    api: str
    plural: str


KUSTOMIZATION = Kind(
    "Flux", "Kustomization", "apis/kustomize.toolkit.fluxcd.io/v1", "kustomizations"
)
HELM_RELEASE = Kind("Flux", "HelmRelease", "apis/helm.toolkit.fluxcd.io/v2", "helmreleases")
APPLICATION = Kind("Argo CD", "Application", "apis/argoproj.io/v1alpha1", "applications")
KINDS = {k.kind: k for k in (KUSTOMIZATION, HELM_RELEASE, APPLICATION)}
GIT_REPOSITORY = Kind(
    "Flux", "GitRepository", "apis/source.toolkit.fluxcd.io/v1", "gitrepositories"
)


@dataclass(frozen=True)
class OwnerRef:
    """What a workload's marks say owns it."""

    kind: str
    namespace: str
    name: str
    #: The label or annotation that said so (for the person reading).
    evidence: str
    #: False for the bare `app.kubernetes.io/instance` label (see the module's doc).
    certain: bool = True

    @property
    def spec(self) -> Kind:
        return KINDS[self.kind]

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"

    def __str__(self) -> str:
        return f"{self.spec.tool} {self.kind} {self.namespace}/{self.name}"


def _argo_app(value: str, default_namespace: str) -> tuple[str, str]:
    namespace, _, name = value.partition("_")
    return (namespace, name) if name else (default_namespace, value)


def owner_ref_of(workload: Body, argocd_namespace: str = "argocd") -> OwnerRef | None:
    """The owner a workload's labels and annotations name, Flux first; None: none."""
    meta = workload.get("metadata") or {}
    labels: dict[str, str] = meta.get("labels") or {}
    annotations: dict[str, str] = meta.get("annotations") or {}
    for group, kind in ((FLUX_KUSTOMIZE, KUSTOMIZATION), (FLUX_HELM, HELM_RELEASE)):
        name, namespace = labels.get(f"{group}/name"), labels.get(f"{group}/namespace")
        if name and namespace:
            return OwnerRef(kind.kind, namespace, name, f"label {group}/name={name}")
    tracking = annotations.get(ARGO_TRACKING_ID, "")
    if ":" in tracking:
        namespace, name = _argo_app(tracking.split(":", 1)[0], argocd_namespace)
        return OwnerRef("Application", namespace, name, f"annotation {ARGO_TRACKING_ID}")
    if instance := labels.get(ARGO_INSTANCE):
        namespace, name = _argo_app(instance, argocd_namespace)
        return OwnerRef(
            "Application", namespace, name, f"label {ARGO_INSTANCE}={instance}", certain=False
        )
    return None


class OwnerSource(Protocol):
    def get_custom(self, api: str, namespace: str, plural: str, name: str) -> Body | None: ...


@dataclass(frozen=True)
class Owner:
    """An owner as it is now (`body` None: it does not exist)."""

    ref: OwnerRef
    body: Body | None

    @property
    def exists(self) -> bool:
        return self.body is not None

    @property
    def spec(self) -> Body:
        return (self.body or {}).get("spec") or {}

    @property
    def interval(self) -> str | None:
        """Flux's reconciliation interval, as people write it ("1m", not "1m0s")."""
        raw = self.spec.get("interval")
        return re.sub(r"(?<=[hm])0s$", "", re.sub(r"(?<=h)0m(?=0s$)", "", raw)) if raw else None

    @property
    def automated(self) -> Body | None:
        """Argo CD's automated sync policy; None when syncs are manual (an
        `automated` block with `enabled: false` is manual too)."""
        automated = (self.spec.get("syncPolicy") or {}).get("automated")
        if not isinstance(automated, dict) or automated.get("enabled") is False:
            return None
        return automated

    @property
    def reconciles(self) -> bool:
        """Whether it would put the Git version back over a rollback by itself."""
        if not self.exists:
            return False
        if self.ref.kind == "Application":
            return self.automated is not None
        return self.spec.get("suspend") is not True

    @property
    def source(self) -> str | None:
        """Flux: where it reads Git from ("GitRepository flux-system/apps")."""
        ref = self.spec.get("sourceRef")
        if self.ref.kind == "HelmRelease":
            ref = ((self.spec.get("chart") or {}).get("spec") or {}).get("sourceRef") or (
                self.spec.get("chartRef")
            )
        if not isinstance(ref, dict) or not ref.get("name"):
            return None
        namespace = ref.get("namespace") or self.ref.namespace
        return f"{ref.get('kind', 'source')} {namespace}/{ref['name']}"

    def describe(self) -> str:
        """What it does to a rollback, in a line (plain text)."""
        if not self.exists:
            return (
                f"labelled as managed by {self.ref} ({self.ref.evidence}), which does not "
                "exist: nothing rollbot can see reconciles it"
            )
        if self.ref.kind != "Application":
            every = f"every {self.interval}" if self.interval else "on its interval"
            source = f", from {self.source}" if self.source else ""
            if not self.reconciles:
                return (
                    f"managed by {self.ref} ({every}{source}), suspended already: "
                    "Flux leaves a rollback alone until someone resumes it"
                )
            return (
                f"managed by {self.ref} ({every}{source}): a rollback alone is reverted "
                f"within {self.interval or 'one interval'}"
            )
        automated = self.automated
        if automated is None:
            return (
                f"managed by {self.ref} (manual sync): a rollback stays until someone "
                "syncs the Application"
            )
        heal = "self-heal" if automated.get("selfHeal") else "no self-heal"
        prune = ", prune" if automated.get("prune") else ""
        if automated.get("selfHeal"):
            return (
                f"managed by {self.ref} (automated sync, {heal}{prune}): a rollback alone "
                "is reverted within seconds"
            )
        return (
            f"managed by {self.ref} (automated sync, {heal}{prune}): a rollback alone "
            "stays only until the next change in Git is synced"
        )


def read_owner(kube: OwnerSource, ref: OwnerRef) -> Owner:
    """The owner as it is now; Forbidden when rollbot may not read it."""
    spec = ref.spec
    return Owner(ref, kube.get_custom(spec.api, ref.namespace, spec.plural, ref.name))
