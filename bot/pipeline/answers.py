"""Answers for one person alone: a workload's rollout history."""

from __future__ import annotations

from bot.errors import PermanentError
from bot.history import history_lines
from bot.pipeline.wiring import Pipeline
from bot.progress import Tone
from bot.store import Job


def on_history(p: Pipeline, job: Job) -> None:
    args = job.args
    try:
        lines = history_lines(p.kube, p.config, args["namespace"], args["workload"])
    except PermanentError as err:
        p.sink.tell(args["channel"], args["user"], str(err), Tone.WARNING)
        return
    p.sink.tell(args["channel"], args["user"], "\n".join(lines))
