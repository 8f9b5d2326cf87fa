"""The `rollbot` command: the terminal commands of `bot.cli`, plus `serve` and
`worker`, which need the Slack side and so live here, outside the domain."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading

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
    args = parser.parse_args(argv)
    import os

    from bot.config import load_config
    from bot.kube import Kube
    from bot.store import JobQueue, RollbackStore, connect
    from bot.worker import Worker
    from handlers.app import slack_client
    from handlers.server import helm_from_environment
    from handlers.thread import SlackThreadSink

    store = RollbackStore(connect())
    sink = SlackThreadSink(
        slack_client(os.environ.get("SLACK_BOT_TOKEN", ""), os.environ.get("SLACK_API_URL"))
    )
    Worker(
        store,
        JobQueue(store.redis),
        Kube.from_kubeconfig(args.kubeconfig),
        load_config(),
        sink,
        helm=helm_from_environment(args.kubeconfig),
    ).run(threading.Event())
    return 0


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    argv = sys.argv[1:]
    if argv and argv[0] == "serve":
        sys.exit(_serve(argv[1:]))
    if argv and argv[0] == "worker":
        sys.exit(_worker(argv[1:]))
    cli.main()
