from __future__ import annotations

import pytest

from bot.config import ConfigError, RollbotConfig, load_config
from bot.errors import NamespaceNotAllowed


def test_no_config_file_allows_any_namespace(monkeypatch):
    monkeypatch.delenv("ROLLBOT_CONFIG", raising=False)
    load_config().check_namespace_allowed("anything")


def test_listed_namespaces_are_the_only_ones_allowed():
    config = RollbotConfig(namespaces=["prod", "staging"])
    config.check_namespace_allowed("prod")
    with pytest.raises(NamespaceNotAllowed, match="allowed: prod, staging"):
        config.check_namespace_allowed("kube-system")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("namespaces: [prod\n", "not valid YAML"),
        ("- prod\n", "mapping at the top level"),
        ("namespace: [prod]\n", "namespace: Extra inputs are not permitted"),
        ("namespaces: [Prod]\n", "namespaces.0: Value error, 'Prod' is not a valid namespace"),
        (
            "rollout_timeout_seconds: -1\n",
            "rollout_timeout_seconds: Input should be greater than 0",
        ),
    ],
)
def test_a_bad_config_file_says_where_and_what(tmp_path, text, message):
    path = tmp_path / "rollbot.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_a_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file .*nope.yaml"):
        load_config(tmp_path / "nope.yaml")
