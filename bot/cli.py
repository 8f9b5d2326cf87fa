"""`rollbot` on a terminal or in a CI job: the runbooks' `rollback.sh previous
--force` / `--dry-run`, with a plan, a confirmation and live progress.

Exit codes a CI job can rely on:
  0  rolled back and healthy (or nothing to do: already at the target)
  1  the rollback was applied but the rollout failed or timed out
  2  bad input or a refusal: nothing was changed
  3  the Kubernetes API could not be reached: nothing was changed
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from bot.commands import operation
from bot.config import RollbotConfig, load_config
from bot.deployments import Revision
from bot.durations import format_duration, parse_duration
from bot.engine import (
    AppliedRollback,
    RollbackPlan,
    apply_rollback,
    change_cause_for,
    follow_rollout,
    plan_rollback,
    read_history,
)
from bot.errors import (
    AlreadyAtTarget,
    InvalidInput,
    PermanentError,
    RollbotError,
    RolloutFailed,
    TemporaryError,
)
from bot.history import history_lines
from bot.kube import Kube
from bot.names import check_namespace, check_object_name
from bot.rollout import RolloutPhase, RolloutState, rollout_state, watch_rollout
from bot.strategies import Context, HelmSettings, Plan, Request, resolve
from bot.strategies import get as get_strategy

Body = dict[str, Any]

EXIT_OK, EXIT_ROLLOUT_FAILED, EXIT_BAD_INPUT, EXIT_UNAVAILABLE = 0, 1, 2, 3


class UsageError(InvalidInput):
    code = "usage"


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad flags as rollbot's exit code 2 with a clear line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rollbot", description="Roll Kubernetes workloads back, safely.")
    parser.add_argument("--config", help="config file (default: $ROLLBOT_CONFIG)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG)")
    parser.add_argument("--context", help="kubeconfig context")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def workload(sub: argparse.ArgumentParser, what: str = "Deployment name") -> None:
        sub.add_argument("deployment", help=what)
        sub.add_argument(
            "-n", "--namespace", help="namespace (default: the catalog's, else the context's)"
        )

    history = commands.add_parser("history", help="what a Deployment or service can go back to")
    workload(history, "Deployment, or a service of the catalog")
    history.add_argument("-o", "--output", choices=["table", "json"], default="table")

    rollback = commands.add_parser("rollback", help="roll a Deployment or a service back")
    workload(rollback, "Deployment, or a service of the catalog")
    rollback.add_argument(
        "--to-revision",
        type=int,
        default=0,
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
        choices=["undo", "helm", "blue-green"],
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
    rollback.add_argument("--helm", default="helm", help="the helm binary (strategy helm)")
    rollback.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    rollback.add_argument("--timeout", default="5m", help="how long to wait for the rollout")
    rollback.add_argument("--reason", default="", help="why: recorded in the change-cause")
    rollback.add_argument("--actor", default="", help="who (default: $ROLLBOT_ACTOR or $USER)")

    status = commands.add_parser("status", help="show (and follow) a Deployment's rollout")
    workload(status)
    status.add_argument("--no-watch", action="store_true", help="print once, do not follow")
    status.add_argument("--timeout", default="5m")

    check = commands.add_parser("check-config", help="validate a config file")
    check.add_argument("file", nargs="?", help="config file (default: $ROLLBOT_CONFIG)")
    return parser


# -- rendering --------------------------------------------------------------------


def _images(revision: Revision | None) -> str:
    if revision is None:
        return "?"
    # The registry path is noise in a table: "ghcr.io/acme/web:1.5" reads as "web:1.5".
    return ", ".join(image.split("=", 1)[1].rsplit("/", 1)[-1] for image in revision.images)


def history_table(name: str, history: list[Revision]) -> Table:
    table = Table(title=f"deployment/{name}", title_justify="left")
    for column in ("REVISION", "CHANGE-CAUSE", "IMAGES", "READY", "CREATED"):
        table.add_column(column)
    for rev in history:
        number = f"{rev.number} (current)" if rev.current else str(rev.number)
        ready = f"{rev.ready_replicas}/{rev.replicas}" if rev.replicas else "-"
        table.add_row(number, rev.change_cause or "<none>", _images(rev), ready, rev.created)
    return table


def print_plan(console: Console, plan: RollbackPlan) -> None:
    current = plan.current
    console.print(f"[bold]deployment/{plan.name}[/] in namespace [bold]{plan.namespace}[/]")
    console.print(f"  current: revision {current.number if current else '?'}  {_images(current)}")
    where = (
        f"image tag {plan.to_tag}"
        if plan.to_tag and not plan.target.number
        else (f"revision {plan.target.number}")
    )
    console.print(
        f"  target:  {where}  {_images(plan.target)}"
        + (f"  ({plan.target.change_cause})" if plan.target.change_cause else "")
    )
    if plan.already_at_target:
        console.print("  nothing would change: the current template already matches the target")
        return
    console.print("  what changes:")
    for change in plan.changes:
        console.print(f"    • {change.describe()}", markup=False)
    if plan.paused:
        console.print("  [yellow]the deployment is paused: resume it before rolling back[/]")


class _ProgressView:
    """One progress bar on a terminal; one line per state change in a CI log."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress: Progress | None = None
        self.task = TaskID(0)
        if console.is_terminal:
            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} available"),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )

    def __enter__(self) -> _ProgressView:
        if self.progress is not None:
            self.progress.start()
            self.task = self.progress.add_task("starting", total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def update(self, state: RolloutState) -> None:
        if self.progress is not None:
            self.progress.update(
                self.task,
                description=state.phase.value.replace("_", " "),
                total=state.desired,
                completed=min(state.available, state.updated),
            )
        else:
            self.console.print(state.message, markup=False, highlight=False)


def follow(console: Console, states: object) -> RolloutState | None:
    last = None
    with _ProgressView(console) as view:
        for state in states:  # type: ignore[attr-defined]
            view.update(state)
            last = state
    return last


# -- commands ---------------------------------------------------------------------


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


def cmd_history(
    args: argparse.Namespace, kube: Kube, config: RollbotConfig, console: Console
) -> int:
    name = check_object_name(args.deployment)
    entry = config.services.get(name)
    if args.namespace is None and entry is not None and entry.namespace:
        args.namespace = entry.namespace
    namespace = _namespace(args)
    config.check_namespace_allowed(namespace)
    if entry is not None and (entry.deployments or resolve(config, name) != "undo"):
        # A Helm release, a blue-green pair, several Deployments: as its strategy sees it.
        for line in history_lines(kube, config, namespace, name):
            console.print(
                line.replace("*", "").replace("`", ""),
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        return EXIT_OK
    name = (entry.deployment if entry else None) or name
    _, history = read_history(kube, namespace, name)
    if args.output == "json":
        rows = [
            {k: v for k, v in asdict(r).items() if k not in ("template", "annotations")}
            for r in history
        ]
        console.print_json(json.dumps(rows))
    else:
        console.print(history_table(name, history))
    return EXIT_OK


def _confirm(console: Console, plan: RollbackPlan) -> bool:
    if not sys.stdin.isatty():
        raise UsageError(
            "not running on a terminal, so rollbot cannot ask: pass --yes to "
            "roll back without confirmation, or --dry-run to only look"
        )
    answer = console.input(
        f"Roll deployment/{plan.name} back to revision {plan.target.number}? [y/N] "
    )
    return answer.strip().lower() in ("y", "yes")


def _operation(args: argparse.Namespace) -> tuple[str, dict[str, str]]:
    """The operation flag given, as the Slack command's (strategy, options)."""
    if args.restore_from or args.config_from:
        return "restore", {
            "backup": args.restore_from or args.config_from,
            "what": "all" if args.restore_from else "config",
        }
    if args.flag is not None:
        return operation("--flag", args.flag)
    if args.scale is not None:
        return operation("--scale", args.scale)
    if args.traffic is not None:
        return operation("--traffic", args.traffic)
    return "", {}


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


def print_strategy_plan(console: Console, plan: Plan) -> None:
    console.print(
        f"[bold]{escape(plan.subject)}[/] in namespace [bold]{plan.namespace}[/] ({plan.strategy})"
    )
    console.print(f"  current: {plan.current}", markup=False, soft_wrap=True)
    console.print(f"  target:  {plan.target}", markup=False, soft_wrap=True)
    for fact in plan.facts:
        console.print(f"  {fact}", markup=False, soft_wrap=True)
    if plan.nothing_to_do:
        console.print(f"  nothing would change: {plan.nothing_to_do}", markup=False, soft_wrap=True)
        return
    console.print("  what changes:")
    for change in plan.changes:
        console.print(f"    • {change}", markup=False, soft_wrap=True)


class _CliProgress:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.last: dict[str, str] = {}

    def milestone(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def rollout(self, workload: str, state: RolloutState) -> None:
        if self.last.get(workload) != state.message:  # one line per change, whatever the view
            self.last[workload] = state.message
            self.console.print(state.message, markup=False, highlight=False, soft_wrap=True)


def cmd_strategy(
    args: argparse.Namespace,
    kube: Kube,
    config: RollbotConfig,
    console: Console,
    strategy: str,
    request: Request,
) -> int:
    ctx = Context(
        kube=kube,
        config=config,
        timeout=parse_duration(args.timeout),
        helm=HelmSettings(args.helm, args.kubeconfig, args.context),
        backups=_backup_file,
    )
    chosen = get_strategy(strategy)
    plan = chosen.plan(ctx, request)
    print_strategy_plan(console, plan)
    if args.dry_run:
        console.print("dry run: nothing was changed")
        return EXIT_OK
    if plan.nothing_to_do:
        console.print(f"nothing to do: {plan.nothing_to_do}", markup=False)
        return EXIT_OK
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(
                "not running on a terminal, so rollbot cannot ask: pass --yes to "
                "go ahead without confirmation, or --dry-run to only look"
            )
        answer = console.input(f"{strategy}: {plan.current} → {plan.target}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            console.print("cancelled: nothing was changed")
            return EXIT_BAD_INPUT
    actor = args.actor or os.environ.get("ROLLBOT_ACTOR") or getpass.getuser()
    cause = f"rollbot: {strategy} rollback by {actor}" + (f": {args.reason}" if args.reason else "")
    started = time.monotonic()
    done = chosen.apply(ctx, request.namespace, plan.pins, cause, _CliProgress(console))
    console.print(f"[green]✓[/] {escape(done)} in {format_duration(time.monotonic() - started)}")
    return EXIT_OK


def cmd_rollback(
    args: argparse.Namespace, kube: Kube, config: RollbotConfig, console: Console
) -> int:
    name = check_object_name(args.deployment)
    entry = config.services.get(name)
    asked, options = _operation(args)
    if asked and (args.to_revision or args.to_tag):
        raise UsageError("an operation (--restore-from, --flag…) does not go with a target")
    strategy = resolve(config, name, asked or args.strategy or "")
    if args.namespace is None and entry is not None and entry.namespace:
        args.namespace = entry.namespace
    if strategy != "undo":
        if args.container or args.force:
            raise UsageError("--container and --force go with a one-Deployment --to-tag")
        request = Request(_namespace(args), name, strategy, args.to_revision, args.to_tag, options)
        config.check_namespace_allowed(request.namespace)
        return cmd_strategy(args, kube, config, console, strategy, request)
    if entry is not None and entry.deployment:
        args.deployment = entry.deployment
    timeout = parse_duration(args.timeout)
    if args.to_revision < 0:
        raise UsageError(
            f"--to-revision must be 0 (previous) or a revision number, not {args.to_revision}"
        )
    if args.to_tag is not None and args.to_revision:
        raise UsageError("--to-tag and --to-revision name two different targets: pick one")
    if (args.container or args.force) and args.to_tag is None:
        raise UsageError("--container and --force go with --to-tag")
    namespace = _namespace(args)
    plan = plan_rollback(
        kube,
        config,
        namespace,
        check_object_name(args.deployment),
        args.to_revision,
        to_tag=args.to_tag,
        container=args.container,
        allow_unknown_tag=args.force,
    )
    print_plan(console, plan)
    if args.dry_run:
        if plan.paused:
            raise PermanentError(
                "dry run: a real rollback would be refused because the deployment is paused"
            )
        console.print("dry run: nothing was changed")
        return EXIT_OK
    if plan.already_at_target:
        raise AlreadyAtTarget(plan.name, plan.target.number)
    if not args.yes and not _confirm(console, plan):
        console.print("cancelled: nothing was changed")
        return EXIT_BAD_INPUT
    actor = args.actor or os.environ.get("ROLLBOT_ACTOR") or getpass.getuser()
    started = time.monotonic()
    applied: AppliedRollback = apply_rollback(
        kube, config, plan, change_cause=change_cause_for(plan, actor, args.reason)
    )
    target = plan.target.number or f"image tag {plan.to_tag}"
    console.print(
        f"rollback applied: revision {plan.current.number if plan.current else '?'}"
        f" → {target} (it becomes revision {plan.next_revision_number})"
    )
    follow(console, follow_rollout(kube, applied, timeout))
    console.print(
        f"[green]✓[/] deployment/{plan.name} rolled back to "
        f"{_images(plan.target)} and healthy in "
        f"{format_duration(time.monotonic() - started)}"
    )
    return EXIT_OK


def cmd_status(
    args: argparse.Namespace, kube: Kube, config: RollbotConfig, console: Console
) -> int:
    namespace = _namespace(args)
    config.check_namespace_allowed(namespace)
    name = check_object_name(args.deployment)
    if args.no_watch:
        state = rollout_state(kube.get_deployment(namespace, name))
        console.print(state.message, markup=False, highlight=False)
        if state.phase is RolloutPhase.DEADLINE_EXCEEDED:
            return EXIT_ROLLOUT_FAILED
        return EXIT_OK
    last = follow(console, watch_rollout(kube, namespace, name, parse_duration(args.timeout)))
    if last is not None:
        console.print(last.message, markup=False, highlight=False)
    return EXIT_OK


def cmd_check_config(args: argparse.Namespace, console: Console) -> int:
    path = args.file or args.config or os.environ.get("ROLLBOT_CONFIG")
    if not path:
        raise UsageError("no config file given: pass one, or set ROLLBOT_CONFIG")
    config = load_config(path)
    console.print(f"{path}: valid ({len(config.namespaces) or 'any'} namespaces)")
    return EXIT_OK


def run(argv: Sequence[str] | None = None, console: Console | None = None) -> int:
    console = console or Console(highlight=False)
    errors = Console(stderr=True, highlight=False)
    try:
        args = build_parser().parse_args(argv)
        if args.command == "check-config":
            return cmd_check_config(args, console)
        config = load_config(args.config)
        kube = Kube.from_kubeconfig(args.kubeconfig, args.context)
        handler = {"history": cmd_history, "rollback": cmd_rollback, "status": cmd_status}
        return handler[args.command](args, kube, config, console)
    except AlreadyAtTarget as err:
        console.print(str(err), markup=False)
        return EXIT_OK
    except RolloutFailed as err:
        errors.print(f"[red]rollout failed:[/] {escape(str(err))}")
        return EXIT_ROLLOUT_FAILED
    except PermanentError as err:
        errors.print(f"[red]error:[/] {escape(str(err))}")
        return EXIT_BAD_INPUT
    except TemporaryError as err:
        errors.print(f"[red]error:[/] {escape(str(err))}")
        return EXIT_UNAVAILABLE
    except RollbotError as err:
        errors.print(f"[red]error:[/] {escape(str(err))}")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        errors.print("interrupted")
        return 130


def main() -> None:
    sys.exit(run())
