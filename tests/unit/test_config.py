from __future__ import annotations

import pytest
import yaml

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


def test_environments_have_their_own_policy_and_widen_the_allowed_namespaces():
    config = RollbotConfig.model_validate(
        {
            "namespaces": ["sandbox"],
            "approvers": ["U0ANY"],
            "environments": {
                "prod": {
                    "namespaces": ["prod-eu", "prod-us"],
                    "approvals": 2,
                    "approvers": ["U0LEAD"],
                    "emergency_skips_approval": True,
                }
            },
        }
    )
    assert config.environment_of("prod-us") == "prod"
    assert config.policy_for("prod-us").approvals == 2
    assert config.policy_for("sandbox").approvers == ["U0ANY"]
    config.check_namespace_allowed("prod-eu")
    with pytest.raises(NamespaceNotAllowed, match="allowed: sandbox, prod-eu, prod-us"):
        config.check_namespace_allowed("staging")


def test_a_namespace_in_two_environments_is_a_config_error(tmp_path):
    path = tmp_path / "rollbot.yaml"
    path.write_text("environments:\n  a: {namespaces: [x]}\n  b: {namespaces: [x]}\n")
    with pytest.raises(ConfigError, match="namespace 'x' is in two environments: a and b"):
        load_config(path)
    path.write_text("environments:\n  a: {namespaces: []}\n")
    with pytest.raises(ConfigError, match="environments.a.namespaces"):
        load_config(path)


@pytest.mark.parametrize(
    ("service", "message"),
    [
        ({"deployment": "a", "deployments": ["b"]}, "not both"),
        ({"strategy": "canary"}, "strategy"),
        ({"strategy": "blue-green", "blue_green": {"colours": {"blue": "a"}}}, "exactly two"),
        ({"strategy": "blue-green", "deployments": ["a", "b"]}, "blue_green.colours"),
    ],
)
def test_a_catalog_entry_with_contradictory_strategy_settings_is_refused(
    tmp_path, service, message
):
    file = tmp_path / "rollbot.yaml"
    file.write_text(yaml.safe_dump({"services": {"api": service}}))
    with pytest.raises(ConfigError, match=message):
        load_config(file)


def test_the_readme_example_config_is_valid():
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = re.search(r"```yaml\n(.*?)```", readme, re.S)
    assert example is not None, "README.md has no yaml example"
    config = RollbotConfig.model_validate(yaml.safe_load(example.group(1)))
    assert config.services["todo-app"].strategy == "helm"
    assert config.services["eli-maor"].deployments[0] == "eli-maor-backend"
