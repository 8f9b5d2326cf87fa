"""The form's targets: the history as choices, the way each strategy reads it."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot.config import RollbotConfig
from bot.errors import NamespaceNotAllowed
from bot.history import Targets, rollback_targets
from tests.unit.builders import deployment, replica_set, template


class ThreeRevisions:
    """web at revision 3, with 1 and 2 behind it."""

    def get_deployment(self, namespace, name):
        return deployment(template("ghcr.io/acme/web:v3"))

    def list_replica_sets(self, namespace, label_selector):
        return [
            replica_set(f"web-{n}", str(n), template(f"ghcr.io/acme/web:v{n}")) for n in (1, 2, 3)
        ]


def test_a_deployments_targets_are_newest_first_without_the_current_one():
    targets = rollback_targets(ThreeRevisions(), RollbotConfig(), "prod", "web")
    assert [(t.revision, t.what) for t in targets.choices] == [(2, "web:v2"), (1, "web:v1")]
    assert targets.default == 2, "what an undo with no --to-revision picks"
    assert all(t.created is None or isinstance(t.created, datetime) for t in targets.choices)


def test_a_deployment_with_one_revision_has_nothing_to_pick():
    class One(ThreeRevisions):
        def list_replica_sets(self, namespace, label_selector):
            return [replica_set("web-3", "3", template("ghcr.io/acme/web:v3"))]

    assert rollback_targets(One(), RollbotConfig(), "prod", "web") == Targets((), None)


def test_blue_green_and_several_deployments_have_a_fixed_target():
    config = RollbotConfig.model_validate(
        {
            "services": {
                "jarvis": {"strategy": "blue-green"},
                "eli": {"deployments": ["eli-backend", "eli-worker"]},
            }
        }
    )
    assert rollback_targets(None, config, "prod", "jarvis").fixed == "the other colour"
    assert "previous revision" in rollback_targets(None, config, "prod", "eli").fixed


def test_a_namespace_rollbot_may_not_touch_is_refused_before_the_cluster_is_read():
    config = RollbotConfig(namespaces=["staging"])
    with pytest.raises(NamespaceNotAllowed):
        rollback_targets(None, config, "prod", "web")
