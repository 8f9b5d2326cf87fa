"""The text of `/rollback …` parsed into a request, with errors a person can act on.

Knows nothing of Slack: the handler passes the text in and shows the error out.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Literal

from bot.errors import InvalidInput
from bot.names import check_namespace, check_object_name

USAGE = """\
/rollback SERVICE [-n NAMESPACE] [--to-revision N | --to-tag TAG] [--dry-run]
          [--emergency] [--reason "why"]
/rollback history SERVICE [-n NAMESPACE]
/rollback status [ID]
/rollback cancel ID
/rollback help"""


class CommandError(InvalidInput):
    code = "usage"

    def __init__(self, message: str) -> None:
        super().__init__(f"{message}\nUsage:\n{USAGE}")


@dataclass(frozen=True)
class Command:
    action: Literal["rollback", "history", "status", "cancel", "help"]
    workload: str = ""
    namespace: str = ""
    to_revision: int = 0
    dry_run: bool = False
    reason: str = ""
    emergency: bool = False
    record_id: str = ""
    to_tag: str | None = None


def _int(flag: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise CommandError(f"{flag} takes a revision number, not {value!r}") from None
    if number < 0:
        raise CommandError(f"{flag} takes 0 (the previous revision) or a revision number")
    return number


def parse_command(
    text: str,
    default_namespace: str,
    catalog: dict[str, tuple[str | None, str | None]] | None = None,
) -> Command:
    """`catalog` maps a service name to its (namespace, deployment), where known."""
    try:
        words = shlex.split(text)
    except ValueError as err:
        raise CommandError(f"could not read the command ({err}); check the quotes") from None
    if not words or words[0] == "help":
        return Command("help")
    head = words[0]
    if head == "status":
        if len(words) > 2:
            raise CommandError("status takes at most one rollback id")
        return Command("status", record_id=words[1] if len(words) == 2 else "")
    if head == "cancel":
        if len(words) != 2:
            raise CommandError("cancel takes one rollback id, e.g. /rollback cancel rb-1a2b3c4d")
        return Command("cancel", record_id=words[1])
    action: Literal["rollback", "history"] = "rollback"
    if head == "history":
        action, words = "history", words[1:]
    workload, namespace, to_revision, dry_run, reason = "", default_namespace, 0, False, ""
    emergency = explicit_namespace = False
    to_tag: str | None = None
    rest = list(words)
    while rest:
        word = rest.pop(0)
        if word in ("-n", "--namespace", "--to-revision", "--reason", "--to-tag"):
            if not rest:
                raise CommandError(f"{word} needs a value")
            value = rest.pop(0)
            if word in ("-n", "--namespace"):
                namespace, explicit_namespace = value, True
            elif word == "--to-revision":
                to_revision = _int(word, value)
            elif word == "--to-tag":
                to_tag = value
            else:
                reason = value
        elif word.startswith("--to-revision="):
            to_revision = _int("--to-revision", word.split("=", 1)[1])
        elif word.startswith("--reason="):
            reason = word.split("=", 1)[1]
        elif word == "--dry-run":
            dry_run = True
        elif word == "--emergency":
            emergency = True
        elif word.startswith("-"):
            raise CommandError(f"unknown flag {word}")
        elif workload:
            raise CommandError(f"one service at a time: got {workload!r} and {word!r}")
        else:
            workload = word
    if not workload:
        raise CommandError("which service? name the deployment to roll back")
    known_namespace, deployment = (catalog or {}).get(workload, (None, None))
    if known_namespace and not explicit_namespace:
        namespace = known_namespace
    workload = deployment or workload
    if to_tag is not None and to_revision:
        raise CommandError("--to-tag and --to-revision name two different targets: pick one")
    if action == "history" and (to_revision or dry_run or reason or emergency):
        raise CommandError("history takes only a service and -n NAMESPACE")
    return Command(
        action,
        check_object_name(workload),
        check_namespace(namespace),
        to_revision,
        dry_run,
        reason,
        emergency=emergency,
        to_tag=to_tag,
    )
