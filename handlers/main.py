"""The `rollbot` command: one argument tree, the terminal commands of `bot.cli` plus
`serve` and `worker`, which need the Slack side and so live here, outside the domain.

A start-up problem (no kubeconfig, no Slack token, a bad config file, Redis out of
reach, the port taken) is one line on stderr and a non-zero exit, never a traceback.
The Slack app, gunicorn and the clients are imported only by the command that runs
them.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from bot import cli
from bot.errors import RollbotError


def _serve(args: argparse.Namespace) -> int:
    from bot.runtime import runtime_from_environment
    from handlers.server import SlackSettings, serve_from_environment

    slack = SlackSettings.from_environment()  # before anything is started or connected
    runtime = runtime_from_environment(args.serve_kubeconfig or args.kubeconfig, args.config)
    serve_from_environment(slack, runtime, args.port, not args.no_worker, args.http_processes)
    return 0


def _worker(args: argparse.Namespace) -> int:
    from bot.runtime import runtime_from_environment
    from handlers.server import work_from_environment

    runtime = runtime_from_environment(args.serve_kubeconfig or args.kubeconfig, args.config)
    work_from_environment(runtime, args.port)
    return 0


def _processes(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError("takes 1 to 64")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    """bot.cli's parser with `serve` and `worker` added to its subcommands."""
    parser = cli.build_parser()
    # argparse keeps a parser's subcommands in one action; it has no public getter.
    commands = next(
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    )
    serve = commands.add_parser(
        "serve",
        help="run the Slack app (HTTP or Socket Mode) and a worker",
        description="Run the Slack app: HTTP mode with SLACK_BOT_TOKEN and "
        "SLACK_SIGNING_SECRET, Socket Mode with SLACK_APP_TOKEN; and a worker.",
    )
    serve.add_argument("--port", type=int, default=3000, help="HTTP port (default 3000)")
    serve.add_argument(
        "--no-worker", action="store_true", help="only answer Slack; run `rollbot worker` elsewhere"
    )
    serve.add_argument(
        "--http-processes",
        type=_processes,
        default=os.environ.get("ROLLBOT_HTTP_PROCESSES", "1"),
        help="processes answering HTTP (default: $ROLLBOT_HTTP_PROCESSES or 1); "
        "more ack a burst faster on more cores",
    )
    serve.set_defaults(run=_serve)
    worker = commands.add_parser(
        "worker", help="run workers only", description="Run the queue's jobs; no Slack events."
    )
    worker.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("ROLLBOT_WORKER_PORT", "0")),
        help="serve /healthz, /readyz and /metrics here (default: $ROLLBOT_WORKER_PORT, "
        "0: no HTTP)",
    )
    worker.set_defaults(run=_worker)
    for sub in (serve, worker):
        sub.add_argument(
            "--kubeconfig", dest="serve_kubeconfig", help="kubeconfig file (default: $KUBECONFIG)"
        )
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except RollbotError as err:  # bot.cli's parser reports bad flags so
        print(f"error: {err}", file=sys.stderr)
        return cli.EXIT_BAD_INPUT
    if not hasattr(args, "run"):
        return cli.run(argv)
    from bot.runtime import StartupError

    try:
        code: int = args.run(args)
        return code
    except StartupError as err:
        print(f"rollbot {args.command}: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    sys.exit(run())
