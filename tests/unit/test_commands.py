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
    assert parse_command("status rb-1", "d").record_id == "rb-1"
    assert parse_command("cancel rb-1", "d").record_id == "rb-1"


def test_a_catalog_service_brings_its_namespace_and_deployment():
    catalog = {"family-assistant": ("homelab", "fa-api")}
    command = parse_command("family-assistant", "default", catalog)
    assert (command.namespace, command.workload) == ("homelab", "fa-api")
    explicit = parse_command("family-assistant -n staging", "default", catalog)
    assert explicit.namespace == "staging"
