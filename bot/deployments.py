"""A Deployment's rollout history and the undo patch, exactly as kubectl has them.

Pure functions over raw API dicts: no I/O here, so every rule of
`kubectl rollout undo` (see K8S_SEMANTICS.md) is tested without a cluster and
then checked against the real binaries in the integration tests.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from bot.bodies import Body
from bot.errors import InvalidInput, NoRolloutHistory, PermanentError, RevisionNotFound

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
CHANGE_CAUSE = "kubernetes.io/change-cause"
POD_TEMPLATE_HASH = "pod-template-hash"

# Annotations that belong to the Deployment itself: an undo keeps the
# Deployment's own values for these and never copies them from the ReplicaSet.
DEPLOYMENT_OWN_ANNOTATIONS = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        REVISION_HISTORY,
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    }
)


@dataclass(frozen=True)
class Revision:
    """One entry of `kubectl rollout history`: a ReplicaSet the Deployment owns."""

    number: int
    replica_set: str
    change_cause: str
    images: tuple[str, ...]
    created: str
    current: bool
    replicas: int
    ready_replicas: int
    #: Numbers this ReplicaSet had before the controller renumbered it on a rollback.
    earlier_numbers: tuple[int, ...] = ()
    template: Body = field(default_factory=dict, repr=False, compare=False)
    annotations: Body = field(default_factory=dict, repr=False, compare=False)


def revision_number(replica_set: Body) -> int | None:
    """The RS's revision: missing annotation → 0, unparseable → None (kubectl skips it)."""
    value = (replica_set.get("metadata", {}).get("annotations") or {}).get(REVISION)
    if value is None:
        return 0
    try:
        return int(value)
    except ValueError:
        return None


def is_owned_by(replica_set: Body, deployment: Body) -> bool:
    uid = deployment["metadata"].get("uid")
    return any(
        ref.get("controller") and ref.get("uid") == uid
        for ref in replica_set.get("metadata", {}).get("ownerReferences") or []
    )


def _prune_empty(value: Any) -> Any:
    """Semantic equality à la apimachinery: nil, empty maps and empty lists are one."""
    if isinstance(value, dict):
        pruned = {k: _prune_empty(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_prune_empty(v) for v in value]
    return value


def without_hash(template: Body) -> Body:
    """A copy of a pod template without the controller's `pod-template-hash` label."""
    copied = copy.deepcopy(template)
    labels = copied.get("metadata", {}).get("labels")
    if labels:
        labels.pop(POD_TEMPLATE_HASH, None)
    return copied


def templates_equal(a: Body, b: Body) -> bool:
    """Pod templates equal ignoring `pod-template-hash` (kubectl's equalIgnoreHash)."""
    return bool(_prune_empty(without_hash(a)) == _prune_empty(without_hash(b)))


def container_images(template: Body) -> tuple[str, ...]:
    spec = template.get("spec", {})
    return tuple(
        f"{c['name']}={c.get('image', '')}"
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])
    )


def _earlier_numbers(annotations: Body) -> tuple[int, ...]:
    raw = annotations.get(REVISION_HISTORY) or ""
    return tuple(int(p) for p in raw.split(",") if p.strip().isdigit())


def rollout_history(deployment: Body, replica_sets: list[Body]) -> list[Revision]:
    """The Deployment's revisions, oldest first, as `kubectl rollout history` lists them."""
    current_template = deployment["spec"]["template"]
    owned = [rs for rs in replica_sets if is_owned_by(rs, deployment)]
    # The "new" ReplicaSet is the oldest one whose template equals the Deployment's.
    owned.sort(key=lambda rs: (rs["metadata"].get("creationTimestamp", ""), rs["metadata"]["name"]))
    current_name = next(
        (
            rs["metadata"]["name"]
            for rs in owned
            if templates_equal(rs["spec"]["template"], current_template)
        ),
        None,
    )
    revisions: list[Revision] = []
    for rs in owned:
        number = revision_number(rs)
        if number is None:
            continue
        annotations = rs["metadata"].get("annotations") or {}
        status = rs.get("status", {})
        revisions.append(
            Revision(
                number=number,
                replica_set=rs["metadata"]["name"],
                change_cause=annotations.get(CHANGE_CAUSE, ""),
                images=container_images(rs["spec"]["template"]),
                created=rs["metadata"].get("creationTimestamp", ""),
                current=rs["metadata"]["name"] == current_name,
                replicas=int(status.get("replicas") or 0),
                ready_replicas=int(status.get("readyReplicas") or 0),
                earlier_numbers=_earlier_numbers(annotations),
                template=rs["spec"]["template"],
                annotations=annotations,
            )
        )
    revisions.sort(key=lambda r: r.number)
    return revisions


def choose_target(deployment_name: str, history: list[Revision], to_revision: int) -> Revision:
    """The revision an undo goes to: N, or with N = 0 the second-highest one."""
    available = [r.number for r in history]
    if to_revision < 0:
        raise RevisionNotFound(to_revision, available)
    if to_revision > 0:
        for revision in history:
            if revision.number == to_revision:
                return revision
        raise RevisionNotFound(to_revision, available)
    if len(history) < 2:
        detail = "only one revision is left" if history else "it owns no ReplicaSets"
        raise NoRolloutHistory(deployment_name, detail)
    # history is sorted; with equal numbers kubectl keeps the first one it met.
    return history[-2]


def undo_template(target: Revision) -> Body:
    """The pod template an undo writes: the RS's, without its `pod-template-hash`."""
    return without_hash(target.template)


def undo_annotations(deployment: Body, target: Revision) -> dict[str, str]:
    """The Deployment's own bookkeeping annotations plus every other one of the RS."""
    own = deployment["metadata"].get("annotations") or {}
    annotations = {k: v for k, v in own.items() if k in DEPLOYMENT_OWN_ANNOTATIONS}
    annotations.update(
        {k: v for k, v in target.annotations.items() if k not in DEPLOYMENT_OWN_ANNOTATIONS}
    )
    return annotations


def preconditions(deployment: Body) -> list[Body]:
    """JSON-patch `test` ops that fail if someone changed what an undo rewrites.

    kubectl sends none. rollbot tests the generation (bumped by any spec change,
    a scale included) and the annotations (which the undo replaces whole), not
    the resourceVersion: the controller's status writes bump that every few
    seconds during a rollout and would make every patch of a busy Deployment
    conflict, though nothing it changes is at stake.
    """
    meta = deployment["metadata"]
    ops = [{"op": "test", "path": "/metadata/generation", "value": meta["generation"]}]
    if meta.get("annotations") is not None:
        ops.append({"op": "test", "path": "/metadata/annotations", "value": meta["annotations"]})
    return ops


def undo_patch(deployment: Body, target: Revision, change_cause: str | None = None) -> list[Body]:
    """The JSON patch of `kubectl rollout undo`, guarded by `preconditions`.

    With `change_cause`, the Deployment records who rolled back and why; the
    controller copies it to the ReplicaSet, so `rollout history` shows it.
    """
    annotations = undo_annotations(deployment, target)
    if change_cause is not None:
        annotations[CHANGE_CAUSE] = change_cause
    return [
        *preconditions(deployment),
        {"op": "replace", "path": "/spec/template", "value": undo_template(target)},
        # "add" replaces an existing member and also works when there is none yet.
        {"op": "add", "path": "/metadata/annotations", "value": annotations},
    ]


def pointer_value(obj: Any, pointer: str) -> Any:
    """The value at a JSON pointer (RFC 6901), or None where there is none."""
    for raw in pointer.lstrip("/").split("/"):
        key = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(obj, dict):
            obj = obj.get(key)
        elif isinstance(obj, list) and key.isdigit() and int(key) < len(obj):
            obj = obj[int(key)]
        else:
            return None
    return obj


class TagNeverDeployed(PermanentError):
    code = "tag_never_deployed"

    def __init__(self, tag: str, seen: list[str]) -> None:
        listed = ", ".join(seen) or "none"
        super().__init__(
            f"tag {tag!r} was never deployed here (tags in the history: {listed}); "
            "check the tag, or force it if you are sure"
        )


def image_tag(image: str) -> str:
    last = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


def with_tag(image: str, tag: str) -> str:
    """`registry/app:1.6` (or `@sha256:…`) with its tag set to `tag`."""
    repo = image.split("@", 1)[0]
    head, _, last = repo.rpartition("/")
    name = last.split(":", 1)[0]
    return f"{head}/{name}:{tag}" if head else f"{name}:{tag}"


def image_target(
    deployment: Body,
    history: list[Revision],
    tag: str,
    container: str | None = None,
    allow_unknown: bool = False,
) -> Revision:
    """The revision a `rollback.sh v1.2.3` means: the current template with the
    containers' images set to `tag`; an existing revision when one matches."""
    template = without_hash(deployment["spec"]["template"])
    containers = template.get("spec", {}).get("containers") or []
    names = [c["name"] for c in containers]
    if container is not None and container not in names:
        raise InvalidInput(f"no container {container!r} (containers: {', '.join(names)})")
    chosen = names if container is None else [container]
    for c in containers:
        if c["name"] in chosen:
            c["image"] = with_tag(c.get("image", ""), tag)
    seen = sorted(
        {
            image_tag(i.split("=", 1)[1])
            for r in history
            for i in r.images
            if i.split("=", 1)[0] in chosen
        }
    )
    if tag not in seen and not allow_unknown:
        raise TagNeverDeployed(tag, seen)
    for revision in reversed(history):
        if templates_equal(revision.template, template):
            return revision
    own = deployment["metadata"].get("annotations") or {}
    return Revision(
        number=0,
        replica_set="",
        change_cause=f"image tag {tag}",
        images=container_images(template),
        created="",
        current=False,
        replicas=0,
        ready_replicas=0,
        template=template,
        annotations={k: v for k, v in own.items() if k not in DEPLOYMENT_OWN_ANNOTATIONS},
    )
