"""`rollbot` on a terminal or in a CI job: the runbooks' `rollback.sh previous
--force` / `--dry-run`, with a plan, a confirmation and live progress.

Exit codes a CI job can rely on:
  0  rolled back and healthy (or nothing to do: already at the target)
  1  the rollback was applied but the rollout failed or timed out
  2  bad input or a refusal: nothing was changed
  3  the Kubernetes API could not be reached: nothing was changed

About 460 lines: one function per command and its arguments (history, rollback,
resume, status, stats, check-config), which read best side by side; each command's
work lives in its own module.
"""

from __future__ import annotations

# Only what every command needs is imported here: `rollbot rollback --yes` in a CI
# job pays for each import before it does anything (bench/rollback_vs_kubectl.py).
# The Kubernetes client comes with the first command that talks to the cluster,
# rich only for a table or a progress bar on a terminal.
import argparse
import getpass
import json
import os
import sys
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.bodies import Body
from bot.config import RollbotConfig, load_config
from bot.durations import format_duration, parse_duration
from bot.errors import (
    AlreadyAtTarget,
    PermanentError,
    RollbotError,
    RolloutFailed,
    TemporaryError,
)
from bot.names import check_namespace, check_object_name
from bot.requests import RollbackRequest
from bot.rollout import RolloutPhase, rollout_state, watch_rollout
from bot.strategies import (
    Context,
    HelmSettings,
    Plan,
    Request,
    change_cause,
    resolve,
    workloads_now,
)
from bot.strategies import get as get_strategy
from bot.terminal import CliProgress, Terminal, UsageError, print_history_table, print_plan

if TYPE_CHECKING:
    from bot.kube import Kube
    from bot.records import RollbackRecord

EXIT_OK, EXIT_ROLLOUT_FAILED, EXIT_BAD_INPUT, EXIT_UNAVAILABLE = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad flags as rollbot's exit code 2 with a clear line."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # No abbreviations: `--config` must never be read as `--config-from`.
        super().__init__(*args, **{"allow_abbrev": False, **kwargs})

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _global_options(parser: argparse.ArgumentParser, default: Any = None) -> None:
    """Options every command takes, before or after its name."""
    parser.add_argument("--config", default=default, help="config file (default: $ROLLBOT_CONFIG)")
    parser.add_argument(
        "--kubeconfig", default=default, help="kubeconfig file (default: $KUBECONFIG)"
    )
    parser.add_argument("--context", default=default, help="kubeconfig context")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rollbot", description="Roll Kubernetes workloads back, safely.")
    _global_options(parser)
    after_name = _Parser(add_help=False)
    _global_options(after_name, default=argparse.SUPPRESS)  # keeps one given before the name
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def workload(sub: argparse.ArgumentParser, what: str = "Deployment name") -> None:
        sub.add_argument("deployment", help=what)
        sub.add_argument(
            "-n", "--namespace", help="namespace (default: the catalog's, else the context's)"
        )

    history = commands.add_parser(
        "history", parents=[after_name], help="what a Deployment or service can go back to"
    )
    workload(history, "Deployment, or a service of the catalog")
    history.add_argument("-o", "--output", choices=["table", "json"], default="table")

    rollback = commands.add_parser(
        "rollback", parents=[after_name], help="roll a Deployment or a service back"
    )
    workload(rollback, "Deployment, or a service of the catalog")
    rollback.add_argument(
        "--to-revision",
        help="revision to go back to (default: the previous one)",
    )
    rollback.add_argument(
        "--dry-run", action="store_true", help="show what would change, change nothing"
    )
    rollback.add_argument(
        "--to-tag", help="set the containers' image tag instead (rollback.sh v1.2.3)"
    )
    rollback.add_argument("--container", help="with --to-tag: only this container")
    rollback.add_argument(
        "--force", action="store_true", help="with --to-tag: allow a tag never deployed here"
    )
    rollback.add_argument(
        "--strategy",
        choices=["undo", "helm", "blue-green", "argo-rollouts"],
        help="how to roll back (default: the service's catalog entry, else undo)",
    )
    operations = rollback.add_mutually_exclusive_group()
    operations.add_argument(
        "--restore-from", metavar="BACKUP.json", help="put back the pre-rollback state in a backup"
    )
    operations.add_argument(
        "--config-from", metavar="BACKUP.json", help="put back ConfigMaps from a backup, restart"
    )
    operations.add_argument("--flag", metavar="NAME=VALUE", help="set a feature-flag env var")
    operations.add_argument("--scale", metavar="N", help="emergency scale (0, and back)")
    operations.add_argument(
        "--traffic", choices=["off", "on"], help="take pods out of (off) or into the Service"
    )
    rollback.add_argument(
        "--permanent",
        action="store_true",
        help="an Argo Rollout: abort the update, then undo the spec to the stable revision",
    )
    rollback.add_argument(
        "--helm", help="the helm binary (strategy helm; default: $ROLLBOT_HELM, else helm)"
    )
    rollback.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    rollback.add_argument("--timeout", default="5m", help="how long to wait for the rollout")
    rollback.add_argument("--reason", default="", help="why: recorded in the change-cause")
    rollback.add_argument("--actor", default="", help="who (default: $ROLLBOT_ACTOR or $USER)")

    status = commands.add_parser(
        "status", parents=[after_name], help="show (and follow) a Deployment's rollout"
    )
    workload(status)
    status.add_argument("--no-watch", action="store_true", help="print once, do not follow")
    status.add_argument("--timeout", default="5m")

    stats = commands.add_parser(
        "stats", parents=[after_name], help="rollbacks, success rate, MTTR over a window"
    )
    stats.add_argument("service", nargs="?", help="one Deployment or service (default: all)")
    stats.add_argument("--since", default="30d", help="the window: 12h, 30d, 8w (default 30d)")
    stats.add_argument("-o", "--output", choices=["table", "json", "csv"], default="table")
    stats.add_argument("--chart", metavar="FILE.png", help="also write the trend as a chart")

    resume = commands.add_parser(
        "resume",
        parents=[after_name],
        help="resume the GitOps reconciliation a rollback holds (after a question)",
    )
    resume.add_argument("record_id", metavar="ID", help="the rollback, e.g. rb-1a2b3c4d")
    resume.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    resume.add_argument("--actor", default="", help="who (default: $ROLLBOT_ACTOR or $USER)")

    check = commands.add_parser("check-config", parents=[after_name], help="validate a config file")
    check.add_argument("file", nargs="?", help="config file (default: $ROLLBOT_CONFIG)")
    return parser


# -- commands ---------------------------------------------------------------------


def connect(args: argparse.Namespace) -> Kube:
    from bot.kube import Kube

    return Kube.from_kubeconfig(args.kubeconfig, args.context)


def _namespace(args: argparse.Namespace) -> str:
    if args.namespace:
        return check_namespace(args.namespace)
    try:
        from kubernetes import config as kconfig

        _, active = kconfig.list_kube_config_contexts(config_file=args.kubeconfig)
        namespace = str(active.get("context", {}).get("namespace") or "default")
    except Exception:  # no kubeconfig: in-cluster or nothing; the API call will say
        namespace = "default"
    return check_namespace(namespace)


def cmd_history(args: argparse.Namespace, config: RollbotConfig, out: Terminal) -> int:
    from bot.engine import read_history
    from bot.history import history_lines

    name = check_object_name(args.deployment)
    entry = config.services.get(name)
    if args.namespace is None and entry is not None and entry.namespace:
        args.namespace = entry.namespace
    namespace = _namespace(args)
    config.check_namespace_allowed(namespace)
    kube = connect(args)
    if entry is not None and (entry.deployments or resolve(config, name) != "undo"):
        # A Helm release, a blue-green pair, several Deployments: as its strategy sees it.
        for line in history_lines(kube, config, namespace, name):
            out.say(line)
        return EXIT_OK
    name = (entry.deployment if entry else None) or name
    _, history = read_history(kube, namespace, name)
    if args.output == "json":
        rows = [
            {k: v for k, v in asdict(r).items() if k not in ("template", "annotations")}
            for r in history
        ]
        out.say(json.dumps(rows, indent=2))
    else:
        print_history_table(name, history)
    return EXIT_OK


def _backup_file(path: str) -> Body | None:
    try:
        loaded = json.loads(Path(path).read_text())
    except OSError as err:
        raise UsageError(f"cannot read backup {path}: {err.strerror or err}") from err
    except ValueError as err:
        raise UsageError(f"backup {path} is not JSON: {err}") from err
    if not isinstance(loaded, dict):
        raise UsageError(f"backup {path} is not a rollbot backup (no object at the top)")
    return loaded


def rollback_request(args: argparse.Namespace, config: RollbotConfig) -> Request:
    """The request the flags make, read and checked by the one request model (as
    `/rollback` is) before anything reads the cluster."""
    catalog = {name: (e.namespace, e.deployment) for name, e in config.services.items()}
    known = catalog.get(args.deployment, (None, None))[0]
    asked = RollbackRequest.from_cli(
        "rollback",
        args.deployment,
        default_namespace="" if args.namespace or known else _namespace(args),
        namespace=args.namespace,
        catalog=catalog,
        to_revision=args.to_revision,
        to_tag=args.to_tag,
        container=args.container,
        force=args.force,
        strategy=args.strategy,
        restore_from=args.restore_from,
        config_from=args.config_from,
        flag=args.flag,
        scale=args.scale,
        traffic=args.traffic,
        dry_run=args.dry_run,
        permanent=args.permanent,
        reason=args.reason,
    )
    strategy, _ = asked.resolved(config)
    options = asked.options | ({"force": "true"} if asked.force else {})
    request = Request(
        asked.namespace, asked.service, strategy, asked.to_revision, asked.to_tag, options
    )
    config.check_namespace_allowed(request.namespace)
    return request


def cmd_rollback(args: argparse.Namespace, config: RollbotConfig, out: Terminal) -> int:
    """Plan, show, confirm, apply and follow: the same for every strategy."""
    timeout = parse_duration(args.timeout)
    request = rollback_request(args, config)
    kube = connect(args)
    ctx = Context(
        kube=kube,
        config=config,
        timeout=timeout,
        helm=HelmSettings(
            args.helm or os.environ.get("ROLLBOT_HELM") or "helm", args.kubeconfig, args.context
        ),
        backups=_backup_file,
    )
    strategy = get_strategy(request.strategy)
    plan = strategy.plan(ctx, request)
    print_plan(out, plan)
    from bot.gitops.terminal import check_gitops

    changed = workloads_now(ctx, strategy, request.namespace, plan.workloads, plan.pins)
    check_gitops(kube, config, request.namespace, changed, out)
    _check_schema(ctx, config, request, plan, out, args.dry_run)
    if args.dry_run:
        out.say("dry run: nothing was changed")
        return EXIT_OK
    if plan.nothing_to_do:
        out.say(f"nothing to do: {plan.nothing_to_do}")
        return EXIT_OK
    if not args.yes and not out.ask(
        f"Roll back {plan.subject}: {plan.current} → {plan.target}? [y/N] "
    ):
        out.say("cancelled: nothing was changed")
        return EXIT_BAD_INPUT
    actor = args.actor or os.environ.get("ROLLBOT_ACTOR") or getpass.getuser()
    cause = change_cause(
        plan.strategy,
        actor,
        args.reason,
        from_revision=plan.from_revision,
        target_revision=plan.target_revision,
        to_tag=request.to_tag,
    )
    started = time.monotonic()
    recording: AbstractContextManager[RollbackRecord | None] = nullcontext()
    if os.environ.get("REDIS_URL"):  # else nothing is recorded: not even imported
        from bot.cli_record import on_the_record

        confirmed = "confirmed with --yes" if args.yes else "confirmed at the prompt"
        recording = on_the_record(
            request, plan, actor, args.reason, confirmed, timeout, out.complain
        )
    with recording as record, CliProgress(out) as progress:
        if record is not None:
            out.say(f"recorded as {record.id} (`/rollback status {record.id}` in Slack)")
        done = strategy.apply(ctx, request.namespace, plan.pins, cause, progress)
    took = format_duration(time.monotonic() - started)
    out.say(f"✓ {done} and healthy in {took}" if plan.verify_checks else f"✓ {done} in {took}")
    return EXIT_OK


def cmd_resume(args: argparse.Namespace, config: RollbotConfig, out: Terminal) -> int:
    from bot.gitops.terminal import resume_from_terminal

    actor = args.actor or os.environ.get("ROLLBOT_ACTOR") or getpass.getuser()
    kube = connect(args)
    ctx = Context(kube=kube, config=config, timeout=config.rollout_timeout_seconds)

    def running(record: RollbackRecord) -> list[Body]:
        strategy = get_strategy(record.strategy)
        return workloads_now(ctx, strategy, record.namespace, record.deployments, record.pins)

    resumed = resume_from_terminal(kube, args.record_id, actor, args.yes, out, running)
    return EXIT_OK if resumed else EXIT_BAD_INPUT


def _check_schema(
    ctx: Context, config: RollbotConfig, request: Request, plan: Plan, out: Terminal, dry: bool
) -> None:
    """The migration the plan crosses, shown; one the older code cannot run on needs
    a DBA's approval, which only the Slack flow collects: refused here (exit 2)."""
    from bot.schema_versions import crossing_of_service

    crossing = crossing_of_service(ctx.kube, config, request.namespace, request.service, plan)
    for line in crossing.lines() if crossing else ():
        out.say(f"  {line}")
    if crossing and crossing.gated and not dry and not plan.nothing_to_do:
        raise PermanentError(
            "this rollback crosses an incompatible migration and needs a DBA's approval: "
            "ask for it in Slack (/rollback), where the DBAs approve it"
        )


def cmd_status(args: argparse.Namespace, config: RollbotConfig, out: Terminal) -> int:
    namespace = _namespace(args)
    config.check_namespace_allowed(namespace)
    name = check_object_name(args.deployment)
    kube = connect(args)
    if args.no_watch:
        state = rollout_state(kube.get_deployment(namespace, name))
        out.say(state.message)
        if state.phase is RolloutPhase.DEADLINE_EXCEEDED:
            return EXIT_ROLLOUT_FAILED
        return EXIT_OK
    last = None
    with CliProgress(out) as progress:
        for state in watch_rollout(kube, namespace, name, parse_duration(args.timeout)):
            progress.rollout(name, state)
            last = state
    if last is not None and out.interactive:
        out.say(last.message)  # the bar is gone: what it ended on
    return EXIT_OK


def cmd_check_config(args: argparse.Namespace, out: Terminal) -> int:
    path = args.file or args.config or os.environ.get("ROLLBOT_CONFIG")
    if not path:
        raise UsageError("no config file given: pass one, or set ROLLBOT_CONFIG")
    config = load_config(path)
    out.say(f"{path}: valid ({len(config.namespaces) or 'any'} namespaces)")
    return EXIT_OK


def cmd_stats(args: argparse.Namespace, config: RollbotConfig, out: Terminal) -> int:
    """The records of the store rollbot's Slack side uses (REDIS_URL), else this
    machine's embedded one: the runbooks' figures, as a table, JSON or CSV."""
    from datetime import UTC, datetime

    from bot import stats_output
    from bot.retention import backfill_outcomes, outcomes_between
    from bot.stats import compute, parse_window
    from bot.store import RollbackStore, connect

    until = datetime.now(UTC)
    since = until - parse_window(args.since)
    service = check_object_name(args.service) if args.service else None
    if service and service in config.services:
        service = config.services[service].deployment or service
    store = RollbackStore(connect())
    backfill_outcomes(store)  # a store no worker has upgraded yet
    outcomes = outcomes_between(store, since, until)
    figures = compute(outcomes, config.environment_of, since=since, until=until, service=service)
    if args.output == "json":
        out.say(stats_output.as_json(figures))
    elif args.output == "csv":
        out.say(stats_output.as_csv(figures).rstrip("\n"))
    else:
        for line in stats_output.table_lines(figures):
            out.say(line)
    if args.chart:
        Path(args.chart).write_bytes(stats_output.chart_png(figures, service or "Rollbacks"))
        out.complain(f"chart written to {args.chart}")
    return EXIT_OK


def run(argv: Sequence[str] | None = None, out: Terminal | None = None) -> int:
    out = out or Terminal()
    try:
        args = build_parser().parse_args(argv)
        if args.command == "check-config":
            return cmd_check_config(args, out)
        config = load_config(args.config)
        handler = {
            "history": cmd_history,
            "rollback": cmd_rollback,
            "status": cmd_status,
            "stats": cmd_stats,
            "resume": cmd_resume,
        }
        return handler[args.command](args, config, out)
    except AlreadyAtTarget as err:  # nothing to do is a success (kubectl's "skipped rollback")
        out.say(str(err))
        return EXIT_OK
    except RolloutFailed as err:
        out.complain(f"rollout failed: {err}")
        return EXIT_ROLLOUT_FAILED
    except TemporaryError as err:
        out.complain(f"error: {err}")
        return EXIT_UNAVAILABLE
    except (PermanentError, RollbotError) as err:
        out.complain(f"error: {err}")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        out.complain("interrupted")
        return 130


def main() -> None:
    sys.exit(run())
