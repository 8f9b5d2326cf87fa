"""rollbot's rollback against `kubectl rollout undo` + `kubectl rollout status`.

On one local control plane, each round creates twin Deployments (same
revisions, replicas, strategy) in two namespaces, rolls one back with rollbot
and the other with kubectl, both until the rollout is complete, and times the
two. The order alternates between rounds so neither always goes first. The
figure is the ratio rollbot / kubectl (below 1 means rollbot is faster).

    python bench/rollback_vs_kubectl.py [--rounds 8] [--replicas 3] [--compare-with DIR]

`--compare-with DIR` adds the command of another checkout (say an older commit
unpacked with `git archive`), in the same rounds: start-up figures from different
runs on a shared machine do not compare.

Each checkout's `bot/` is compiled to bytecode first, as `pip install` (and so
rollbot's image) does: with PYTHONDONTWRITEBYTECODE set (the image sets it, and
so may the shell running this) a source checkout would otherwise compile every
module again on each start, which no installed rollbot does. `--no-compile`
measures the checkouts as they are.

Two rollbot figures are printed: the undo strategy planned and applied
in-process (as the Slack worker runs it) and the `rollbot rollback --yes`
command in a new process (as a CI job runs it, paying Python's start-up like
kubectl pays its own).
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubernetes import config as kconfig  # noqa: E402

from bot.config import RollbotConfig  # noqa: E402
from bot.kube import Kube  # noqa: E402
from bot.rollout import RolloutState  # noqa: E402
from bot.strategies import Context, Request, change_cause  # noqa: E402
from bot.strategies import get as get_strategy  # noqa: E402
from testbed.controlplane import ControlPlane  # noqa: E402
from testbed.sample_app import SampleApp  # noqa: E402


def load_average() -> str:
    """The 1-minute load (Linux): start-up figures mean little without it."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "unknown"


class Quiet:
    """A Progress that keeps nothing: the bench times the rollback, not a view."""

    def milestone(self, text: str) -> None:
        pass

    def rollout(self, workload: str, state: RolloutState) -> None:
        pass


def prepare(api_client: object, namespace: str, replicas: int) -> SampleApp:
    app = SampleApp(api_client, namespace, "web")  # type: ignore[arg-type]
    app.ensure_namespace()
    for number, image in enumerate(["app:v1", "app:v2"], start=1):
        app.deploy(image, f"revision {number}", replicas=replicas)
        app.wait("complete")
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--compare-with", metavar="DIR", help="another checkout's CLI too")
    parser.add_argument(
        "--no-compile", action="store_true", help="do not compile the checkouts' bot/ first"
    )
    args = parser.parse_args()

    with ControlPlane() as plane:
        kubectl = str(plane.bin_dir / "kubectl") if plane.bin_dir else "kubectl"
        env = {**os.environ, "KUBECONFIG": str(plane.kubeconfig), "ROLLBOT_ACTOR": "bench"}
        api_client = kconfig.new_client_from_config(str(plane.kubeconfig))
        kube = Kube(api_client)

        def run_kubectl(ns: str) -> float:
            start = time.perf_counter()
            subprocess.run(
                [kubectl, "rollout", "undo", "deployment/web", "-n", ns],
                env=env,
                check=True,
                capture_output=True,
            )
            subprocess.run(
                [kubectl, "rollout", "status", "deployment/web", "-n", ns, "--timeout=120s"],
                env=env,
                check=True,
                capture_output=True,
            )
            return time.perf_counter() - start

        undo = get_strategy("undo")
        ctx = Context(kube=kube, config=RollbotConfig(), timeout=120)

        def run_engine(ns: str) -> float:
            start = time.perf_counter()
            plan = undo.plan(ctx, Request(ns, "web"))
            cause = change_cause(
                plan.strategy,
                "bench",
                from_revision=plan.from_revision,
                target_revision=plan.target_revision,
            )
            undo.apply(ctx, ns, plan.pins, cause, Quiet())
            return time.perf_counter() - start

        def cli_in(tree: Path) -> Callable[[str], float]:
            if not args.no_compile:
                compileall.compile_dir(str(tree / "bot"), quiet=1)

            def run_cli(ns: str) -> float:
                start = time.perf_counter()
                subprocess.run(
                    [sys.executable, "-m", "bot", "rollback", "web", "-n", ns, "--yes"],
                    env={**env, "PYTHONPATH": str(tree)},
                    cwd=tree,
                    check=True,
                    capture_output=True,
                )
                return time.perf_counter() - start

            return run_cli

        here = Path(__file__).resolve().parents[1]
        runners = {
            "kubectl": run_kubectl,
            "rollbot in-process": run_engine,
            "rollbot CLI": cli_in(here),
        }
        if args.compare_with:
            runners["CLI of --compare-with"] = cli_in(Path(args.compare_with).resolve())
        times: dict[str, list[float]] = {name: [] for name in runners}
        print(
            f"{args.rounds} rounds, {args.replicas} replicas, control plane {plane.server}, "
            f"load {load_average()} on {os.cpu_count()} cores",
            flush=True,
        )
        for round_no in range(args.rounds):
            order = list(runners)
            if round_no % 2:
                order.reverse()
            apps = {
                name: prepare(api_client, f"bench-{round_no}-{i}", args.replicas)
                for i, name in enumerate(order)
            }
            for name in order:
                times[name].append(runners[name](apps[name].namespace))
            line = "  ".join(f"{n}={times[n][-1]:.2f}s" for n in runners)
            print(f"round {round_no + 1}: {line}", flush=True)

        base = statistics.median(times["kubectl"])
        print(f"\nload {load_average()} at the end")
        print("median seconds (ratio against kubectl rollout undo + rollout status):")
        for name, values in times.items():
            median = statistics.median(values)
            print(f"  {name:21} {median:6.2f}s   ratio {median / base:.2f}")


if __name__ == "__main__":
    main()
