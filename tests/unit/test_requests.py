"""One request model: `/rollback …` and `rollbot rollback …` ask for the same thing
with the same flags, and are refused in the same words."""

from __future__ import annotations

import dataclasses
import shlex
from typing import Any

import pytest

from bot.commands import CommandError, operation, parse_command
from bot.config import RollbotConfig
from bot.errors import InvalidInput
from bot.requests import (
    ENV_VAR_NAME,
    MAX_REASON_LENGTH,
    MAX_REPLICAS,
    STRATEGY_NAMES,
    RollbackRequest,
    parse_replicas,
    parse_revision,
)

CATALOG = {"family-assistant": ("homelab", "fa-api"), "todo-app": (None, None)}


def slack(flags: dict[str, Any], service: str = "web") -> RollbackRequest:
    """`/rollback SERVICE --flag value …` as a person types it."""
    words = [service]
    for name, value in flags.items():
        flag = "-n" if name == "namespace" else "--" + name.replace("_", "-")
        words += [flag] if value is True else [flag, str(value)]
    return parse_command(shlex.join(words), "default", CATALOG)


def cli(flags: dict[str, Any], service: str = "web") -> RollbackRequest:
    """`rollbot rollback SERVICE …`: the call bot/cli.py makes with its argparse values."""
    return RollbackRequest.from_cli(
        "rollback", service, default_namespace="default", catalog=CATALOG, **flags
    )


def problem(err: InvalidInput) -> str:
    """What is wrong, without the Slack usage that follows it."""
    return err.problem if isinstance(err, CommandError) else str(err)


SAME_REQUESTS = [
    {},
    {"to_revision": "3"},
    {"to_revision": "0"},
    {"namespace": "prod", "dry_run": True},
    {"to_tag": "v1.2.3", "container": "app"},
    {"to_tag": "v1.2.3", "force": None},  # force: CLI only (see below)
    {"scale": "0"},
    {"scale": "0007"},
    {"flag": "FEATURE_X=false"},
    {"flag": "FEATURE_X="},
    {"flag": "-dotted.name_1=a=b"},
    {"traffic": "off"},
    {"traffic": "on"},
    {"strategy": "helm"},
    {"reason": "500s on /chat\n  since 14:02"},
    {"permanent": True},
    {"permanent": True, "strategy": "argo-rollouts", "dry_run": True},
]


@pytest.mark.parametrize("flags", SAME_REQUESTS)
@pytest.mark.parametrize("service", ["web", "family-assistant"])
def test_slack_and_the_cli_build_the_same_request_from_the_same_flags(flags, service):
    flags = {k: v for k, v in flags.items() if v is not None}
    assert slack(flags, service) == cli(flags, service)


SAME_REFUSALS = [
    ({"scale": "²"}, "--scale takes a replica count from 0 to 1000, not '²'"),
    ({"scale": "٣"}, "--scale takes a replica count"),
    ({"scale": "9" * 3000}, "--scale takes a replica count"),
    ({"scale": "1001"}, "--scale takes a replica count"),
    ({"scale": "-1"}, "--scale takes a replica count"),
    ({"scale": " 3"}, "--scale takes a replica count"),
    ({"to_revision": "two"}, "--to-revision takes a revision number, not 'two'"),
    ({"to_revision": "³"}, "--to-revision takes a revision number"),
    ({"to_revision": "+3"}, "--to-revision takes a revision number"),
    ({"to_revision": "9" * 30}, "--to-revision takes a revision number"),
    ({"to_revision": "-1"}, "0 (the previous revision) or a revision number"),
    ({"flag": "1X=off"}, "--flag takes NAME=VALUE"),
    ({"flag": "FEATURE X=off"}, "--flag takes NAME=VALUE"),
    ({"flag": "FEATURE_X"}, "--flag takes NAME=VALUE"),
    ({"traffic": "maybe"}, "--traffic takes off"),
    ({"traffic": "OFF"}, "--traffic takes off"),
    ({"strategy": "canary"}, "unknown strategy 'canary': use undo, helm, blue-green or argo-"),
    ({"to_tag": "v1 rc"}, "--to-tag takes an image tag"),
    ({"to_tag": ".hidden"}, "--to-tag takes an image tag"),
    ({"to_tag": "v" * 129}, "--to-tag takes an image tag"),
    ({"container": "app"}, "--container goes with --to-tag"),
    ({"container": "my.app", "to_tag": "v1"}, "not a valid container name"),
    ({"to_tag": "v1", "to_revision": "2"}, "--to-tag and --to-revision name two different"),
    ({"scale": "0", "to_revision": "2"}, "does not go with --to-revision or --to-tag"),
    ({"scale": "0", "traffic": "off"}, "one operation at a time: --scale with --traffic"),
    ({"flag": "A=1", "scale": "0"}, "one operation at a time: --flag with --scale"),
    ({"strategy": "helm", "scale": "0"}, "--strategy does not go with an operation flag"),
    ({"permanent": True, "scale": "0"}, "--permanent goes with a rollback, not with --scale"),
    ({"permanent": True, "to_revision": "2"}, "--permanent makes the abort of an update in"),
    ({"permanent": True, "to_tag": "v1"}, "--to-revision and --to-tag go back to a target"),
    ({"namespace": "Prod"}, "'Prod' is not a valid namespace name"),
    ({"namespace": "prod\n"}, "'prod\\n' is not a valid namespace name"),
    ({"reason": "x" * (MAX_REASON_LENGTH + 1)}, "--reason is 501 characters long"),
    ({"reason": "ok\x00"}, "--reason holds control characters"),
    ({"reason": "approved by \u202eDAER"}, "--reason holds control characters"),
]


@pytest.mark.parametrize(("flags", "message"), SAME_REFUSALS)
def test_slack_and_the_cli_refuse_the_same_flags_in_the_same_words(flags, message):
    with pytest.raises(InvalidInput) as from_slack:
        slack(flags)
    with pytest.raises(InvalidInput) as from_cli:
        cli(flags)
    assert problem(from_slack.value) == str(from_cli.value)
    assert message in str(from_cli.value)


@pytest.mark.parametrize("service", ["Web", "web\n", "web_app", "", "a" * 254, "web api"])
def test_slack_and_the_cli_refuse_the_same_names(service):
    with pytest.raises(InvalidInput) as from_slack:
        slack({}, service)
    with pytest.raises(InvalidInput) as from_cli:
        cli({}, service)
    assert problem(from_slack.value) == str(from_cli.value)
    assert "DNS-1123" in str(from_cli.value)


def test_a_catalog_service_brings_its_namespace_and_deployment_on_both_paths():
    for request in (slack({}, "family-assistant"), cli({}, "family-assistant")):
        assert (request.service, request.workload, request.namespace) == (
            "family-assistant",
            "fa-api",
            "homelab",
        )
    assert cli({"namespace": "staging"}, "family-assistant").namespace == "staging"


def test_the_cli_restores_from_a_file_as_slack_restores_from_an_id():
    from_file = cli({"restore_from": "backup.json"})
    from_id = slack({"restore": "rb-0123abcd"})
    assert (from_file.strategy, from_file.options) == (
        "restore",
        {"backup": "backup.json", "what": "all"},
    )
    assert (from_id.strategy, from_id.options) == (
        "restore",
        {"backup": "rb-0123abcd", "what": "all"},
    )
    assert cli({"config_from": "b.json"}).options == {"backup": "b.json", "what": "config"}
    with pytest.raises(InvalidInput, match="one operation at a time: --restore-from with --scale"):
        cli({"restore_from": "b.json", "scale": "0"})
    with pytest.raises(InvalidInput, match="--restore-from takes the path of a backup file"):
        cli({"restore_from": ""})


def test_force_goes_with_a_tag_and_a_one_deployment_undo():
    config = RollbotConfig.model_validate(
        {"services": {"todo-app": {"strategy": "helm"}, "eli": {"deployments": ["a", "b"]}}}
    )
    with pytest.raises(InvalidInput, match="--force goes with --to-tag"):
        cli({"force": True})
    assert cli({"to_tag": "v1", "force": True}).resolved(config) == ("undo", "web")
    with pytest.raises(InvalidInput, match="--force goes with a one-Deployment --to-tag, not"):
        cli({"to_tag": "v1", "force": True}, "todo-app").resolved(config)
    with pytest.raises(InvalidInput, match="--container goes with a Deployment's --to-tag"):
        slack({"to_tag": "v1", "container": "app"}, "todo-app").resolved(config)
    # a service of several Deployments sets the tag on each: --container applies to each
    tagged = slack({"to_tag": "v1", "container": "app"}, "eli")
    assert tagged.resolved(config) == ("components", "eli")
    assert tagged.options == {"container": "app"}


def test_permanent_goes_with_an_argo_rollout_only_on_both_paths():
    config = RollbotConfig.model_validate(
        {
            "services": {
                "eli-canary": {"strategy": "argo-rollouts", "rollout": "eli-maor-backend"},
                "todo-app": {"strategy": "helm"},
            }
        }
    )
    for asked in (slack({"permanent": True}, "eli-canary"), cli({"permanent": True}, "eli-canary")):
        assert asked.resolved(config) == ("argo-rollouts", "eli-canary")
        assert asked.options == {"permanent": "true"}
    assert slack({}, "eli-canary").options == {}
    # A Deployment asked to roll back as a Rollout: its strategy, so its flag.
    as_rollout = slack({"permanent": True, "strategy": "argo-rollouts"})
    assert as_rollout.resolved(config) == ("argo-rollouts", "web")
    for service, strategy in (("web", "undo"), ("todo-app", "helm")):
        for asked in (slack({"permanent": True}, service), cli({"permanent": True}, service)):
            with pytest.raises(InvalidInput) as refused:
                asked.resolved(config)
            assert str(refused.value) == (
                "--permanent makes an Argo Rollout's abort permanent (strategy argo-rollouts): "
                f"{service} rolls back with {strategy}, which has no abort"
            )


def test_history_takes_only_a_service_and_a_namespace_on_both_paths():
    assert RollbackRequest.from_cli(
        "history", "web", default_namespace="d", namespace="prod"
    ) == parse_command("history web -n prod", "d")
    for flags in (
        {"to_revision": "2"},
        {"scale": "0"},
        {"dry_run": True},
        {"strategy": "helm"},
        {"permanent": True},
    ):
        with pytest.raises(InvalidInput, match="history takes only a service"):
            RollbackRequest.from_cli("history", "web", default_namespace="d", **flags)


def test_a_request_built_by_hand_is_checked_too():
    valid = RollbackRequest("rollback", "web", "web", "prod")
    broken = {
        "replicas": MAX_REPLICAS + 1,
        "to_revision": -1,
        "flag": ("1X", "on"),
        "namespace": "prod\n",
        "reason": "two\nlines",
        "container": "app",
        "asked_strategy": "canary",
        "record_id": "rb-0123abcd\n",
    }
    for field, value in broken.items():
        with pytest.raises(InvalidInput):
            dataclasses.replace(valid, **{field: value})
    with pytest.raises(InvalidInput, match="status takes a rollback id"):
        RollbackRequest("status", record_id="x")
    with pytest.raises(InvalidInput, match="cancel takes a rollback id"):
        RollbackRequest("cancel")


@pytest.mark.parametrize("text", ["0", "7", "1000", "0001000"])
def test_replica_counts_are_ascii_numbers_up_to_the_limit(text):
    assert parse_replicas(text) == int(text)


@pytest.mark.parametrize("text", ["²", "١", "𝟙", "1_000", "1e3", "", " ", "0x10", "1001"])
def test_anything_else_is_not_a_replica_count(text):
    with pytest.raises(InvalidInput, match="--scale takes a replica count"):
        parse_replicas(text)


def test_a_number_longer_than_python_reads_is_refused_not_a_crash():
    # int() refuses more than 4300 digits with a ValueError: the length is checked first.
    for flags in ({"scale": "9" * 5000}, {"to_revision": "9" * 5000}):
        with pytest.raises(InvalidInput, match="takes a re"):
            cli(flags)


def test_a_revision_from_argparse_may_arrive_as_an_int():
    assert parse_revision("--to-revision", 3) == 3
    with pytest.raises(InvalidInput, match="0 \\(the previous revision\\)"):
        parse_revision("--to-revision", -2)


def test_the_operation_helper_the_cli_uses_today_applies_the_same_rules():
    assert operation("--scale", "3") == ("scale", {"replicas": "3"})
    assert operation("--flag", "A=1") == ("flag", {"flag": "A=1"})
    assert operation("--traffic", "off") == ("divert", {"serving": "false"})
    assert operation("--config", "latest") == ("restore", {"backup": "latest", "what": "config"})
    with pytest.raises(InvalidInput, match="--scale takes a replica count"):
        operation("--scale", "²")


def test_env_var_names_are_what_the_api_accepts():
    # Kubernetes' IsEnvVarName: letters, digits, '_', '-', '.'; not a digit first.
    for name in ("FEATURE_X", "feature.x", "-x", "_1", "a-b"):
        assert ENV_VAR_NAME.fullmatch(name)
    for name in ("1X", "A B", "Ä", "A=B", "", "A\n"):
        assert not ENV_VAR_NAME.fullmatch(name)


def test_the_strategy_names_are_the_configs():
    assert RollbotConfig.model_validate({"services": {"a": {"strategy": "blue-green"}}})
    assert STRATEGY_NAMES == ("undo", "helm", "blue-green", "argo-rollouts")


def test_an_error_quotes_a_pasted_page_shortly():
    with pytest.raises(CommandError) as err:
        parse_command("web --traffic " + "x" * 3000, "d")
    assert len(err.value.problem) < 200
    assert "3000 characters" in err.value.problem
