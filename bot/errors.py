"""The two kinds of error rollbot knows.

A *permanent* error is the user's to fix (an unknown deployment, a paused one,
a revision that is not in the history): it becomes a clear message and is never
retried. A *temporary* error is the cluster's (a conflict, a 5xx, a time-out):
it is retried with backoff, and only reaches the user when retries run out.
"""

from __future__ import annotations


class RollbotError(Exception):
    """Base of every error rollbot shows to a person. `str(err)` is that message."""

    #: A short, stable name for logs, metrics and timeline entries.
    code = "error"


class PermanentError(RollbotError):
    """Retrying cannot help: the request itself must change."""


class TemporaryError(RollbotError):
    """The same request may well succeed a little later."""


class InvalidInput(PermanentError):
    code = "invalid_input"


class NamespaceNotAllowed(PermanentError):
    code = "namespace_not_allowed"

    def __init__(self, namespace: str, allowed: list[str]) -> None:
        self.namespace = namespace
        self.allowed = allowed
        listed = ", ".join(allowed) if allowed else "none"
        super().__init__(
            f"namespace {namespace!r} is not one rollbot may touch (allowed: {listed})"
        )


class DeploymentNotFound(PermanentError):
    code = "deployment_not_found"

    def __init__(self, namespace: str, name: str) -> None:
        self.namespace = namespace
        self.name = name
        super().__init__(f"deployment {name!r} not found in namespace {namespace!r}")


class DeploymentPaused(PermanentError):
    code = "deployment_paused"

    def __init__(self, namespace: str, name: str) -> None:
        super().__init__(
            f"deployment {name!r} in {namespace!r} is paused; resume it first "
            f"(kubectl rollout resume deployment/{name} -n {namespace})"
        )


class NoRolloutHistory(PermanentError):
    code = "no_rollout_history"

    def __init__(self, name: str, detail: str = "") -> None:
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"no rollout history found for deployment {name!r}: "
            f"there is no earlier revision to roll back to{extra}"
        )


class RevisionNotFound(PermanentError):
    code = "revision_not_found"

    def __init__(self, revision: int, available: list[int]) -> None:
        self.revision = revision
        self.available = available
        listed = ", ".join(str(r) for r in available) if available else "none"
        super().__init__(
            f"unable to find specified revision {revision} in history (revisions: {listed})"
        )


class Forbidden(PermanentError):
    code = "forbidden"

    def __init__(self, detail: str) -> None:
        super().__init__(f"Kubernetes refused rollbot's credentials: {detail}")


class ApiUnavailable(TemporaryError):
    code = "api_unavailable"

    def __init__(self, detail: str) -> None:
        super().__init__(f"the Kubernetes API is unavailable: {detail}")


class Conflict(TemporaryError):
    code = "conflict"

    def __init__(self, detail: str) -> None:
        super().__init__(f"the deployment changed while rollbot was editing it: {detail}")


class RolloutFailed(RollbotError):
    """The rollback was applied but the rollout did not become healthy."""

    code = "rollout_failed"


class RolloutTimedOut(RolloutFailed):
    code = "rollout_timed_out"


class WatchExpired(TemporaryError):
    """The watch's resourceVersion is too old (HTTP 410): list again and re-watch."""

    code = "watch_expired"


class AlreadyAtTarget(PermanentError):
    """Nothing to do: the Deployment already runs the target revision's template."""

    code = "already_at_target"

    def __init__(self, name: str, revision: int) -> None:
        self.revision = revision
        super().__init__(
            f"skipped rollback of {name!r}: current template already matches revision {revision}"
        )
