"""The history a person asks for: plain text, change causes redacted."""

from __future__ import annotations

from bot.config import RollbotConfig
from bot.history import HistorySection, history_lines, history_sections
from tests.unit.builders import deployment, replica_set, template

CAUSE = "kubernetes.io/change-cause"


class History:
    """A Deployment web at revision 3, with revisions 2 and 3 in its history."""

    def get_deployment(self, namespace, name):
        return deployment(template("ghcr.io/acme/web:v3"))

    def list_replica_sets(self, namespace, label_selector):
        return [
            replica_set(
                "web-2", "2", template("ghcr.io/acme/web:v2"), annotations={CAUSE: "deploy v2"}
            ),
            replica_set(
                "web-3",
                "3",
                template("ghcr.io/acme/web:v3"),
                annotations={CAUSE: "ci deploy with token=abc123"},
            ),
        ]


def test_a_deployments_history_is_a_titled_section_of_plain_lines():
    [section] = history_sections(History(), RollbotConfig(), "prod", "web")
    assert section.title == "Rollout history of deployment prod/web"
    assert history_lines(History(), RollbotConfig(), "prod", "web") == [
        "Rollout history of deployment prod/web",
        "• 2 web:v2 — deploy v2",
        "• 3 (current) web:v3 — ci deploy with token=[redacted]",
    ]


def test_no_chat_markup_is_in_the_history():
    shown = "\n".join(history_lines(History(), RollbotConfig(), "prod", "web"))
    assert not any(mark in shown for mark in ("*", "`", "<@", ":warning:"))


def test_a_section_without_entries_is_its_title_alone():
    assert HistorySection("Blue-green service prod/web: live colour blue").lines() == [
        "Blue-green service prod/web: live colour blue"
    ]
