"""The `rollbot` command: the terminal commands of `bot.cli`, plus `serve` and
`worker`, which need the Slack side and so live here, outside the domain."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from bot import cli


def _serve(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="rollbot serve", description="Run the Slack app (and a worker)."
    )
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument(
        "--no-worker", action="store_true", help="only answer Slack; run `rollbot worker` elsewhere"
    )
    parser.add_argument("--kubeconfig")
    parser.add_argument(
        "--http-processes",
        type=int,
        default=int(os.environ.get("ROLLBOT_HTTP_PROCESSES", "1")),
        help="processes answering HTTP (default: $ROLLBOT_HTTP_PROCESSES or 1); "
        "more acks a burst faster on more cores",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.http_processes <= 64:
        parser.error("--http-processes takes 1 to 64")
    from handlers.server import serve_from_environment

    serve_from_environment(args.port, not args.no_worker, args.kubeconfig, args.http_processes)
    return 0


def _worker(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="rollbot worker", description="Run workers only.")
    parser.add_argument("--kubeconfig")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("ROLLBOT_WORKER_PORT", "0")),
        help="serve /healthz, /readyz and /metrics here (default: $ROLLBOT_WORKER_PORT, "
        "0: no HTTP)",
    )
    args = parser.parse_args(argv)
    from handlers.server import work_from_environment

    work_from_environment(args.kubeconfig, args.port)
    return 0


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    argv = sys.argv[1:]
    if argv and argv[0] == "serve":
        sys.exit(_serve(argv[1:]))
    if argv and argv[0] == "worker":
        sys.exit(_worker(argv[1:]))
    cli.main()
