"""The `notify:` section of the config: where each rollback's change events go.

Secrets are never in the file: it names the environment variables that hold
them (the chart fills them from a Secret), and `bot/notify/destinations.py`
reads them at start, where a missing one is one clear line.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError(
            f"{value!r} is not an environment variable name: name the variable "
            "that holds the secret, never the secret itself"
        )
    return value


def _http_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+", value):
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    return value.rstrip("/")


EnvName = Annotated[str, AfterValidator(_env_name)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]

#: What a Statuspage component may be set to while its service is rolled back.
ComponentStatus = Literal[
    "degraded_performance", "partial_outage", "major_outage", "under_maintenance"
]


class PagerDutySettings(BaseModel):
    """PagerDuty Events API v2 change events (they show beside the service's incidents)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    #: The variable holding the service integration's routing key.
    routing_key_env: EnvName = "PAGERDUTY_ROUTING_KEY"
    url: HttpUrl = "https://events.pagerduty.com/v2/change/enqueue"


class WebhookSettings(BaseModel):
    """A URL that receives every change event as JSON, signed with HMAC-SHA256."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    url: HttpUrl
    #: The variable holding the shared signing secret.
    secret_env: EnvName


class StatuspageSettings(BaseModel):
    """An Atlassian Statuspage-compatible page: an incident per rollback, opened
    when it starts and resolved when it succeeds."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    base_url: HttpUrl = "https://api.statuspage.io/v1"
    page_id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")
    #: The variable holding the API key.
    api_key_env: EnvName = "STATUSPAGE_API_KEY"
    #: The environments (of `environments:`) whose rollbacks the page tells.
    environments: list[str] = Field(min_length=1)
    #: Service (its name in `services:`, or the Deployment's) → its component's id.
    components: dict[str, str] = Field(default_factory=dict)
    #: The component's status while its service is rolled back.
    component_status: ComponentStatus = "degraded_performance"


class NotifySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    pagerduty: PagerDutySettings | None = None
    webhooks: list[WebhookSettings] = Field(default_factory=list)
    statuspage: StatuspageSettings | None = None
    #: Your Slack workspace's URL (https://acme.slack.com): events link to the thread.
    slack_workspace_url: HttpUrl | None = None
    #: Each call to a destination gives up after this long (and is tried again).
    timeout_seconds: float = Field(default=10, gt=0, le=120)
    #: Tell PagerDuty and the webhooks of rollback drills too, marked DRILL (the
    #: status page never hears of them). Off: a drill is sent to no one.
    include_drills: bool = False

    @property
    def any(self) -> bool:
        return bool(self.pagerduty or self.webhooks or self.statuspage)
