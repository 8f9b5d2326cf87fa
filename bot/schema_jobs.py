"""The Jobs of a schema step (backup, downgrade, check): their bodies from the
catalog's templates, and running one to its end with its log streamed.

A Job's name comes from the rollback's id and the step (`rollbot-rb-1a2b3c4d-backup`),
so a worker that takes over a rollback finds the Job its predecessor created
instead of running the step twice: creating it again answers 409, and the
existing Job is followed to its end. Every string of a template is rendered
with Jinja2, sandboxed and strict (an unknown variable is an error, never an
empty string in a command line).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from bot import failpoints
from bot.bodies import Body
from bot.errors import Conflict, PermanentError
from bot.migrations import JobTemplate
from bot.redaction import redact

MANAGED_BY = "rollbot"
RECORD_LABEL = "rollbot.dev/record"
STEP_LABEL = "rollbot.dev/step"
#: The label the Job controller puts on its pods.
JOB_NAME_LABEL = "job-name"
#: Finished Jobs stay a day for `kubectl logs`, then Kubernetes removes them.
KEEP_FINISHED_SECONDS = 86400
#: At most this many log lines in one progress message.
LINES_PER_MESSAGE = 20


class JobKube(Protocol):
    def create_job(self, namespace: str, body: Body) -> Body: ...

    def get_job(self, namespace: str, name: str) -> Body: ...

    def delete_job(self, namespace: str, name: str) -> None: ...

    def list_pods(self, namespace: str, label_selector: str) -> list[Body]: ...

    def pod_log(
        self, namespace: str, pod: str, since_seconds: int, tail: int, container: str | None = None
    ) -> str: ...


class JobFailed(PermanentError):
    code = "job_failed"


def job_name(record_id: str, step: str) -> str:
    return f"rollbot-{record_id}-{step}"


_ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def render(text: str, variables: Mapping[str, object], where: str) -> str:
    try:
        return _ENV.from_string(text).render(dict(variables))
    except TemplateError as err:
        raise PermanentError(f"{where}: cannot render {text!r}: {err}") from err


def _env_var(var: Mapping[str, Any], variables: Mapping[str, object], where: str) -> Body:
    rendered = dict(var)
    if isinstance(var.get("value"), str):
        rendered["value"] = render(var["value"], variables, where)
    return rendered


def job_body(
    template: JobTemplate,
    *,
    record_id: str,
    step: str,
    namespace: str,
    variables: Mapping[str, object],
) -> Body:
    """The Job a schema step creates, every string of the template rendered."""
    where = f"migrations.{step}"
    name = job_name(record_id, step)

    def each(texts: list[str]) -> list[str]:
        return [render(t, variables, where) for t in texts]

    labels = {
        "app.kubernetes.io/managed-by": MANAGED_BY,
        RECORD_LABEL: record_id,
        STEP_LABEL: step,
    }
    container: Body = {
        "name": step,
        "image": render(template.image, variables, where),
        "env": [_env_var(v, variables, where) for v in template.env],
    }
    if template.command:
        container["command"] = each(template.command)
    if template.args:
        container["args"] = each(template.args)
    if template.volume_mounts:
        container["volumeMounts"] = list(template.volume_mounts)
    pod_spec: Body = {"restartPolicy": "Never", "containers": [container]}
    if template.service_account:
        pod_spec["serviceAccountName"] = template.service_account
    if template.volumes:
        pod_spec["volumes"] = list(template.volumes)
    pod_labels = {k: render(v, variables, where) for k, v in template.pod_labels.items()}
    pod_annotations = {k: render(v, variables, where) for k, v in template.pod_annotations.items()}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            # Once: a failed downgrade is looked at by a person, never run again blindly.
            "backoffLimit": 0,
            "activeDeadlineSeconds": max(1, round(template.timeout_seconds)),
            "ttlSecondsAfterFinished": KEEP_FINISHED_SECONDS,
            "template": {
                "metadata": {"labels": {**pod_labels, **labels}, "annotations": pod_annotations},
                "spec": pod_spec,
            },
        },
    }


@dataclass(frozen=True)
class JobOutcome:
    name: str
    succeeded: bool
    #: The last lines of its log (redacted), for the failure's message.
    tail: tuple[str, ...]


def finished(job: Body) -> bool | None:
    """True (complete), False (failed) or None (still running)."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return True
        if condition.get("type") == "Failed":
            return False
    return None


class _LogFollower:
    """The new lines of a Job's pods since the last look."""

    def __init__(self, kube: JobKube, namespace: str, name: str) -> None:
        self.kube, self.namespace, self.name = kube, namespace, name
        self.seen: dict[str, int] = {}
        self.tail: list[str] = []

    def new_lines(self) -> list[str]:
        fresh: list[str] = []
        pods = self.kube.list_pods(self.namespace, f"{JOB_NAME_LABEL}={self.name}")
        for pod in sorted(pods, key=lambda p: str(p["metadata"].get("creationTimestamp", ""))):
            pod_name = str(pod["metadata"]["name"])
            try:
                text = self.kube.pod_log(self.namespace, pod_name, 86400, 2000)
            except PermanentError:
                continue  # not started yet: no log to read
            lines = text.splitlines()
            done = self.seen.get(pod_name, 0)
            fresh += [redact(line) for line in lines[done:]]
            self.seen[pod_name] = len(lines)
        self.tail = (self.tail + fresh)[-LINES_PER_MESSAGE:]
        return fresh


def run_job(
    kube: JobKube,
    namespace: str,
    body: Body,
    say: Callable[[str], None],
    timeout: float,
    poll: float = 1.0,
) -> JobOutcome:
    """Create the Job (or find the one a previous worker created) and follow it to
    its end, its log said as it comes (plain text, redacted)."""
    name = str(body["metadata"]["name"])
    try:
        kube.create_job(namespace, body)
        say(f"Job {name} created")
        failpoints.reached("schema_job_created")
    except Conflict:
        say(f"Job {name} exists already (a previous attempt): following it")
    follower = _LogFollower(kube, namespace, name)
    deadline = time.monotonic() + timeout
    while True:
        outcome = finished(kube.get_job(namespace, name))
        fresh = follower.new_lines()
        for start in range(0, len(fresh), LINES_PER_MESSAGE):
            say(f"{name}: " + "\n".join(fresh[start : start + LINES_PER_MESSAGE]))
        if outcome is not None:
            return JobOutcome(name, outcome, tuple(follower.tail))
        if time.monotonic() > deadline:
            # Gone, so that a downgrade still waiting for a node cannot start after the
            # thread was told it did not run.
            kube.delete_job(namespace, name)
            ended = f"(no end after {timeout:g} s: the Job was deleted)"
            return JobOutcome(name, False, (*follower.tail, ended))
        time.sleep(poll)
