"""rollbot's assessment against the runbook's first five minutes, step by step.

On one local control plane, a Deployment of 50 pods that log (the fake kubelet
serves `pods/log`: 50 requests a second each, 5 % of them ERROR 5xx lines, see
`testbed.kubelet`), a few Warning events, and a local HTTP service (in its own
process) answering the service's two health checks. Each round times, in an
order that alternates between rounds:

* rollbot: `assess_workload` as the worker calls it: pods, Warning events,
  error lines in recent logs and the health checks, gathered concurrently;
* the runbook, one step after another, as the calls rollbot makes: get the
  Deployment, list the pods, list the Warning events, each pod's log (with the
  `since` and `tail` the assessment uses), each health check, the rollout
  history. Made in this process with the same client, so only the order of
  the work differs. This is the baseline;
* the very calls `assess_workload` made (recorded from one run of it: it reads
  a sample of the pods' logs, not all 50), one after another, and the health
  checks in turn: what the concurrency alone buys;
* the runbook as typed: `kubectl` and `curl` in new processes, for scale (in
  the first `--kubectl-rounds` rounds only: one takes seconds).

Goal (issue 4): rollbot ≤ 0.25 of the sequential runbook, and under 2 s.

    python bench/assessment.py [--rounds 15] [--replicas 50] [--kubectl-rounds 3]
"""

from __future__ import annotations

import argparse
import inspect
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
from kubernetes import config as kconfig  # noqa: E402

from bot.assessment import AssessmentSource, assess_workload  # noqa: E402
from bot.checks import HttpCheck, run_check  # noqa: E402
from bot.kube import Kube, selector_string  # noqa: E402
from testbed.container_logs import LOG_ERRORS_ANNOTATION, LOG_RATE_ANNOTATION  # noqa: E402
from testbed.controlplane import ControlPlane  # noqa: E402
from testbed.http_service import FakeService  # noqa: E402
from testbed.sample_app import SampleApp, deployment_body  # noqa: E402

NAMESPACE, APP = "bench-assess", "web"
LOG_RATE, LOG_ERRORS = 50, 0.05
LOG_FILL_SECONDS = 15  # 750 lines a pod: more than any tail the assessment reads
GOAL_RATIO, GOAL_SECONDS = 0.25, 2.0
Call = tuple[str, tuple[Any, ...], dict[str, Any]]  # a Kube method's name and arguments


def serve_health(reply: Connection) -> None:
    """The service's health endpoints, in a process of their own like a real service."""
    service = FakeService().start()
    reply.send(service.url)
    reply.close()
    while True:
        time.sleep(60)


def prepare(kube: Kube, replicas: int) -> None:
    app = SampleApp(kube.api_client, NAMESPACE, APP)
    app.ensure_namespace()
    body = deployment_body(APP, "app:v1", replicas=replicas, progress_deadline=600, cause="v1")
    body["spec"]["template"]["metadata"]["annotations"] = {
        LOG_RATE_ANNOTATION: str(LOG_RATE),
        LOG_ERRORS_ANNOTATION: str(LOG_ERRORS),
    }
    app.apps.create_namespaced_deployment(NAMESPACE, body)
    app.wait("complete")
    app.deploy("app:v2", "v2", replicas=replicas)  # a second revision for the history
    app.wait("complete")
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    pods = kube.list_pods(NAMESPACE, f"app={APP}")
    for number, pod in enumerate(pods[:10]):
        app.core.create_namespaced_event(
            NAMESPACE,
            {
                "metadata": {"name": f"{APP}-unhealthy-{number}"},
                "type": "Warning",
                "reason": "Unhealthy",
                "message": "Readiness probe failed: HTTP probe failed with statuscode: 503",
                "involvedObject": {
                    "kind": "Pod",
                    "namespace": NAMESPACE,
                    "name": pod["metadata"]["name"],
                    "uid": pod["metadata"]["uid"],
                },
                "count": 3,
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "source": {"component": "kubelet", "host": "testbed-node"},
            },
        )
    time.sleep(LOG_FILL_SECONDS)


@dataclass
class RecordingSource:
    """The assessment's source, noting every call it makes (for replaying them in turn)."""

    kube: Kube
    calls: list[Call] = field(default_factory=list)
    log_lines: list[int] = field(default_factory=list)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.kube, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args, kwargs))
            result = method(*args, **kwargs)
            if name == "pod_log":
                self.log_lines.append(len(result.splitlines()))
            return result

        return call

    def log_window(self) -> tuple[int, int]:
        """The `since_seconds` and `tail` the assessment read the logs with."""
        for name, args, kwargs in self.calls:
            if name == "pod_log":
                bound = inspect.signature(Kube.pod_log).bind(self.kube, *args, **kwargs)
                return int(bound.arguments["since_seconds"]), int(bound.arguments["tail"])
        raise SystemExit("the assessment read no pod's log")


def replay_in_turn(kube: Kube, calls: list[Call], checks: list[HttpCheck]) -> None:
    for name, args, kwargs in calls:
        getattr(kube, name)(*args, **kwargs)
    with httpx.Client(follow_redirects=True) as client:  # as run_checks makes one per call
        for check in checks:
            run_check(check, client)


def runbook_in_turn(
    kube: Kube, since: int, tail: int, checks: list[HttpCheck], client: httpx.Client
) -> None:
    """The runbook's steps one after another, every pod's log read as the assessment reads one."""
    deployment = kube.get_deployment(NAMESPACE, APP)
    selector = selector_string(deployment["spec"]["selector"])
    pods = kube.list_pods(NAMESPACE, selector)
    kube.list_warning_events(NAMESPACE)
    for pod in pods:
        kube.pod_log(NAMESPACE, pod["metadata"]["name"], since, tail)
    for check in checks:
        run_check(check, client)
    kube.list_replica_sets(NAMESPACE, selector)


def runbook_typed(
    kubectl: str, env: dict[str, str], since: int, tail: int, checks: list[HttpCheck]
) -> None:
    def run(*args: str) -> str:
        return subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout

    ns = ["-n", NAMESPACE]
    run(kubectl, "get", "deployment", APP, *ns)
    listing = run(kubectl, "get", "pods", *ns, "-l", f"app={APP}", "-o", "name")
    run(kubectl, "get", "events", *ns, "--field-selector", "type=Warning")
    for pod in listing.split():
        run(kubectl, "logs", *ns, pod, f"--since={since}s", f"--tail={tail}")
    for check in checks:
        run("curl", "-fsS", "-o", "/dev/null", check.url)
    run(kubectl, "rollout", "history", f"deployment/{APP}", *ns)


def timed(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def where_the_time_goes(kube: Kube, checks: list[HttpCheck], client: httpx.Client) -> None:
    """Each single call the assessment is made of, alone (median of 15)."""
    pod = kube.list_pods(NAMESPACE, f"app={APP}")[0]["metadata"]["name"]
    calls: dict[str, Callable[[], Any]] = {
        "get deployment": lambda: kube.get_deployment(NAMESPACE, APP),
        "list pods": lambda: kube.list_pods(NAMESPACE, f"app={APP}"),
        "list Warning events": lambda: kube.list_warning_events(NAMESPACE),
        "one pod's log (200 lines)": lambda: kube.pod_log(NAMESPACE, pod, 600, 200),
        "one pod's log (500 lines)": lambda: kube.pod_log(NAMESPACE, pod, 600, 500),
        "one health check": lambda: run_check(checks[0], client),
        "a new httpx.Client": lambda: httpx.Client().close(),
        "rollout history (ReplicaSets)": lambda: kube.list_replica_sets(NAMESPACE, f"app={APP}"),
    }
    print("\nsingle calls, median ms:")
    for name, call in calls.items():
        call()
        median = statistics.median(timed(call) for _ in range(15))
        print(f"  {name:30} {median * 1000:6.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--replicas", type=int, default=50)
    parser.add_argument("--kubectl-rounds", type=int, default=3, help="0: no kubectl/curl runbook")
    args = parser.parse_args()

    spawn = multiprocessing.get_context("spawn")
    receive, send = spawn.Pipe(duplex=False)
    health = spawn.Process(target=serve_health, args=(send,), daemon=True)
    health.start()
    url = receive.recv()
    checks = [
        HttpCheck(name="health", url=f"{url}/health", expect_body="healthy"),
        HttpCheck(name="version", url=f"{url}/api", expect_field="version"),
    ]

    with ControlPlane() as plane, httpx.Client() as client:
        kube = Kube(kconfig.new_client_from_config(str(plane.kubeconfig)))
        kubectl = str(plane.bin_dir / "kubectl") if plane.bin_dir else "kubectl"
        env = {**os.environ, "KUBECONFIG": str(plane.kubeconfig)}
        print(f"{args.replicas} pods, control plane {plane.server}; preparing…", flush=True)
        prepare(kube, args.replicas)

        recorder = RecordingSource(kube)
        facts = assess_workload(
            cast(AssessmentSource, recorder), NAMESPACE, APP, health_checks=checks
        )
        if facts.unknown:
            raise SystemExit(f"the assessment ran out of time on {facts.unknown}: rerun")
        since, tail = recorder.log_window()
        made = Counter(name for name, _, _ in recorder.calls)
        print("rollbot's assessment:", *facts.summary_lines()[:4], sep="\n  ")
        print(
            "its calls: "
            + ", ".join(f"{name} ×{count}" for name, count in made.items())
            + f", {len(checks)} health checks; logs read with since={since}s tail={tail}, "
            f"{min(recorder.log_lines, default=0)}–{max(recorder.log_lines, default=0)} "
            "lines each",
            flush=True,
        )

        runners: dict[str, Callable[[], Any]] = {
            "rollbot assess_workload": lambda: assess_workload(
                kube, NAMESPACE, APP, health_checks=checks
            ),
            "runbook in turn": lambda: runbook_in_turn(kube, since, tail, checks, client),
            "its own calls in turn": lambda: replay_in_turn(kube, recorder.calls, checks),
        }
        if args.kubectl_rounds:
            runners["kubectl + curl"] = lambda: runbook_typed(kubectl, env, since, tail, checks)
        for run in runners.values():  # warm-up: connection pools, first imports
            run()

        times: dict[str, list[float]] = {name: [] for name in runners}
        for round_no in range(args.rounds):
            order = [n for n in runners if n != "kubectl + curl" or round_no < args.kubectl_rounds]
            if round_no % 2:
                order.reverse()
            for name in order:
                times[name].append(timed(runners[name]))
            line = "  ".join(f"{name}={times[name][-1]:.3f}s" for name in order)
            print(f"round {round_no + 1}: {line}", flush=True)
        where_the_time_goes(kube, checks, client)

    health.terminate()
    base = statistics.median(times["runbook in turn"])
    print("\nmedian seconds (ratio against the runbook's steps in turn):")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:25} {median:7.3f}s   ratio {median / base:.3f}")
    ours = statistics.median(times["rollbot assess_workload"])
    met = ours / base <= GOAL_RATIO and ours < GOAL_SECONDS
    print(
        f"goal ≤ {GOAL_RATIO} of the runbook and under {GOAL_SECONDS:g} s: "
        + ("met" if met else "missed")
    )


if __name__ == "__main__":
    main()
