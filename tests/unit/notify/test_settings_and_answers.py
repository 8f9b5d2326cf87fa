"""The notify section: validated with clear errors, secrets named by their
variables only; and what a destination's answer means (try later or drop)."""

from __future__ import annotations

import httpx
import pytest
import yaml

from bot.config import ConfigError, load_config
from bot.notify.destinations import destinations_from_environment, missing_secrets
from bot.notify.sending import Refused, TryLater, call

NOTIFY = {
    "environments": {"production": {"namespaces": ["prod"]}},
    "notify": {
        "pagerduty": {},
        "webhooks": [{"url": "https://hooks.example.com/rollbot", "secret_env": "HOOK_SECRET"}],
        "statuspage": {
            "page_id": "pg1",
            "environments": ["production"],
            "components": {"web": "c1"},
        },
    },
}


def load(tmp_path, data):
    path = tmp_path / "rollbot.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


def test_a_full_notify_section_loads_with_the_documented_defaults(tmp_path):
    notify = load(tmp_path, NOTIFY).notify
    assert (
        notify.pagerduty
        and notify.pagerduty.url == "https://events.pagerduty.com/v2/change/enqueue"
    )
    assert notify.pagerduty.routing_key_env == "PAGERDUTY_ROUTING_KEY"
    assert notify.statuspage and notify.statuspage.base_url == "https://api.statuspage.io/v1"
    assert notify.statuspage.api_key_env == "STATUSPAGE_API_KEY"
    assert notify.statuspage.component_status == "degraded_performance"


@pytest.mark.parametrize(
    ("notify", "message"),
    [
        (
            {"pagerduty": {"routing_key_env": "e93facc0-4764-012d"}},
            "notify.pagerduty.routing_key_env: Value error, 'e93facc0-4764-012d' is not an "
            "environment variable name",
        ),
        (
            {"webhooks": [{"url": "ftp://x", "secret_env": "S"}]},
            "is not an http:// or https:// URL",
        ),
        ({"webhooks": [{"url": "https://x"}]}, "notify.webhooks.0.secret_env: Field required"),
        (
            {"statuspage": {"page_id": "p", "environments": ["staging"]}},
            "notify.statuspage.environments names staging, not in environments",
        ),
        (
            {
                "statuspage": {
                    "page_id": "p",
                    "environments": ["production"],
                    "component_status": "on_fire",
                }
            },
            "notify.statuspage.component_status",
        ),  # fmt: skip
        ({"pagerduty": {"routing_key": "abc"}}, "notify.pagerduty.routing_key: Extra inputs"),
    ],
)
def test_a_wrong_notify_section_says_where(tmp_path, notify, message):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, {**NOTIFY, "notify": notify})
    assert message in str(err.value)


def test_missing_secrets_are_named_by_their_variables_in_one_line(tmp_path):
    notify = load(tmp_path, NOTIFY).notify
    problem = missing_secrets(notify, {"HOOK_SECRET": "x"})
    assert problem is not None and "\n" not in problem
    assert "PAGERDUTY_ROUTING_KEY (PagerDuty's routing key)" in problem
    assert "STATUSPAGE_API_KEY (the Statuspage API key)" in problem
    assert "HOOK_SECRET" not in problem
    everything = {"HOOK_SECRET": "x", "PAGERDUTY_ROUTING_KEY": "k", "STATUSPAGE_API_KEY": "k"}
    assert missing_secrets(notify, everything) is None


def test_destinations_are_built_in_config_order_with_stable_names(tmp_path):
    config = load(tmp_path, NOTIFY)
    environ = {"HOOK_SECRET": "x", "PAGERDUTY_ROUTING_KEY": "k", "STATUSPAGE_API_KEY": "k"}
    names = [d.name for d in destinations_from_environment(config, environ, None)]  # type: ignore[arg-type]
    assert names[0] == "pagerduty" and names[1].startswith("webhook:") and names[2] == "statuspage"
    with pytest.raises(ConfigError, match="PAGERDUTY_ROUTING_KEY"):
        destinations_from_environment(config, {}, None)  # type: ignore[arg-type]


def answering(status: int, headers: dict[str, str] | None = None) -> httpx.Client:
    return httpx.Client(
        transport=httpx.MockTransport(
            lambda request: httpx.Response(status, headers=headers, json={})
        )
    )


@pytest.mark.parametrize("status", [429, 420, 408, 500, 502, 503])
def test_busy_or_broken_answers_are_tried_again(status):
    with pytest.raises(TryLater):
        call(answering(status), "POST", "https://x", what="X")


def test_retry_after_is_honoured_and_capped():
    with pytest.raises(TryLater) as err:
        call(answering(429, {"Retry-After": "7"}), "POST", "https://x", what="X")
    assert err.value.after == 7
    with pytest.raises(TryLater) as err:
        call(answering(429, {"Retry-After": "86400"}), "POST", "https://x", what="X")
    assert err.value.after == 300


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_a_refusal_is_for_good(status):
    with pytest.raises(Refused, match=f"X answered {status}"):
        call(answering(status), "POST", "https://x", what="X")


def test_no_answer_is_tried_again():
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(TryLater, match="did not answer"):
        call(httpx.Client(transport=httpx.MockTransport(down)), "POST", "https://x", what="X")
