"""The worker's pipeline: a small job runner and one module per stage.

- `runner.py` — take a job, retry it if it failed for a while, dispatch it by
  kind to a stage (the table is `STAGES`).
- `assess.py` — plan and assess a request, then ask: the confirmation, a dry
  run's answer, or an emergency's start.
- `execute.py` — an approved rollback: lock → backup → apply → verify → report.
- `aftercare.py` — follow-ups, re-assessment of a "monitor" recommendation,
  and the expiry of an unanswered confirmation.
- `autotrigger.py` — a rollback opened for each opted-in service whose fresh
  revision failed.
- `answers.py` — answers to one person (history).

Each stage is idempotent on the record's state: a job delivered twice, or
re-delivered after its worker died, finds the record where the first left it
and carries on from there.
"""

from bot.pipeline.runner import Worker
from bot.pipeline.wiring import Pipeline, WorkerKube

__all__ = ["Pipeline", "Worker", "WorkerKube"]
