"""Pods that run to completion on the fake kubelet: every Job's pods.

A pod with restartPolicy Never or OnFailure is not left Running like a
Deployment's: each of its containers runs, ends with an exit code, and the pod
becomes Succeeded (every container exited 0) or Failed (one did not, under
Never), its containerStatuses `terminated` with the exit code, reason
(Completed or Error) and times. So kube-controller-manager's real job controller
counts it, and a Job becomes Complete, or retries up to its backoffLimit and
becomes Failed.

A container "runs" for `SIMULATED_SECONDS` and exits 1 if its image tag matches
the kubelet's broken pattern, else 0; its log is made up
(`testbed.container_logs.job_attempt`). A pod marked to run locally
(`testbed.local_containers`) runs its containers' commands as real processes
instead, with their real exit codes and output.

Under OnFailure a container that fails is restarted in place after
`BACKOFF_SECONDS` (restartCount grows, lastState keeps the failed attempt), as
the kubelet does, until it succeeds or the job controller deletes the pod.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from testbed.container_logs import Timeline
from testbed.local_containers import (
    ContainerConfigError,
    LocalProcess,
    Termination,
    expand,
    process_env,
    run_timeout,
    runs_local,
)

Body = dict[str, Any]
SIMULATED_SECONDS = 1.0
BACKOFF_SECONDS = 1.0


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ContainerRun:
    """One container of the pod: its state now, its restarts, its local attempts' logs."""

    def __init__(self, spec: Body, container_id: str) -> None:
        self.spec = spec
        self.container_id = container_id
        self.state: Body = {"waiting": {"reason": "ContainerCreating"}}
        self.last: Body | None = None
        self.restarts = 0
        self.attempts: list[LocalProcess] = []

    @property
    def finished(self) -> bool:
        return "terminated" in self.state

    def status(self) -> Body:
        running = "running" in self.state
        image = self.spec.get("image", "")
        status: Body = {
            "name": self.spec["name"],
            "image": image,
            "imageID": "docker-pullable://" + image,
            "containerID": self.container_id,
            "ready": running,
            "started": running,
            "restartCount": self.restarts,
            "state": self.state,
        }
        if self.last is not None:
            status["lastState"] = self.last
        return status


class PodRun:
    """A run-to-completion pod's containers at work, each in a thread of its own.

    `report` is given the status fields this run decides (phase, conditions,
    containerStatuses) each time they change, one report at a time, in order.
    `env_of` resolves a local container's environment from the API."""

    def __init__(
        self,
        pod: Body,
        *,
        broken: bool,
        report: Callable[[Body], None],
        env_of: Callable[[Body, Body], dict[str, str]],
    ) -> None:
        self.pod = pod
        self.uid: str = pod["metadata"]["uid"]
        self.local = runs_local(pod)
        self.broken = broken
        self.report = report
        self.env_of = env_of
        self.restart_on_failure = pod.get("spec", {}).get("restartPolicy") == "OnFailure"
        self.containers = {
            c["name"]: ContainerRun(c, f"containerd://{self.uid}-{c['name']}")
            for c in pod.get("spec", {}).get("containers") or []
        }
        self.stopped = threading.Event()
        self.lock = threading.Lock()  # the containers' state
        self.reporting = threading.Lock()  # one report at a time
        self.home = Path(tempfile.mkdtemp(prefix="rollbot-pod-")) if self.local else None

    def start(self) -> None:
        self._report()
        for run in self.containers.values():
            threading.Thread(target=self._run, args=(run,), daemon=True).start()

    def stop(self) -> None:
        """The pod is gone, or the kubelet stops: kill what runs and report nothing more."""
        with self.lock:
            self.stopped.set()
            processes = [p for run in self.containers.values() for p in run.attempts]
        for process in processes:
            process.kill()
        if self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)

    def log(self, container: str, previous: bool) -> Timeline | None:
        """A local container's captured output (None: not a local run, the log is made up)."""
        run = self.containers.get(container)
        if not self.local or run is None:
            return None
        with self.lock:
            attempts = list(run.attempts)
        index = -2 if previous else -1
        if len(attempts) < -index:
            return None
        return Timeline.of(list(attempts[index].lines))

    # -- the pod's status -------------------------------------------------------

    def _phase(self) -> str:
        runs = list(self.containers.values())
        if all(run.finished for run in runs):
            failed = any(run.state["terminated"]["exitCode"] != 0 for run in runs)
            return "Failed" if failed else "Succeeded"
        if any(run.restarts or "waiting" not in run.state for run in runs):
            return "Running"
        return "Pending"

    def _report(self) -> None:
        """The status now. Reports take turns, so they land in order; the state lock
        is not held while one is sent, so stop() never waits for the API."""
        with self.reporting:
            with self.lock:
                if self.stopped.is_set():
                    return
                fields = self._status_fields()
            self.report(fields)

    def _status_fields(self) -> Body:
        phase = self._phase()
        stamp = _now()
        runs = self.containers.values()
        ready = phase == "Running" and all("running" in r.state for r in runs)
        reason = "PodCompleted" if phase in ("Succeeded", "Failed") else "ContainersNotReady"
        readiness: Body = {"status": "True" if ready else "False", "lastTransitionTime": stamp}
        if not ready:
            readiness["reason"] = reason
        return {
            "phase": phase,
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Initialized", "status": "True"},
                {"type": "ContainersReady", **readiness},
                {"type": "Ready", **readiness},
            ],
            "containerStatuses": [r.status() for r in runs],
        }

    def _set(self, run: ContainerRun, state: Body, last: Body | None = None) -> None:
        with self.lock:
            run.state = state
            if last is not None:
                run.last = last
                run.restarts += 1
        self._report()

    # -- one container ----------------------------------------------------------

    def _run(self, run: ContainerRun) -> None:
        env: dict[str, str] = {}
        if self.local:
            try:
                env = self.env_of(self.pod, run.spec)
            except ContainerConfigError as err:
                self._set(
                    run, {"waiting": {"reason": "CreateContainerConfigError", "message": str(err)}}
                )
                return
        while not self.stopped.is_set():
            started = _now()
            self._set(run, {"running": {"startedAt": started}})
            ended = self._attempt(run, env)
            if self.stopped.is_set():
                return
            terminated: Body = {
                "exitCode": ended.exit_code,
                "reason": ended.reason,
                "startedAt": started,
                "finishedAt": _now(),
                "containerID": run.container_id,
            }
            if ended.message:
                terminated["message"] = ended.message
            if ended.exit_code == 0 or not self.restart_on_failure:
                self._set(run, {"terminated": terminated})
                return
            waiting = {"reason": "CrashLoopBackOff", "message": "back-off restarting the container"}
            self._set(run, {"waiting": waiting}, last={"terminated": terminated})
            if self.stopped.wait(BACKOFF_SECONDS):
                return

    def _attempt(self, run: ContainerRun, own_env: dict[str, str]) -> Termination:
        if not self.local:
            if self.stopped.wait(SIMULATED_SECONDS):
                return Termination(137, "Error")
            return Termination(1, "Error") if self.broken else Termination(0, "Completed")
        assert self.home is not None
        for volume in self.pod.get("spec", {}).get("volumes") or []:
            host = volume.get("hostPath") or {}
            if host.get("type") == "DirectoryOrCreate":  # as the kubelet prepares it
                Path(host["path"]).mkdir(parents=True, exist_ok=True)
        argv = [*(run.spec.get("command") or []), *(run.spec.get("args") or [])]
        cwd = Path(run.spec["workingDir"]) if run.spec.get("workingDir") else self.home
        process = LocalProcess(
            [expand(arg, own_env) for arg in argv],
            process_env(self.pod, own_env, self.home),
            cwd,
            run_timeout(self.pod),
        )
        with self.lock:
            if self.stopped.is_set():
                return Termination(137, "Error")
            run.attempts.append(process)
        return process.run()
