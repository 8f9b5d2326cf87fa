"""Containers the tests mark to run for real, as a process on this machine.

There are no images here, so a container of a pod annotated
`testbed.rollbot.dev/run-local: "true"` runs its `command` + `args` as a local
process instead: the way a test makes a Job really run `alembic downgrade 0041`
or `pg_dump` against the test bed's PostgreSQL. Only pods that run to completion
(restartPolicy Never or OnFailure: every Job's pods) are run; the marker on any
other pod changes nothing.

What the process gets, as a container would:

* its environment is the container's alone: `env` (with `value`, or `valueFrom`
  a `secretKeyRef`, `configMapKeyRef` or `fieldRef`, read from the API) and
  `envFrom`, plus PATH (the test bed's Python's bin folder first, so `alembic`
  and `python` are the tests' own, then the kubelet's PATH), HOME and HOSTNAME.
  `$(VAR)` in `command`, `args` and env values is expanded as the kubelet does
  (`$$` is a literal `$`). A Secret, ConfigMap or key that is missing (and not
  `optional`) leaves the container waiting in CreateContainerConfigError;
* its working directory is `workingDir`, else a fresh temp folder per pod; the
  filesystem it sees is this machine's, and volumes are not mounted: to give a
  Job a folder that works here and in a real cluster alike, use a `hostPath`
  volume whose `path` is its `mountPath`, a folder the test owns (`tmp_path`;
  type DirectoryOrCreate makes it);
* stdout and stderr, merged, are the container's log, line by line with the
  time each line came;
* its exit code is the container's; a command that is not found is a
  StartError (exit 128), a process killed by signal N exits 128+N.

Safety: it runs in its own session, is killed (with whatever it started) when
the pod is deleted, when the kubelet stops, and by the kernel if the kubelet
dies; and it is killed after `testbed.rollbot.dev/run-timeout` seconds (default
300, or the pod's `activeDeadlineSeconds`).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException

from testbed.container_logs import MAX_LINES, LogLine

Body = dict[str, Any]

RUN_LOCAL_ANNOTATION = "testbed.rollbot.dev/run-local"
RUN_TIMEOUT_ANNOTATION = "testbed.rollbot.dev/run-timeout"
DEFAULT_TIMEOUT = 300.0
MAX_LINE = 16 * 1024  # the kubelet splits longer lines; here they are cut
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_FIELD = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class ContainerConfigError(RuntimeError):
    """The container cannot be configured (CreateContainerConfigError): message says why."""


def runs_local(pod: Body) -> bool:
    annotations = pod.get("metadata", {}).get("annotations") or {}
    return str(annotations.get(RUN_LOCAL_ANNOTATION, "")).lower() == "true"


def run_timeout(pod: Body) -> float:
    deadline = pod.get("spec", {}).get("activeDeadlineSeconds")
    if deadline:
        return float(deadline)
    raw = (pod.get("metadata", {}).get("annotations") or {}).get(RUN_TIMEOUT_ANNOTATION)
    try:
        value = float(raw) if raw is not None else DEFAULT_TIMEOUT
    except ValueError:
        return DEFAULT_TIMEOUT
    return value if value > 0 else DEFAULT_TIMEOUT


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: defined names are replaced, others left as written."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _REFERENCE.sub(replace, text)


def _read(api: Any, kind: str, namespace: str, name: str) -> Body | None:
    reader = api.read_namespaced_secret if kind == "Secret" else api.read_namespaced_config_map
    try:
        raw = reader(name, namespace, _preload_content=False)
    except ApiException as err:
        if err.status == 404:
            return None
        raise
    body: Body = json.loads(raw.data)
    return body


def _data(api: Any, kind: str, namespace: str, name: str, optional: bool) -> dict[str, str]:
    body = _read(api, kind, namespace, name)
    if body is None:
        if optional:
            return {}
        raise ContainerConfigError(f'{kind.lower()} "{name}" not found')
    if kind == "Secret":
        return {k: base64.b64decode(v).decode() for k, v in (body.get("data") or {}).items()}
    return {**(body.get("binaryData") or {}), **(body.get("data") or {})}


def _field(pod: Body, path: str) -> str:
    meta = pod.get("metadata", {})
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": pod.get("spec", {}).get("nodeName"),
        "spec.serviceAccountName": pod.get("spec", {}).get("serviceAccountName"),
        "status.podIP": pod.get("status", {}).get("podIP"),
        "status.hostIP": pod.get("status", {}).get("hostIP"),
    }
    if path in simple:
        return str(simple[path] or "")
    match = _FIELD.match(path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    raise ContainerConfigError(f"unsupported fieldRef {path!r}")


def container_env(api: Any, pod: Body, container: Body) -> dict[str, str]:
    """The container's own environment, every reference resolved as the kubelet would."""
    namespace = pod["metadata"]["namespace"]
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if key in source:
                ref = source[key]
                data = _data(api, kind, namespace, ref["name"], bool(ref.get("optional")))
                env.update({source.get("prefix", "") + k: v for k, v in data.items()})
    for var in container.get("env") or []:
        name, source = var["name"], var.get("valueFrom")
        if source is None:
            env[name] = expand(var.get("value", ""), env)
            continue
        for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
            if key in source:
                ref = source[key]
                optional = bool(ref.get("optional"))
                data = _data(api, kind, namespace, ref["name"], optional)
                if ref["key"] in data:
                    env[name] = data[ref["key"]]
                elif not optional:
                    raise ContainerConfigError(
                        f"couldn't find key {ref['key']} in {kind} {namespace}/{ref['name']}"
                    )
                break
        else:
            if "fieldRef" in source:
                env[name] = _field(pod, source["fieldRef"]["fieldPath"])
            else:
                raise ContainerConfigError(
                    f"env {name}: the test bed supports secretKeyRef, configMapKeyRef and fieldRef"
                )
    return env


def process_env(pod: Body, own: dict[str, str], home: Path) -> dict[str, str]:
    """What the process starts with: the container's env over a minimal base."""
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", os.defpath)])
    base = {
        "PATH": path,
        "HOME": str(home),
        "HOSTNAME": pod["metadata"]["name"],
        "LANG": "C.UTF-8",
    }
    return {**base, **own}


@dataclass(frozen=True)
class Termination:
    """How an attempt ended: the container status's `state.terminated`, in part."""

    exit_code: int
    reason: str  # Completed, Error, StartError
    message: str = ""


class LocalProcess:
    """One attempt of a local container: spawn, capture, wait (with a timeout), kill."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, timeout: float) -> None:
        self.argv, self.env, self.cwd, self.timeout = argv, env, cwd, timeout
        self.lines: deque[LogLine] = deque(maxlen=MAX_LINES)
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._killed = False

    def _executable(self) -> str | None:
        program = self.argv[0]
        if "/" in program:
            path = program if os.path.isabs(program) else str(self.cwd / program)
            return path if os.access(path, os.X_OK) else None
        return shutil.which(program, path=self.env.get("PATH", os.defpath))

    def _capture(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            text = raw.decode(errors="replace").rstrip("\r\n")[:MAX_LINE]
            self.lines.append(LogLine(time.time_ns(), text))

    def run(self) -> Termination:
        """Runs the attempt to its end; the thread calling this must outlive the process
        (the kernel kills the process when the thread that started it ends)."""
        if not self.argv:
            why = "testbed: a local container needs a command (no image entrypoint runs here)"
            return Termination(128, "StartError", why)
        if self._executable() is None:
            return Termination(
                128, "StartError", f'exec: "{self.argv[0]}": executable file not found in $PATH'
            )
        self.cwd.mkdir(parents=True, exist_ok=True)
        setpriv = shutil.which("setpriv")
        guard = [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []
        with self._lock:
            if self._killed:
                return Termination(137, "Error", "killed before it started")
            proc = self._proc = subprocess.Popen(
                guard + self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        reader = threading.Thread(target=self._capture, args=(proc,), daemon=True)
        reader.start()
        message = ""
        try:
            proc.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            message = f"testbed: killed after {self.timeout:g}s ({RUN_TIMEOUT_ANNOTATION})"
        self.kill()  # the rest of its session: a container's processes end with it
        proc.wait()
        reader.join(timeout=5)
        code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
        return Termination(code, "Completed" if code == 0 else "Error", message)

    def kill(self) -> None:
        with self._lock:
            self._killed = True
            if self._proc is None:
                return
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass  # already gone, with everything it started
