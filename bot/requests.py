"""What a person asks rollbot to do, validated in one place.

`/rollback …` (`bot.commands`) and `rollbot rollback …` (`bot.cli`) both turn
their flags into a `RollbackRequest` through `RollbackRequest.build`, so every
limit, name pattern and rule about which flags go together is written once, and
both front ends refuse the same input with the same words. The flag-value
parsers (`parse_revision`, `parse_replicas`, `parse_flag`…) are the only place a
value is read from text; the strategies reuse them.

This module is a leaf of the domain (it imports only `bot.errors`, `bot.names`
and `bot.durations`), so the config, the strategies and the CLI can all import
its constants without a cycle. It is longer than most (~500 lines) on purpose:
it is the one place for these rules, every action's included (rollback,
history, status, cancel, resume, stats, drill), and a second module would invite a
second copy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, get_args

from bot.durations import parse_window
from bot.errors import InvalidInput
from bot.names import check_container_name, check_namespace, check_object_name, quoted

#: What `--strategy` (and a catalog entry's `strategy:`) may name.
StrategyName = Literal["undo", "helm", "blue-green", "argo-rollouts"]
STRATEGY_NAMES: tuple[StrategyName, ...] = get_args(StrategyName)
#: What a request without --strategy (or a catalog `strategy:`) rolls back with:
#: left out of titles, since it is what "a rollback" means.
DEFAULT_STRATEGY: StrategyName = "undo"
#: The operations a flag asks for; each is a strategy of its own.
OperationName = Literal["restore", "flag", "scale", "divert"]
OPERATION_NAMES: tuple[OperationName, ...] = get_args(OperationName)
#: Every strategy a record can name ("components": the undo of a service of several Deployments).
ALL_STRATEGY_NAMES: tuple[str, ...] = (*STRATEGY_NAMES, "components", *OPERATION_NAMES)

#: An environment variable name as the API accepts it (Kubernetes' IsEnvVarName); fullmatch.
ENV_VAR_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
#: An emergency scale never asks for more replicas than this.
MAX_REPLICAS = 1000
#: Deployment revisions are int64 annotations.
MAX_REVISION = 2**63 - 1
#: An image tag (the OCI distribution spec's grammar); fullmatch.
IMAGE_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
#: A rollback's id as `bot.records.new_id` makes it; fullmatch.
ROLLBACK_ID = re.compile(r"rb-[0-9a-f]{8}")
#: A reason goes into the change-cause annotation, the thread and the report: a line, not a file.
MAX_REASON_LENGTH = 500
_ASCII_DIGITS = re.compile(r"[0-9]+")
# Bidi embeddings, overrides and isolates: they make a reason read differently than it is.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")

Action = Literal["rollback", "history", "status", "cancel", "resume", "help", "stats", "drill"]
_ACTIONS: tuple[Action, ...] = get_args(Action)


class UsageProblem(InvalidInput):
    """A flag or a value that does not fit the grammar: the usage helps here."""

    code = "usage"


# -- one value at a time -------------------------------------------------------------


def _whole_number(text: str, maximum: int) -> int | None:
    """`text` as a number from 0 to `maximum`, ASCII digits only (`'²'.isdigit()` is
    true, and `int('٣')` is 3); None when it is not one."""
    if not _ASCII_DIGITS.fullmatch(text) or len(text.lstrip("0")) > len(str(maximum)):
        return None
    number = int(text)
    return number if number <= maximum else None


def parse_revision(flag: str, value: str | int) -> int:
    """`--to-revision N`: 0 (the previous revision) or a revision number."""
    text = str(value)
    if text.startswith("-") and _ASCII_DIGITS.fullmatch(text[1:]):
        raise UsageProblem(f"{flag} takes 0 (the previous revision) or a revision number")
    number = _whole_number(text, MAX_REVISION)
    if number is None:
        raise UsageProblem(f"{flag} takes a revision number, not {quoted(text)}")
    return number


def parse_replicas(value: str | int) -> int:
    """`--scale N`: a replica count from 0 to MAX_REPLICAS."""
    number = _whole_number(str(value), MAX_REPLICAS)
    if number is None:
        raise UsageProblem(
            f"--scale takes a replica count from 0 to {MAX_REPLICAS}, not {quoted(str(value))}"
        )
    return number


def parse_flag(value: str) -> tuple[str, str]:
    """`--flag NAME=VALUE`, as `kubectl set env` takes it."""
    name, sep, setting = value.partition("=")
    if not sep or not ENV_VAR_NAME.fullmatch(name):
        raise UsageProblem(
            f"--flag takes NAME=VALUE (an env var), e.g. FEATURE_X=false, not {quoted(value)}"
        )
    return name, setting


def parse_traffic(value: str) -> bool:
    """`--traffic off|on`: whether the pods serve."""
    if value not in ("off", "on"):
        raise UsageProblem(f"--traffic takes off (out of the Service) or on, not {quoted(value)}")
    return value == "on"


def parse_backup_id(flag: str, value: str) -> str:
    """`--restore ID` / `--config ID|latest`: a rollback whose backup to use."""
    if value != "latest" and not ROLLBACK_ID.fullmatch(value):
        raise UsageProblem(
            f"{flag} takes a rollback id (rb-1a2b3c4d) or latest, not {quoted(value)}"
        )
    return value


def parse_backup_file(flag: str, value: str) -> str:
    """`--restore-from FILE` / `--config-from FILE` (the CLI): a path to read."""
    if not value or "\0" in value:
        raise UsageProblem(f"{flag} takes the path of a backup file, not {quoted(value)}")
    return value


def parse_record_id(action: str, value: str) -> str:
    if not ROLLBACK_ID.fullmatch(value):
        raise UsageProblem(f"{action} takes a rollback id like rb-1a2b3c4d, not {quoted(value)}")
    return value


def parse_tag(value: str) -> str:
    if not IMAGE_TAG.fullmatch(value):
        raise UsageProblem(
            f"--to-tag takes an image tag (letters, digits, '_', '.' and '-', at most 128, "
            f"not starting with '.' or '-'), not {quoted(value)}"
        )
    return value


def parse_strategy(value: str) -> StrategyName:
    for name in STRATEGY_NAMES:
        if value == name:
            return name
    raise UsageProblem(f"unknown strategy {quoted(value)}: use {_either(STRATEGY_NAMES)}")


def parse_reason(value: str) -> str:
    """One line: whitespace runs (newlines included) become one space; control and
    bidi characters, which would make the record read differently, are refused."""
    reason = " ".join(value.split())
    if any(ord(c) < 32 or ord(c) == 127 for c in reason) or _BIDI_CONTROLS.search(reason):
        raise UsageProblem("--reason holds control characters: give it as plain text")
    if len(reason) > MAX_REASON_LENGTH:
        raise UsageProblem(
            f"--reason is {len(reason)} characters long: keep it to {MAX_REASON_LENGTH}"
        )
    return reason


def _either(names: Sequence[str]) -> str:
    return ", ".join(names[:-1]) + " or " + names[-1]


# -- the request -----------------------------------------------------------------------


class ServiceLike(Protocol):
    """What strategy resolution reads of a catalog entry (`bot.config.ServiceEntry`)."""

    @property
    def strategy(self) -> str: ...

    @property
    def deployments(self) -> Sequence[str]: ...


class ConfigLike(Protocol):
    """What strategy resolution reads of the config (`bot.config.RollbotConfig`)."""

    @property
    def services(self) -> Mapping[str, ServiceLike]: ...


#: Service name → (namespace, Deployment) where the catalog knows them (`RollbotConfig.catalog`).
Catalog = Mapping[str, tuple[str | None, str | None]]


def resolve_strategy(services: Mapping[str, ServiceLike], service: str, asked: str = "") -> str:
    """The strategy of a request: an operation asked for by flag, `--strategy`, or
    the catalog's; a service of several Deployments rolls back as components."""
    if asked in OPERATION_NAMES:
        return asked
    entry = services.get(service)
    chosen = asked or (entry.strategy if entry is not None else "undo")
    if chosen not in STRATEGY_NAMES:
        raise UsageProblem(f"unknown strategy {quoted(chosen)}: use {_either(STRATEGY_NAMES)}")
    if chosen == "undo" and entry is not None and entry.deployments:
        return "components"
    return chosen


@dataclass(frozen=True)
class RollbackRequest:
    """One request, valid by construction: `__post_init__` checks every field and
    every rule between fields, whoever builds it."""

    action: Action = "rollback"
    #: The name as typed (a catalog service or a Deployment).
    service: str = ""
    #: The Deployment the catalog maps the service to (else the service's own name).
    workload: str = ""
    namespace: str = ""
    to_revision: int = 0
    to_tag: str | None = None
    #: With --to-tag: the one container whose tag to set (None: all).
    container: str | None = None
    #: With --to-tag (the CLI's --force): allow a tag never deployed here.
    force: bool = False
    #: `--strategy` as asked ("": the catalog's); an operation flag is in the fields below.
    asked_strategy: str = ""
    #: --restore / --config (a rollback id or "latest"), or the CLI's backup file.
    backup: str | None = None
    backup_is_file: bool = False
    #: What a restore puts back: everything the backup holds, or only the ConfigMaps.
    restore_what: Literal["all", "config"] = "all"
    #: --flag NAME=VALUE.
    flag: tuple[str, str] | None = None
    #: --scale N.
    replicas: int | None = None
    #: --traffic on (True) / off (False).
    serving: bool | None = None
    dry_run: bool = False
    emergency: bool = False
    #: --permanent: an Argo Rollout's abort made permanent (the spec undone to stable).
    permanent: bool = False
    reason: str = ""
    #: status / cancel: the rollback meant ("" for status: the recent ones).
    record_id: str = ""
    #: stats: the window (`--since 30d`); the service is optional there.
    since: str = ""

    def __post_init__(self) -> None:
        if self.action not in _ACTIONS:
            raise UsageProblem(f"unknown action {self.action!r}")
        if self.action in ("help", "status", "cancel", "resume"):
            self._check_record_action()
            return
        if self.since and self.action != "stats":
            raise UsageProblem("--since goes with stats")
        if self.action == "stats":
            self._check_stats()
            return
        if self.action == "drill":
            self._check_drill()
            return
        if self.record_id:
            raise UsageProblem(f"{self.action} names a service, not a rollback id")
        check_object_name(self.service)
        check_object_name(self.workload)
        check_namespace(self.namespace)
        if not 0 <= self.to_revision <= MAX_REVISION:
            raise UsageProblem("--to-revision takes 0 (the previous revision) or a revision number")
        if self.to_tag is not None:
            parse_tag(self.to_tag)
        if self.container is not None:
            check_container_name(self.container)
        if self.asked_strategy:
            parse_strategy(self.asked_strategy)
        self._check_operation()
        if parse_reason(self.reason) != self.reason:
            raise UsageProblem("--reason must be one line, without runs of spaces")
        self._check_flags_go_together()

    def _rollback_flags(self) -> bool:
        """Whether any flag of a rollback was given (the actions that are not one
        take none of them)."""
        return any(
            (
                self.to_revision,
                self.to_tag,
                self.container,
                self.force,
                self.asked_strategy,
                self.operations_given(),
                self.dry_run,
                self.emergency,
                self.permanent,
                self.reason,
            )
        )

    def _check_record_action(self) -> None:
        if self.service or self.workload or self._rollback_flags():
            raise UsageProblem(f"{self.action} takes no service and no flags")
        if self.action in ("cancel", "resume") or self.record_id:
            if self.action == "help":
                raise UsageProblem("help takes no rollback id")
            parse_record_id(self.action, self.record_id)

    def _check_stats(self) -> None:
        if self._rollback_flags() or self.record_id:
            raise UsageProblem("stats takes a service (or none: all) and --since only")
        if self.service:
            check_object_name(self.service)
            check_object_name(self.workload)
        parse_window(self.since or "30d")

    def _check_drill(self) -> None:
        if self._rollback_flags() or self.record_id:
            raise UsageProblem("drill takes a service of the catalog only")
        check_object_name(self.service)

    def _check_operation(self) -> None:
        if self.backup is not None:
            if self.backup_is_file:
                parse_backup_file("--restore-from", self.backup)
            else:
                parse_backup_id("--restore", self.backup)
        if self.flag is not None:
            parse_flag("=".join(self.flag))
        if self.replicas is not None:
            parse_replicas(self.replicas)

    def _check_flags_go_together(self) -> None:
        given = self.operations_given()
        if self.action == "history" and (
            self.to_revision
            or self.to_tag is not None
            or self.container is not None
            or self.force
            or self.dry_run
            or self.reason
            or self.emergency
            or self.permanent
            or self.asked_strategy
            or given
        ):
            raise UsageProblem("history takes only a service and -n NAMESPACE")
        if len(given) > 1:
            raise UsageProblem(f"one operation at a time: {' with '.join(given)}")
        if given and self.asked_strategy:
            raise UsageProblem("--strategy does not go with an operation flag")
        if given and (self.to_revision or self.to_tag is not None):
            raise UsageProblem("an operation flag does not go with --to-revision or --to-tag")
        if self.permanent and given:
            raise UsageProblem(f"--permanent goes with a rollback, not with {given[0]}")
        if self.permanent and (self.to_revision or self.to_tag is not None):
            raise UsageProblem(
                "--permanent makes the abort of an update in progress permanent; "
                "--to-revision and --to-tag go back to a target of their own: give one or the other"
            )
        if self.to_tag is not None and self.to_revision:
            raise UsageProblem("--to-tag and --to-revision name two different targets: pick one")
        if self.container is not None and self.to_tag is None:
            raise UsageProblem("--container goes with --to-tag: the container whose tag to set")
        if self.force and self.to_tag is None:
            raise UsageProblem("--force goes with --to-tag: a tag never deployed here")

    def operations_given(self) -> tuple[str, ...]:
        """The operation flags this request holds, by their Slack names."""
        given = (
            (self.backup is not None, "--config" if self.restore_what == "config" else "--restore"),
            (self.flag is not None, "--flag"),
            (self.replicas is not None, "--scale"),
            (self.serving is not None, "--traffic"),
        )
        return tuple(name for present, name in given if present)

    @property
    def operation(self) -> OperationName | None:
        if self.backup is not None:
            return "restore"
        if self.flag is not None:
            return "flag"
        if self.replicas is not None:
            return "scale"
        if self.serving is not None:
            return "divert"
        return None

    @property
    def strategy(self) -> str:
        """`--strategy`, or the operation a flag asks for ("": the catalog decides)."""
        return self.operation or self.asked_strategy

    @property
    def options(self) -> dict[str, str]:
        """The strategy's options, as the record keeps them (plain strings)."""
        options: dict[str, str] = {}
        if self.backup is not None:
            options = {"backup": self.backup, "what": self.restore_what}
        elif self.flag is not None:
            options = {"flag": "=".join(self.flag)}
        elif self.replicas is not None:
            options = {"replicas": str(self.replicas)}
        elif self.serving is not None:
            options = {"serving": "true" if self.serving else "false"}
        if self.container is not None:
            options["container"] = self.container
        if self.permanent:
            options["permanent"] = "true"
        return options

    def resolved(self, config: ConfigLike) -> tuple[str, str]:
        """(strategy, workload): what to do, and the record's name for what it is done to
        (the Deployment for a plain undo; the catalog service otherwise)."""
        strategy = resolve_strategy(config.services, self.service, self.strategy)
        if self.container is not None and strategy not in ("undo", "components"):
            raise UsageProblem(
                f"--container goes with a Deployment's --to-tag, not with {strategy}"
            )
        if self.force and strategy != "undo":
            raise UsageProblem(f"--force goes with a one-Deployment --to-tag, not with {strategy}")
        if self.permanent and strategy != "argo-rollouts":
            raise UsageProblem(
                f"--permanent makes an Argo Rollout's abort permanent (strategy argo-rollouts): "
                f"{self.service} rolls back with {strategy}, which has no abort"
            )
        return strategy, self.workload if strategy == "undo" else self.service

    # -- the constructors ---------------------------------------------------------------

    @classmethod
    def build(
        cls,
        action: Literal["rollback", "history"],
        service: str,
        *,
        default_namespace: str,
        namespace: str | None = None,
        catalog: Catalog | None = None,
        to_revision: str | int | None = None,
        to_tag: str | None = None,
        container: str | None = None,
        force: bool = False,
        strategy: str | None = None,
        restore: str | None = None,
        config: str | None = None,
        restore_from: str | None = None,
        config_from: str | None = None,
        flag: str | None = None,
        scale: str | int | None = None,
        traffic: str | None = None,
        dry_run: bool = False,
        emergency: bool = False,
        permanent: bool = False,
        reason: str | None = None,
    ) -> RollbackRequest:
        """The request the flags ask for, every value read from its text here.

        Values are as typed (None: the flag was not given). `namespace` wins over the
        catalog's, which wins over `default_namespace`; the catalog also maps the
        service to its Deployment.
        """
        backups = [
            (flag_name, value)
            for flag_name, value in (
                ("--restore", restore),
                ("--config", config),
                ("--restore-from", restore_from),
                ("--config-from", config_from),
            )
            if value is not None
        ]
        operations = [name for name, _ in backups] + [
            name
            for name, value in (("--flag", flag), ("--scale", scale), ("--traffic", traffic))
            if value is not None
        ]
        if len(operations) > 1:
            raise UsageProblem(f"one operation at a time: {' with '.join(operations)}")
        backup: str | None = None
        backup_is_file = False
        restore_what: Literal["all", "config"] = "all"
        if backups:
            flag_name, text = backups[0]
            backup_is_file = flag_name.endswith("-from")
            restore_what = "config" if flag_name.startswith("--config") else "all"
            if backup_is_file:
                backup = parse_backup_file(flag_name, text)
            else:
                backup = parse_backup_id(flag_name, text)
        check_object_name(service)
        known_namespace, deployment = (catalog or {}).get(service, (None, None))
        return cls(
            action=action,
            service=service,
            workload=deployment or service,
            namespace=check_namespace(
                namespace if namespace is not None else known_namespace or default_namespace
            ),
            to_revision=0 if to_revision is None else parse_revision("--to-revision", to_revision),
            to_tag=None if to_tag is None else parse_tag(to_tag),
            container=None if container is None else check_container_name(container),
            force=force,
            asked_strategy="" if strategy is None else parse_strategy(strategy),
            backup=backup,
            backup_is_file=backup_is_file,
            restore_what=restore_what,
            flag=None if flag is None else parse_flag(flag),
            replicas=None if scale is None else parse_replicas(scale),
            serving=None if traffic is None else parse_traffic(traffic),
            dry_run=dry_run,
            emergency=emergency,
            permanent=permanent,
            reason="" if reason is None else parse_reason(reason),
        )

    #: `rollbot rollback|history …`: the same constructor, called with the argparse values
    #: by their names (`args.to_revision` best as the string typed: argparse's `type=int`
    #: would take '٣' and refuse '²' in its own words).
    from_cli = build
