"""The text of `/rollback …` parsed into a request, with errors a person can act on.

Knows nothing of Slack: the handler passes the text in and shows the error out.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Literal

from bot.config import RollbotConfig
from bot.errors import InvalidInput
from bot.names import check_namespace, check_object_name
from bot.strategies import resolve

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
#: Flags that ask for an operation rather than a rollback: flag → (strategy, option).
OPERATION_FLAGS = {
    "--restore": ("restore", "backup"),
    "--config": ("restore", "backup"),
    "--flag": ("flag", "flag"),
    "--scale": ("scale", "replicas"),
    "--traffic": ("divert", "serving"),
}

USAGE = """\
/rollback SERVICE [-n NAMESPACE] [--to-revision N | --to-tag TAG [--container C]] [--dry-run]
          [--emergency] [--reason "why"] [--strategy undo|helm|blue-green]
/rollback SERVICE --restore ID          (pre-rollback state from rollback ID's backup)
/rollback SERVICE --config ID|latest    (ConfigMaps from a backup, then restart)
/rollback SERVICE --flag NAME=VALUE     (feature flag via an env var)
/rollback SERVICE --scale N             (emergency scale, e.g. 0 and back)
/rollback SERVICE --traffic off|on      (take pods out of / back into the Service)
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
    #: The name as typed (a catalog service), before the catalog maps it to a Deployment.
    service: str = ""
    #: `--strategy`, or the operation a flag asks for (restore, flag, scale, divert).
    strategy: str = ""
    options: dict[str, str] = field(default_factory=dict)

    def resolved(self, config: RollbotConfig) -> tuple[str, str]:
        """(strategy, workload): what to do, and the record's name for what it is done to
        (the Deployment for a plain undo; the catalog service otherwise)."""
        strategy = resolve(config, self.service or self.workload, self.strategy)
        if strategy == "undo":
            return strategy, self.workload
        return strategy, check_object_name(self.service or self.workload)


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
    strategy, options = "", dict[str, str]()
    container = ""
    rest = list(words)
    while rest:
        word = rest.pop(0)
        if "=" in word and word.split("=", 1)[0] in OPERATION_FLAGS:
            word, value = word.split("=", 1)
            rest.insert(0, value)
        if word in OPERATION_FLAGS:
            if not rest:
                raise CommandError(f"{word} needs a value")
            if strategy:
                raise CommandError(f"one operation at a time: {word} with --{strategy}")
            try:
                strategy, options = operation(word, rest.pop(0))
            except InvalidInput as err:
                raise CommandError(str(err)) from None
        elif word == "--strategy":
            if not rest:
                raise CommandError("--strategy needs a value: undo, helm or blue-green")
            if strategy:
                raise CommandError("--strategy does not go with an operation flag")
            strategy = rest.pop(0)
            if strategy not in ("undo", "helm", "blue-green"):
                raise CommandError(f"unknown strategy {strategy!r}: use undo, helm or blue-green")
        elif word in ("-n", "--namespace", "--to-revision", "--reason", "--to-tag", "--container"):
            if not rest:
                raise CommandError(f"{word} needs a value")
            value = rest.pop(0)
            if word == "--container":
                container = check_object_name(value, "container")
            elif word in ("-n", "--namespace"):
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
    service = workload
    known_namespace, deployment = (catalog or {}).get(workload, (None, None))
    if known_namespace and not explicit_namespace:
        namespace = known_namespace
    workload = deployment or workload
    if strategy in ("restore", "flag", "scale", "divert") and (to_revision or to_tag):
        raise CommandError("an operation flag does not go with --to-revision or --to-tag")
    if container:
        if to_tag is None:
            raise CommandError("--container goes with --to-tag: the container whose tag to set")
        options = {**options, "container": container}
    if to_tag is not None and to_revision:
        raise CommandError("--to-tag and --to-revision name two different targets: pick one")
    if action == "history" and (to_revision or dry_run or reason or emergency or strategy):
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
        service=check_object_name(service),
        strategy=strategy,
        options=options,
    )


def operation(flag: str, value: str) -> tuple[str, dict[str, str]]:
    """The strategy and options an operation flag asks for, its value checked."""
    strategy, key = OPERATION_FLAGS[flag]
    if flag in ("--restore", "--config"):
        if value != "latest" and not re.fullmatch(r"rb-[0-9a-f]{8}", value):
            raise InvalidInput(f"{flag} takes a rollback id (rb-1a2b3c4d) or latest, not {value!r}")
        return strategy, {key: value, "what": "config" if flag == "--config" else "all"}
    if flag == "--flag":
        name, sep, setting = value.partition("=")
        if not sep or not ENV_NAME.match(name):
            raise InvalidInput(
                f"--flag takes NAME=VALUE (an env var), e.g. FEATURE_X=false, not {value!r}"
            )
        return strategy, {key: f"{name}={setting}"}
    if flag == "--scale":
        if not value.isdigit() or int(value) > 1000:
            raise InvalidInput(f"--scale takes a replica count from 0 to 1000, not {value!r}")
        return strategy, {key: str(int(value))}
    if value not in ("off", "on"):
        raise InvalidInput(f"--traffic takes off (out of the Service) or on, not {value!r}")
    return strategy, {key: "false" if value == "off" else "true"}
