"""What `rollbot` shows on a terminal or in a CI log: plain lines (no markup, so
Kubernetes text prints as it is), a plan whatever its strategy, the rollouts as
progress bars on a terminal and as one line per change in a log, a history
table. rich is imported only for a bar or a table."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from bot.errors import InvalidInput
from bot.rollout import RolloutState
from bot.strategies import Plan

if TYPE_CHECKING:
    from bot.deployments import Revision


class UsageError(InvalidInput):
    code = "usage"


class Terminal:
    """Plain lines to stdout and stderr (no markup: Kubernetes text prints as it is),
    and whether a person is there to see a progress bar or answer a question."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    @property
    def interactive(self) -> bool:
        return sys.stdout.isatty()

    def say(self, text: str) -> None:
        with self.lock:
            print(text, flush=True)

    def complain(self, text: str) -> None:
        with self.lock:
            print(text, file=sys.stderr, flush=True)

    def ask(self, question: str) -> bool:
        if not sys.stdin.isatty():
            raise UsageError(
                "not running on a terminal, so rollbot cannot ask: pass --yes to "
                "go ahead without confirmation, or --dry-run to only look"
            )
        return input(question).strip().lower() in ("y", "yes")


def short_images(images: Iterable[str]) -> str:
    # The registry path is noise in a table: "ghcr.io/acme/web:1.5" reads as "web:1.5".
    return ", ".join(image.split("=", 1)[-1].rsplit("/", 1)[-1] for image in images)


def print_history_table(name: str, history: list[Revision]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"deployment/{name}", title_justify="left")
    for column in ("REVISION", "CHANGE-CAUSE", "IMAGES", "READY", "CREATED"):
        table.add_column(column)
    for rev in history:
        number = f"{rev.number} (current)" if rev.current else str(rev.number)
        ready = f"{rev.ready_replicas}/{rev.replicas}" if rev.replicas else "-"
        cause = rev.change_cause or "<none>"
        table.add_row(number, cause, short_images(rev.images), ready, rev.created)
    Console(highlight=False).print(table)


def print_plan(out: Terminal, plan: Plan) -> None:
    """What a rollback would do, whatever its strategy."""
    out.say(f"{plan.subject} in namespace {plan.namespace} ({plan.strategy})")
    out.say(f"  current: {plan.current}  {short_images(plan.from_images)}".rstrip())
    out.say(f"  target:  {plan.target}  {short_images(plan.to_images)}".rstrip())
    for fact in plan.facts:
        out.say(f"  {fact}")
    if plan.nothing_to_do:
        out.say(f"  nothing would change: {plan.nothing_to_do}")
        return
    out.say("  what changes:")
    for change in plan.changes:
        out.say(f"    • {change}")


class CliProgress:
    """A strategy's progress: milestones as lines; each workload's rollout as a bar
    on a terminal, and as one line per change of state in a CI log."""

    def __init__(self, out: Terminal) -> None:
        self.out = out
        self.last: dict[str, str] = {}
        self.bars: Any = None
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> CliProgress:
        if self.out.interactive:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.bars = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} available"),
                TimeElapsedColumn(),
                transient=True,
            )
            self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bars is not None:
            self.bars.stop()

    def milestone(self, text: str) -> None:
        if self.bars is not None:
            self.bars.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            self.out.say(text)

    def rollout(self, workload: str, state: RolloutState) -> None:
        if self.bars is None:
            if self.last.get(workload) != state.message:
                self.last[workload] = state.message
                self.out.say(state.message)
            return
        with self.out.lock:
            if workload not in self.tasks:
                self.tasks[workload] = self.bars.add_task(workload, total=None)
            self.bars.update(
                self.tasks[workload],
                description=f"{workload}: {state.phase.value.replace('_', ' ')}",
                total=state.desired,
                completed=min(state.available, state.updated),
            )
