"""The terminal's global options: where a person puts them, and no abbreviations."""

from __future__ import annotations

import pytest

from bot.cli import build_parser
from bot.terminal import UsageError


def test_config_after_the_command_is_the_config_file_not_a_config_restore() -> None:
    args = build_parser().parse_args(["rollback", "web", "--config", "rollbot.yaml"])

    assert args.config == "rollbot.yaml"
    assert args.config_from is None


def test_a_global_option_before_the_command_is_kept() -> None:
    args = build_parser().parse_args(["--config", "a.yaml", "--context", "prod", "history", "web"])

    assert (args.config, args.context, args.kubeconfig) == ("a.yaml", "prod", None)


def test_the_option_after_the_command_wins_over_the_one_before() -> None:
    args = build_parser().parse_args(["--config", "a.yaml", "status", "web", "--config", "b.yaml"])

    assert args.config == "b.yaml"


@pytest.mark.parametrize("abbreviated", ["--config-f", "--rest", "--dry"])
def test_an_abbreviated_flag_is_refused_with_a_clear_line(abbreviated: str) -> None:
    with pytest.raises(UsageError, match="unrecognized arguments"):
        build_parser().parse_args(["rollback", "web", abbreviated, "x"])
