"""The runbooks' hand-filled templates, filled in by rollbot after a rollback.

Each template under `templates/` is Jinja2 *text* (Markdown, Slack mrkdwn or
plain text), rendered from one plain dict, the `ReportContext` (documented in
`bot/incident.py`, which builds it from a rollback record); `render_report_files`
turns a finished record into the files posted with it. The renderer adds a few derived
facts (durations, a status sentence, default next steps) so that every template
words them the same way; see `template_variables`.

Facts rollbot cannot know (root cause, customer impact) render as a marked
placeholder for a person to fill in, never as invented data. A missing optional
fact renders as "unknown"; a misspelled variable fails (StrictUndefined), and a
broken user template becomes a `ReportTemplateError` naming its file and line.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from jinja2 import (
    ChoiceLoader,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
)
from jinja2.sandbox import SandboxedEnvironment

from bot.backup import redacted_backup
from bot.durations import format_duration
from bot.errors import InvalidInput
from bot.incident import NO_NAMES, ReportContext, report_context
from bot.records import RollbackRecord


#: The templates shipped with rollbot; a user's folder may override any of them by file name.
def _builtin_template_dir() -> Path:
    """templates/ beside bot/ in a checkout; share/rollbot/templates when installed."""
    beside = Path(__file__).resolve().parents[1] / "templates"
    if beside.is_dir():
        return beside
    return Path(sys.prefix) / "share" / "rollbot" / "templates"


BUILTIN_TEMPLATE_DIR = _builtin_template_dir()

_REQUIRED = ReportContext.__required_keys__
_LIST_FIELDS = (
    "from_images",
    "to_images",
    "changes",
    "timeline",
    "health_before",
    "health_after",
    "backup_files",
    "next_steps",
)

#: The placeholder for a fact only a person can supply.
TO_BE_FILLED_IN = "_(to be filled in by {who})_"

_STATUS: dict[str, str] = {
    "succeeded": "Service restored and healthy",
    "failed": "Rollback failed: the service is not restored",
    "rolled back but unhealthy": "Rolled back, but the service is not healthy yet",
    "cancelled": "Rollback cancelled",
    "expired": "Rollback request expired before it was carried out",
    "in progress": "Rollback in progress",
}

# The runbooks' follow-up sections (jarvis-api "Post-Rollback Actions", family-assistant
# "Post-Rollback Actions" and its report's NEXT STEPS, todo-app "Post-Rollback Checklist").
_AFTER_A_ROLLBACK = [
    "Monitor error rates, pod health and key metrics for 30 minutes",
    "Root-cause analysis: find out why the deployment failed",
    "Plan the fix forward: fix, test it in staging, then redeploy",
    "Add tests or pipeline checks that would have caught this before production",
    "Schedule the postmortem and update the runbook",
]
_NOT_RESTORED = [
    "Escalate: the service is still unhealthy (on-call engineer, then the DevOps lead)",
    "Check the pods' logs and events, then choose an earlier revision or a fix forward",
    "Root-cause analysis: find out why the deployment failed",
    "Schedule the postmortem and update the runbook",
]
_NOTHING_DONE = [
    "If the problem persists, request the rollback again",
    "Root-cause analysis: find out why the deployment was suspected",
]


class ReportTemplateError(InvalidInput):
    """A report template cannot be rendered: a syntax error, an undefined variable, no such file."""

    code = "report_template_invalid"

    def __init__(self, problem: str, template: str | None = None, line: int | None = None) -> None:
        self.template = template
        self.line = line
        where = ""
        if template is not None:
            where = f"report template {template}" + (f", line {line}" if line else "") + ": "
        super().__init__(where + problem)


def default_next_steps(outcome: str) -> list[str]:
    """The runbooks' follow-up actions that fit this outcome."""
    if outcome in ("failed", "rolled back but unhealthy"):
        return list(_NOT_RESTORED)
    if outcome in ("cancelled", "expired"):
        return list(_NOTHING_DONE)
    if outcome == "in progress":
        return ["Follow the rollout in the rollback thread until it completes", *_AFTER_A_ROLLBACK]
    return list(_AFTER_A_ROLLBACK)


def template_variables(context: ReportContext | Mapping[str, Any]) -> dict[str, Any]:
    """What the templates see: the context with every optional field present, plus

    - `time_to_restore`: requested → succeeded, like "3m12s", or None when not restored;
    - `time_to_restore_text`: the same as a person reads it, "not restored (yet)" included;
    - `rollout_duration`: started_at → finished_at, or None while unknown;
    - `requested_at`, `restored_at`: the ISO times those two durations measure from/to;
    - `restored`: whether the outcome is "succeeded";
    - `status`: one sentence for the outcome, e.g. "Service restored and healthy";
    - `next_steps`: the context's, or `default_next_steps(outcome)` when it has none.
    """
    missing = sorted(_REQUIRED - context.keys())
    if missing:
        raise ValueError(f"report context lacks required fields: {', '.join(missing)}")
    variables: dict[str, Any] = {key: None for key in ReportContext.__optional_keys__}
    variables.update(context)
    for key in _LIST_FIELDS:
        variables[key] = list(variables[key] or [])
    variables["timeline"] = [
        {"actor": None, **entry} for entry in _in_time_order(variables["timeline"])
    ]
    for key in ("health_before", "health_after"):
        variables[key] = [{"detail": None, **check} for check in variables[key]]

    outcome = str(variables["outcome"])
    requested_at = _state_time(variables["timeline"], "requested")
    if requested_at is None and variables["timeline"]:
        requested_at = variables["timeline"][0]["at"]
    requested_at = requested_at or variables["started_at"]
    restored_at = None
    if outcome == "succeeded":
        restored_at = _state_time(variables["timeline"], "succeeded") or variables["finished_at"]

    time_to_restore = _elapsed(requested_at, restored_at)
    if time_to_restore is not None:
        time_to_restore_text = time_to_restore
    elif outcome == "succeeded":
        time_to_restore_text = "unknown"
    elif outcome == "in progress":
        time_to_restore_text = "not restored yet"
    else:
        time_to_restore_text = "not restored"
    variables.update(
        requested_at=requested_at,
        restored_at=restored_at,
        restored=outcome == "succeeded",
        time_to_restore=time_to_restore,
        time_to_restore_text=time_to_restore_text,
        rollout_duration=_elapsed(variables["started_at"], variables["finished_at"]),
        status=_STATUS.get(outcome, outcome),
        next_steps=variables["next_steps"] or default_next_steps(outcome),
    )
    return variables


class TemplateRenderer:
    """Renders the report templates; templates in `override_dir` win by file name."""

    def __init__(self, override_dir: Path | None = None) -> None:
        self.folders = [BUILTIN_TEMPLATE_DIR]
        if override_dir is not None:
            if not override_dir.is_dir():
                raise ReportTemplateError(f"template folder {override_dir} is not a folder")
            self.folders.insert(0, override_dir)
        self._env = SandboxedEnvironment(
            loader=ChoiceLoader([FileSystemLoader(folder) for folder in self.folders]),
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters.update(known=_known, when=_when, pods=_pods, health=_health)
        self._env.globals["to_fill"] = _to_fill

    @staticmethod
    def builtin_names() -> list[str]:
        """File names of the built-in templates ("_"-prefixed files are partials, not reports)."""
        return sorted(
            path.name for path in BUILTIN_TEMPLATE_DIR.glob("*.j2") if not path.name.startswith("_")
        )

    def render(self, name: str, context: ReportContext) -> str:
        """The text of template `name` (a file name, e.g. "incident_report.md.j2")."""
        variables = template_variables(context)
        try:
            return self._env.get_template(name).render(variables)
        except TemplateSyntaxError as err:
            problem = f"syntax error: {err.message or err}"
            raise ReportTemplateError(problem, err.filename or name, err.lineno) from err
        except TemplateNotFound as err:
            file, line = _template_location(err.__traceback__)
            searched = ", ".join(str(folder) for folder in self.folders)
            problem = f"no template named {err.name!r} (looked in {searched})"
            raise ReportTemplateError(problem, file, line) from err
        except (TemplateError, TypeError, ValueError, ArithmeticError) as err:
            file, line = _template_location(err.__traceback__)
            raise ReportTemplateError(str(err), file or name, line) from err

    def render_all(self, context: ReportContext) -> dict[str, str]:
        """Every built-in template's name → its text (with the user's overrides applied)."""
        return {name: self.render(name, context) for name in self.builtin_names()}


#: The messages posted together as one file, each under its title.
COMMUNICATIONS = (
    ("Slack alert", "slack_alert.txt.j2"),
    ("Email", "email.txt.j2"),
    ("Incident notification", "incident_notification.txt.j2"),
)


def render_report_files(
    record: RollbackRecord,
    renderer: TemplateRenderer,
    names: Mapping[str, str] = NO_NAMES,
    *,
    backup: dict[str, Any] | None = None,
) -> tuple[str, dict[str, str]]:
    """What is posted when a rollback ends: the summary (the "rollback complete"
    message) and the files by name: the incident report, the rollback report, the
    communications and, given the stored `backup`, its redacted copy (never the backup
    itself). People are shown by name (`names`: user id → name), else by id."""
    context = report_context(record, names)
    files = {
        f"{record.id}-incident-report.md": renderer.render("incident_report.md.j2", context),
        f"{record.id}-rollback-report.md": renderer.render("rollback_report.md.j2", context),
    }
    if backup is not None:
        files[f"{record.id}-backup.json"] = json.dumps(redacted_backup(backup), indent=2)
    files[f"{record.id}-communications.txt"] = "\n\n".join(
        f"===== {title} =====\n{renderer.render(name, context)}" for title, name in COMMUNICATIONS
    )
    return renderer.render("rollback_complete.txt.j2", context), files


def _template_location(tb: TracebackType | None) -> tuple[str | None, int | None]:
    """The innermost template frame: Jinja rewrites them to carry the template file and line."""
    file, line = None, None
    while tb is not None:
        frame_globals = tb.tb_frame.f_globals
        if "__jinja_exception__" in frame_globals:
            file, line = str(frame_globals.get("__file__")), tb.tb_lineno
        tb = tb.tb_next
    return file, line


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _elapsed(start: str | None, end: str | None) -> str | None:
    began, ended = _parse_time(start), _parse_time(end)
    if began is None or ended is None or ended < began:
        return None
    return format_duration((ended - began).total_seconds())


def _state_time(timeline: Sequence[Mapping[str, Any]], state: str) -> str | None:
    for entry in timeline:
        if str(entry.get("state", "")).lower() == state:
            return str(entry["at"])
    return None


def _in_time_order(timeline: list[Any]) -> list[Any]:
    """Oldest first; a timeline with an unreadable time keeps the order it was given."""
    keyed = []
    for position, entry in enumerate(timeline):
        moment = _parse_time(entry.get("at"))
        if moment is None:
            return timeline
        keyed.append((moment, position, entry))
    return [entry for _, _, entry in sorted(keyed, key=lambda item: item[:2])]


# Filters and globals the templates (and users' overrides) may use.


def _to_fill(who: str = "the incident lead") -> str:
    return TO_BE_FILLED_IN.format(who=who)


def _known(value: Any, otherwise: str = "unknown") -> str:
    """The value as text; a list joined by commas; `otherwise` when there is nothing."""
    if value is None or value == "" or value == []:
        return otherwise
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return str(value)


def _when(value: str | None, otherwise: str = "unknown") -> str:
    """An ISO-8601 time as "2024-01-17 14:30:00 UTC"; text that is not one, unchanged."""
    moment = _parse_time(value)
    if moment is None:
        return value or otherwise
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _pods(counts: Mapping[str, int] | None) -> str:
    if not counts:
        return "unknown"
    restarts = counts["restarts"]
    plural = "" if restarts == 1 else "s"
    return f"{counts['ready']}/{counts['total']} ready, {restarts} restart{plural}"


def _health(checks: Sequence[Mapping[str, Any]]) -> str:
    """A verdict over health checks: "healthy (3/3 checks passed)", "unhealthy: ..."."""
    if not checks:
        return "unknown (no checks recorded)"
    failed = [str(check["name"]) for check in checks if not check["ok"]]
    if not failed:
        return f"healthy ({len(checks)}/{len(checks)} checks passed)"
    return f"unhealthy ({len(failed)} of {len(checks)} checks failed: {', '.join(failed)})"
