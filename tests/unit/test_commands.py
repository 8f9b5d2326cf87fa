from __future__ import annotations

import pytest

from bot.commands import CommandError, parse_command
from bot.errors import InvalidInput


def test_a_bare_service_rolls_back_to_the_previous_revision_in_the_default_namespace():
    command = parse_command("family-assistant", "homelab")
    assert (command.action, command.workload, command.namespace, command.to_revision) == (
        "rollback",
        "family-assistant",
        "homelab",
        0,
    )


def test_flags_and_a_quoted_reason_are_read():
    command = parse_command('web -n prod --to-revision 3 --dry-run --reason "500s on /chat"', "d")
    assert (command.namespace, command.to_revision, command.dry_run, command.reason) == (
        "prod",
        3,
        True,
        "500s on /chat",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("web --to-revision two", "takes a revision number, not 'two'"),
        ("web --to-revision -1", "0 (the previous revision) or a revision number"),
        ("web --force", "unknown flag --force"),
        ("web api", "one service at a time"),
        ('web --reason "unclosed', "check the quotes"),
        ("-n prod", "which service?"),
        ("cancel", "cancel takes one rollback id"),
        ("web -n", "-n needs a value"),
    ],
)
def test_malformed_commands_say_what_is_wrong_and_show_the_usage(text, message):
    with pytest.raises(CommandError) as err:
        parse_command(text, "default")
    assert message in str(err.value)
    assert "Usage:" in str(err.value)


def test_names_that_are_not_dns_1123_are_refused():
    with pytest.raises(InvalidInput, match="DNS-1123"):
        parse_command("Family_Assistant", "default")
    with pytest.raises(InvalidInput, match="namespace"):
        parse_command("web -n Prod", "default")


def test_help_status_and_cancel():
    assert parse_command("", "d").action == "help"
    assert parse_command("status", "d").record_id == ""
    assert parse_command("status rb-0123abcd", "d").record_id == "rb-0123abcd"
    assert parse_command("cancel rb-0123abcd", "d").record_id == "rb-0123abcd"


@pytest.mark.parametrize(
    "text", ["status rb-1", "cancel rb-1", "cancel RB-0123ABCD", "status 'rb-0123abcd\n'"]
)
def test_status_and_cancel_refuse_what_is_not_a_rollback_id(text):
    with pytest.raises(CommandError, match="takes a rollback id like rb-1a2b3c4d"):
        parse_command(text, "d")


def test_a_catalog_service_brings_its_namespace_and_deployment():
    catalog = {"family-assistant": ("homelab", "fa-api")}
    command = parse_command("family-assistant", "default", catalog)
    assert (command.namespace, command.workload) == ("homelab", "fa-api")
    explicit = parse_command("family-assistant -n staging", "default", catalog)
    assert explicit.namespace == "staging"


@pytest.mark.parametrize(
    ("text", "strategy", "options"),
    [
        ("api --restore rb-0123abcd", "restore", {"backup": "rb-0123abcd", "what": "all"}),
        ("api --config latest", "restore", {"backup": "latest", "what": "config"}),
        ("api --flag FEATURE_NEW_DASHBOARD=false", "flag", {"flag": "FEATURE_NEW_DASHBOARD=false"}),
        ("api --scale=0", "scale", {"replicas": "0"}),
        ("api --traffic off", "divert", {"serving": "false"}),
        ("api --traffic on", "divert", {"serving": "true"}),
        ("api --strategy helm", "helm", {}),
        ("api --to-tag v1.2.3 --container app", "", {"container": "app"}),
    ],
)
def test_operation_flags_name_a_strategy_and_its_options(text, strategy, options):
    command = parse_command(text, "prod")
    assert (command.strategy, command.options) == (strategy, options)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("api --restore yesterday", "takes a rollback id (rb-1a2b3c4d) or latest"),
        ("api --flag FEATURE", "--flag takes NAME=VALUE"),
        ("api --flag 1X=off", "--flag takes NAME=VALUE"),
        ("api --scale -1", "replica count from 0 to 1000"),
        ("api --scale 5000", "replica count from 0 to 1000"),
        ("api --traffic maybe", "--traffic takes off"),
        ("api --scale 0 --traffic off", "one operation at a time"),
        ("api --scale 0 --to-revision 2", "does not go with --to-revision"),
        ("api --strategy canary", "unknown strategy 'canary'"),
        ("history api --scale 0", "history takes only"),
        ("api --container app", "--container goes with --to-tag"),
    ],
)
def test_bad_operation_flags_say_what_is_wrong(text, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_command(text, "prod")


def test_a_service_of_several_deployments_is_rolled_back_under_its_own_name():
    from bot.config import RollbotConfig

    config = RollbotConfig.model_validate(
        {
            "services": {
                "eli-maor": {"deployments": ["backend", "worker", "beat", "frontend"]},
                "todo-app": {"strategy": "helm"},
                "family-assistant": {"deployment": "web"},
            }
        }
    )
    assert parse_command("eli-maor", "prod", config.catalog).resolved(config) == (
        "components",
        "eli-maor",
    )
    assert parse_command("todo-app", "prod", config.catalog).resolved(config) == (
        "helm",
        "todo-app",
    )
    assert parse_command("family-assistant", "prod", config.catalog).resolved(config) == (
        "undo",
        "web",
    )
    forced = parse_command("todo-app --strategy undo", "prod", config.catalog)
    assert forced.resolved(config) == ("undo", "todo-app")
    scale = parse_command("family-assistant --scale 0", "prod", config.catalog)
    assert scale.resolved(config) == ("scale", "family-assistant")


def test_a_container_name_that_is_not_dns_1123_is_refused():
    with pytest.raises(InvalidInput, match="'Bad_Name' is not a valid container name"):
        parse_command("api --to-tag v1 --container Bad_Name", "prod")


@pytest.mark.parametrize(
    ("text", "flag"),
    [("web —to-revision 3", "--to-revision"), ("web –n prod", "-n"), ("web —dry-run", "--dry-run")],
)
def test_a_flag_whose_dashes_a_phone_turned_into_a_dash_is_named(text, flag):
    with pytest.raises(CommandError) as err:
        parse_command(text, "prod")
    assert err.value.problem.endswith(f"type {flag}")


def test_curly_quotes_quote_a_reason():
    command = parse_command("web --reason “500s on /chat”", "prod")
    assert command.reason == "500s on /chat"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("web -n a -n b", "-n is given twice"),
        ("web --dry-run=yes", "--dry-run takes no value"),
        ("web --scale ²", "--scale takes a replica count from 0 to 1000, not '²'"),
        ("web --to-revision ٣", "--to-revision takes a revision number"),
        ("x" * 4001, "keep it to 4000"),
    ],
)
def test_more_malformed_commands_are_refused_before_the_ack(text, message):
    with pytest.raises(CommandError, match=message):
        parse_command(text, "prod")


def test_every_long_flag_takes_its_value_after_an_equals_sign():
    command = parse_command("web --namespace=prod --to-tag=v1 --container=app --reason=why", "d")
    assert (command.namespace, command.to_tag, command.container, command.reason) == (
        "prod",
        "v1",
        "app",
        "why",
    )
