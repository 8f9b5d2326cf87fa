"""The pure pieces of the blue-green and operational strategies: env patches as
`kubectl set env` makes them, ConfigMap restores, selector and Endpoints checks."""

from __future__ import annotations

import pytest

from bot.config import BlueGreen
from bot.strategies.base import StrategyError
from bot.strategies.bluegreen import (
    colours_of,
    live_colour,
    other_colour,
    serving_problem,
    switch_ops,
)
from bot.strategies.divert import parse_serving, routing_services, traffic_services
from bot.strategies.flag import env_ops, parse_flag, set_env, shown_value
from bot.strategies.observe import endpoint_pods, pointer_token, selects
from bot.strategies.restore import (
    RESTARTED_AT,
    bundles_of,
    config_map_changes,
    restore_config_ops,
    with_restart,
)
from bot.strategies.scale import parse_replicas

# -- flag: kubectl set env --------------------------------------------------------------


def test_set_env_replaces_an_existing_value_in_place():
    env = [{"name": "A", "value": "1"}, {"name": "FLAG", "value": "true"}, {"name": "B"}]
    assert set_env(env, "FLAG", "false") == [
        {"name": "A", "value": "1"},
        {"name": "FLAG", "value": "false"},
        {"name": "B"},
    ]


def test_set_env_appends_a_variable_that_is_not_there():
    assert set_env([{"name": "A", "value": "1"}], "FLAG", "off") == [
        {"name": "A", "value": "1"},
        {"name": "FLAG", "value": "off"},
    ]
    assert set_env(None, "FLAG", "off") == [{"name": "FLAG", "value": "off"}]


def test_set_env_replaces_a_value_from_a_configmap_with_the_plain_value():
    env = [{"name": "FLAG", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "flag"}}}]
    assert set_env(env, "FLAG", "false") == [{"name": "FLAG", "value": "false"}]


def test_set_env_keeps_the_first_of_duplicates_and_drops_the_rest_as_kubectl_does():
    env = [{"name": "FLAG", "value": "1"}, {"name": "X"}, {"name": "FLAG", "value": "2"}]
    assert set_env(env, "FLAG", "0") == [{"name": "FLAG", "value": "0"}, {"name": "X"}]


def test_an_empty_value_is_left_out_as_the_api_leaves_it_out():
    assert set_env([{"name": "FLAG"}], "FLAG", "") == [{"name": "FLAG"}]


def test_env_ops_touch_only_containers_whose_env_changes_init_containers_included():
    template = {
        "spec": {
            "initContainers": [{"name": "migrate", "image": "m:1"}],
            "containers": [
                {"name": "app", "image": "a:1", "env": [{"name": "FLAG", "value": "false"}]},
                {"name": "sidecar", "image": "s:1", "env": [{"name": "FLAG", "value": "true"}]},
            ],
        }
    }
    assert env_ops(template, "FLAG", "false") == [
        {"op": "test", "path": "/spec/template/spec/initContainers/0/name", "value": "migrate"},
        {
            "op": "add",
            "path": "/spec/template/spec/initContainers/0/env",
            "value": [{"name": "FLAG", "value": "false"}],
        },
        {"op": "test", "path": "/spec/template/spec/containers/1/name", "value": "sidecar"},
        {
            "op": "add",
            "path": "/spec/template/spec/containers/1/env",
            "value": [{"name": "FLAG", "value": "false"}],
        },
    ]


def test_env_ops_are_empty_when_every_container_already_has_the_value():
    template = {"spec": {"containers": [{"name": "app", "env": [{"name": "F", "value": "0"}]}]}}
    assert env_ops(template, "F", "0") == []


@pytest.mark.parametrize("text", ["FLAG", "=off", "1FLAG=off", "FL AG=off"])
def test_a_flag_must_be_name_equals_value(text):
    with pytest.raises(StrategyError, match="NAME=VALUE"):
        parse_flag(text)


def test_a_flag_value_may_hold_equals_signs_and_be_empty():
    assert parse_flag("OPTS=a=b") == ("OPTS", "a=b")
    assert parse_flag("FLAG=") == ("FLAG", "")


def test_a_current_value_is_shown_by_fingerprint_or_by_its_source_never_in_clear():
    assert shown_value(None) == "(unset)"
    assert "s3cret" not in shown_value({"name": "F", "value": "s3cret"})
    ref = {"name": "F", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "f"}}}
    assert shown_value(ref) == "(from configmap cfg key f)"
    assert shown_value({"name": "F", "valueFrom": {"secretKeyRef": {"name": "s"}}}) == (
        "(from secretKeyRef)"
    )


# -- restore ------------------------------------------------------------------------------


def test_config_map_changes_name_keys_never_values():
    backed_up = {"data": {"mode": "safe", "kept": "1", "old": "x"}}
    live = {"data": {"mode": "fast", "kept": "1", "new": "y"}}
    assert config_map_changes(backed_up, live) == ["mode changed", "new removed", "old restored"]


def test_restore_ops_put_data_back_guarded_by_the_live_data():
    backed_up = {"data": {"mode": "safe"}}
    live = {"data": {"mode": "fast"}, "binaryData": {"blob": "AA=="}}
    assert restore_config_ops(backed_up, live) == [
        {"op": "test", "path": "/data", "value": {"mode": "fast"}},
        {"op": "add", "path": "/data", "value": {"mode": "safe"}},
        {"op": "test", "path": "/binaryData", "value": {"blob": "AA=="}},
        {"op": "remove", "path": "/binaryData"},
    ]


def test_restore_ops_are_empty_when_the_data_is_already_back():
    assert restore_config_ops({"data": {"a": "1"}}, {"data": {"a": "1"}, "binaryData": {}}) == []


def test_restore_ops_add_data_to_a_configmap_that_has_none_without_testing_it():
    assert restore_config_ops({"data": {"a": "1"}}, {}) == [
        {"op": "add", "path": "/data", "value": {"a": "1"}}
    ]


def test_a_bundle_of_one_deployment_and_of_several_read_alike():
    one = {"deployment": {"metadata": {"name": "web"}}, "config_maps": []}
    assert bundles_of(one) == {"web": one}
    several = {"components": {"web": one, "worker": one}}
    assert bundles_of(several) == {"web": one, "worker": one}


def test_a_restart_sets_restarted_at_on_the_template_and_keeps_other_annotations():
    template = {"metadata": {"labels": {"app": "web"}, "annotations": {"a": "1"}}, "spec": {}}
    restarted = with_restart(template, "2026-01-01T00:00:00.000+00:00")
    assert restarted["metadata"]["annotations"] == {
        "a": "1",
        RESTARTED_AT: "2026-01-01T00:00:00.000+00:00",
    }
    assert template["metadata"]["annotations"] == {"a": "1"}  # the input is left alone


# -- scale and divert -------------------------------------------------------------------


@pytest.mark.parametrize("text", ["-1", "two", "1001", ""])
def test_replicas_must_be_a_count_from_0_to_1000(text):
    with pytest.raises(StrategyError, match="whole number"):
        parse_replicas(text)


def test_serving_is_true_or_false():
    assert parse_serving("False") == "false"
    with pytest.raises(StrategyError, match="use false"):
        parse_serving("off")


def pod(name: str, **labels: str) -> dict:
    return {"metadata": {"name": name, "labels": labels}}


def service(name: str, **selector: str) -> dict:
    return {"metadata": {"name": name}, "spec": {"selector": selector}}


def test_traffic_services_select_on_the_label_and_otherwise_match_the_pods():
    pods = [pod("web-1", app="web", serving="true")]
    by_label = service("web", app="web", serving="true")
    services = [
        by_label,
        service("web-all", app="web"),  # routes to them, not by the label
        service("other", app="other", serving="true"),  # by the label, other pods
    ]
    assert traffic_services(services, pods, "serving") == [by_label]
    # Already labelled out, the Service still counts: it routes to them by that label.
    out = [pod("web-1", app="web", serving="false")]
    assert traffic_services(services, out, "serving") == [by_label]


def test_routing_services_are_those_whose_selector_matches_the_pods_now():
    pods = [pod("web-1", app="web")]
    assert routing_services([service("web", app="web"), service("none")], pods) == [
        service("web", app="web")
    ]


def test_an_empty_selector_selects_nothing():
    assert not selects({}, {"app": "web"})
    assert not selects(None, {"app": "web"})
    assert selects({"app": "web"}, {"app": "web", "x": "y"})


# -- blue-green -------------------------------------------------------------------------


def test_the_colours_default_to_service_blue_and_green():
    assert colours_of(BlueGreen(), "jarvis") == {"blue": "jarvis-blue", "green": "jarvis-green"}
    custom = BlueGreen(colours={"a": "web-a", "b": "web-b"})
    assert colours_of(custom, "web") == {"a": "web-a", "b": "web-b"}
    assert other_colour({"a": "web-a", "b": "web-b"}, "a") == "b"


def test_the_live_colour_is_the_selector_value_of_the_label():
    colours = {"blue": "web-blue", "green": "web-green"}
    svc = service("web", app="web", color="green")
    assert live_colour(svc, "color", colours) == "green"


def test_a_selector_value_that_is_no_colour_is_refused_naming_the_colours():
    colours = {"blue": "web-blue", "green": "web-green"}
    with pytest.raises(StrategyError, match=r"selects color=purple, which is none of its colours"):
        live_colour(service("web", app="web", color="purple"), "color", colours)


def test_a_selector_without_the_colour_label_is_refused():
    with pytest.raises(StrategyError, match="has no 'color' in its selector"):
        live_colour(service("web", app="web"), "color", {"blue": "b", "green": "g"})


def test_the_switch_tests_the_approved_colour_and_records_why():
    svc = {"metadata": {"name": "web"}, "spec": {"selector": {"app.kubernetes.io/color": "b"}}}
    assert switch_ops(svc, "app.kubernetes.io/color", "b", "g", "why") == [
        {"op": "test", "path": "/spec/selector/app.kubernetes.io~1color", "value": "b"},
        {"op": "replace", "path": "/spec/selector/app.kubernetes.io~1color", "value": "g"},
        {
            "op": "add",
            "path": "/metadata/annotations",
            "value": {"kubernetes.io/change-cause": "why"},
        },
    ]


def test_pointer_tokens_escape_tilde_and_slash():
    assert pointer_token("a~b/c") == "a~0b~1c"


def endpoints(ready: list[str], not_ready: list[str] = ()) -> dict:
    def address(name: str) -> dict:
        return {"ip": "10.0.0.1", "targetRef": {"kind": "Pod", "name": name}}

    return {
        "subsets": [
            {
                "addresses": [address(n) for n in ready],
                "notReadyAddresses": [address(n) for n in not_ready],
                "ports": [{"port": 80}],
            }
        ]
    }


def test_endpoint_pods_are_read_from_the_target_refs():
    assert endpoint_pods(endpoints(["b-1", "b-2"], ["b-3"])) == ({"b-1", "b-2"}, {"b-3"})
    assert endpoint_pods(None) == (set(), set())
    assert endpoint_pods({"subsets": None}) == (set(), set())


def test_endpoints_serving_another_colour_or_nothing_are_a_problem():
    blue = {"b-1", "b-2"}
    assert serving_problem({"b-1"}, set(), blue, "blue", True) is None
    assert "still serves g-1" in (serving_problem({"b-1", "g-1"}, set(), blue, "blue", True) or "")
    assert "serves no pod" in (serving_problem(set(), {"b-1"}, blue, "blue", True) or "")
    assert serving_problem(set(), set(), set(), "blue", False) is None
