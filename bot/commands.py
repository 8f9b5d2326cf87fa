"""The text of `/rollback …` read into a `RollbackRequest`, with errors a person can act on.

This module only splits the text into words and flags; every value and every rule
about which flags go together is checked by `bot.requests`, where the CLI's flags
are checked too. Knows nothing of Slack: the handler passes the text in and shows
the error out.
"""

from __future__ import annotations

import shlex
from typing import Literal

from bot.errors import InvalidInput
from bot.names import quoted
from bot.requests import (
    STRATEGY_NAMES,
    Catalog,
    RollbackRequest,
    UsageProblem,
    parse_backup_id,
    parse_flag,
    parse_record_id,
    parse_replicas,
    parse_traffic,
)

#: `/rollback …` is a line typed by a person; anything longer is not one.
MAX_COMMAND_LENGTH = 4000

#: Flags that ask for an operation rather than a rollback: flag → (strategy, option).
OPERATION_FLAGS = {
    "--restore": ("restore", "backup"),
    "--config": ("restore", "backup"),
    "--flag": ("flag", "flag"),
    "--scale": ("scale", "replicas"),
    "--traffic": ("divert", "serving"),
}
#: Flags that take a value → the keyword of `RollbackRequest.build`.
_VALUE_FLAGS = {
    "-n": "namespace",
    "--namespace": "namespace",
    "--to-revision": "to_revision",
    "--to-tag": "to_tag",
    "--container": "container",
    "--reason": "reason",
    "--strategy": "strategy",
    "--restore": "restore",
    "--config": "config",
    "--flag": "flag",
    "--scale": "scale",
    "--traffic": "traffic",
}
_SWITCHES = {"--dry-run": "dry_run", "--emergency": "emergency", "--permanent": "permanent"}
# Phones and word processors turn "--" into a dash and quotes into curly ones.
_DASHES = ("\u2014", "\u2013")
_CURLY_DOUBLE_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"'})

USAGE = f"""\
/rollback SERVICE [-n NAMESPACE] [--to-revision N | --to-tag TAG [--container C]] [--dry-run]
          [--emergency] [--reason "why"] [--strategy {"|".join(STRATEGY_NAMES)}]
/rollback SERVICE --permanent           (an Argo Rollout: abort, then undo the spec to stable)
/rollback SERVICE --restore ID          (pre-rollback state from rollback ID's backup)
/rollback SERVICE --config ID|latest    (ConfigMaps from a backup, then restart)
/rollback SERVICE --flag NAME=VALUE     (feature flag via an env var)
/rollback SERVICE --scale N             (emergency scale, e.g. 0 and back)
/rollback SERVICE --traffic off|on      (take pods out of / back into the Service)
/rollback history SERVICE [-n NAMESPACE]
/rollback status [ID]
/rollback stats [SERVICE] [--since 30d]   (rollbacks, success rate, MTTR)
/rollback drill SERVICE                  (back one revision and forward again, where drills may run)
/rollback cancel ID
/rollback resume ID                      (GitOps reconciliation held by rollback ID)
/rollback help"""


class CommandError(InvalidInput):
    """A malformed command: what is wrong (`problem`), then the usage."""

    code = "usage"

    def __init__(self, message: str) -> None:
        self.problem = message
        super().__init__(f"{message}\nUsage:\n{USAGE}")


#: What `/rollback …` asks for; the same model the CLI builds.
Command = RollbackRequest


def parse_command(
    text: str,
    default_namespace: str,
    catalog: Catalog | None = None,
) -> RollbackRequest:
    """`catalog` maps a service name to its (namespace, deployment), where known.

    Raises InvalidInput, and nothing else, for any text: a `CommandError` (with the
    usage) for the grammar, a plain InvalidInput for a name the API would refuse.
    """
    if len(text) > MAX_COMMAND_LENGTH:
        raise CommandError(
            f"the command is {len(text)} characters long: keep it to {MAX_COMMAND_LENGTH}"
        )
    try:
        words = shlex.split(text.translate(_CURLY_DOUBLE_QUOTES))
    except ValueError as err:
        raise CommandError(f"could not read the command ({err}); check the quotes") from None
    try:
        return _parse_words(words, default_namespace, catalog)
    except UsageProblem as err:
        raise CommandError(str(err)) from None


def _parse_words(
    words: list[str], default_namespace: str, catalog: Catalog | None
) -> RollbackRequest:
    if not words or words[0] == "help":
        return RollbackRequest("help")
    head = words[0]
    if head == "status":
        if len(words) > 2:
            raise UsageProblem("status takes at most one rollback id")
        return RollbackRequest("status", record_id=words[1] if len(words) == 2 else "")
    if head == "cancel":
        if len(words) != 2:
            raise UsageProblem("cancel takes one rollback id, e.g. /rollback cancel rb-1a2b3c4d")
        return RollbackRequest("cancel", record_id=parse_record_id("cancel", words[1]))
    if head == "resume":
        if len(words) != 2:
            raise UsageProblem("resume takes one rollback id, e.g. /rollback resume rb-1a2b3c4d")
        return RollbackRequest("resume", record_id=parse_record_id("resume", words[1]))
    if head == "stats":
        return _parse_stats(words[1:], catalog)
    if head == "drill":
        if len(words) != 2 or words[1].startswith("-"):
            raise UsageProblem("drill takes one service of the catalog: /rollback drill SERVICE")
        return RollbackRequest("drill", service=words[1], workload=words[1])
    action: Literal["rollback", "history"] = "rollback"
    if head == "history":
        action, words = "history", words[1:]
    service: str | None = None
    values: dict[str, str] = {}
    switches: dict[str, bool] = {}
    rest = list(words)
    while rest:
        word = rest.pop(0)
        if word.startswith("--") and "=" in word:
            word, value = word.split("=", 1)
            if word in _SWITCHES:
                raise UsageProblem(f"{word} takes no value")
            rest.insert(0, value)
        if word in _VALUE_FLAGS:
            if not rest:
                raise UsageProblem(f"{word} needs a value")
            key = _VALUE_FLAGS[word]
            if key in values:
                raise UsageProblem(f"{word} is given twice: give it once")
            values[key] = rest.pop(0)
        elif word in _SWITCHES:
            switches[_SWITCHES[word]] = True
        elif word.startswith("-"):
            raise UsageProblem(f"unknown flag {_shown_flag(word)}")
        elif word.startswith(_DASHES) and (meant := _meant_flag(word)):
            raise UsageProblem(
                f"{_shown_flag(word)} looks like {meant} with its dashes turned into a dash: "
                f"type {meant}"
            )
        elif service is not None:
            raise UsageProblem(f"one service at a time: got {quoted(service)} and {quoted(word)}")
        else:
            service = word
    if service is None:
        raise UsageProblem("which service? name the deployment to roll back")
    return RollbackRequest.build(
        action,
        service,
        default_namespace=default_namespace,
        catalog=catalog,
        namespace=values.get("namespace"),
        to_revision=values.get("to_revision"),
        to_tag=values.get("to_tag"),
        container=values.get("container"),
        strategy=values.get("strategy"),
        restore=values.get("restore"),
        config=values.get("config"),
        flag=values.get("flag"),
        scale=values.get("scale"),
        traffic=values.get("traffic"),
        reason=values.get("reason"),
        dry_run=switches.get("dry_run", False),
        emergency=switches.get("emergency", False),
        permanent=switches.get("permanent", False),
    )


def _parse_stats(words: list[str], catalog: Catalog | None) -> RollbackRequest:
    """`stats [SERVICE] [--since 30d]`."""
    service, since = "", ""
    rest = list(words)
    while rest:
        word = rest.pop(0)
        if word.startswith("--since"):
            if since:
                raise UsageProblem("--since is given twice: give it once")
            value = word.partition("=")[2] if "=" in word else (rest.pop(0) if rest else "")
            if not value or word not in ("--since", f"--since={value}"):
                raise UsageProblem("--since needs a window, e.g. --since 30d")
            since = value
        elif word.startswith(("-", *_DASHES)):
            raise UsageProblem(f"stats takes a service and --since only, not {_shown_flag(word)}")
        elif service:
            raise UsageProblem(f"one service at a time: got {quoted(service)} and {quoted(word)}")
        else:
            service = word
    _, deployment = (catalog or {}).get(service, (None, None)) if service else (None, None)
    return RollbackRequest(
        "stats", service=service, workload=deployment or service, since=since or "30d"
    )


def _shown_flag(word: str) -> str:
    """A flag as typed, bare when it reads as one, else quoted (it may be anything)."""
    if len(word) <= 40 and word.isascii() and word.isprintable():
        return word
    return quoted(word)


def _meant_flag(word: str) -> str | None:
    """The flag a word that starts with a dash character was typed as, if any."""
    name = word[1:].split("=", 1)[0]
    for flag in (f"--{name}", f"-{name}"):
        if flag in _VALUE_FLAGS or flag in _SWITCHES:
            return flag
    return None


def operation(flag: str, value: str) -> tuple[str, dict[str, str]]:
    """The strategy and options an operation flag asks for, its value checked
    (kept for `bot.cli`; new code builds a `RollbackRequest`)."""
    strategy, key = OPERATION_FLAGS[flag]
    if flag in ("--restore", "--config"):
        what = "config" if flag == "--config" else "all"
        return strategy, {key: parse_backup_id(flag, value), "what": what}
    if flag == "--flag":
        return strategy, {key: "=".join(parse_flag(value))}
    if flag == "--scale":
        return strategy, {key: str(parse_replicas(value))}
    return strategy, {key: "true" if parse_traffic(value) else "false"}
