"""The Helm hook case: a release whose migration is a `pre-upgrade` hook Job (the
test bed runs its `alembic upgrade` for real). `helm rollback` runs no such hook
backwards; rollbot reads each revision's migration image from the release,
waits for a DBA, downgrades the schema with the newer image, then rolls the
release back."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import psycopg
import pytest

from bot.config import RollbotConfig
from bot.records import RollbackState
from bot.strategies import HelmSettings
from handlers.ids import ActionId
from testbed import binaries
from testbed.local_containers import RUN_LOCAL_ANNOTATION
from tests.integration.slack_helpers import (
    ALICE,
    BOB,
    CHANNEL,
    SlackUser,
    confirmation,
    final,
)

pytestmark = pytest.mark.cluster
CHART = Path(__file__).parent.parent / "fixtures" / "charts" / "family-assistant"
INI = str(Path(__file__).parent.parent / "fixtures" / "sample_migrations" / "alembic.ini")
DBAS, DBA = "S0DBAS", "U0DBA"
DATABASE_URL = {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}}


def schema_version(dsn: str) -> str | None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("select version_num from alembic_version").fetchone()
    return str(row[0]) if row else None


def helm(control_plane, namespace: str, *args: str) -> None:
    done = subprocess.run(
        [str(binaries.testbed_binaries() / "helm"), *args, "-n", namespace]
        + ["--kubeconfig", str(control_plane.kubeconfig)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr


def test_a_release_whose_hook_migrated_is_rolled_back_schema_first_with_a_dba(
    make_bot, slack, control_plane, workloads, postgres_dsn
):
    ns = workloads.namespace
    url = base64.b64encode(postgres_dsn.encode()).decode()
    workloads.core.create_namespaced_secret(ns, {"metadata": {"name": "db"}, "data": {"url": url}})
    for schema in ("0041", "0042"):  # each revision's hook migrates, for real
        helm(
            control_plane, ns, "upgrade", "--install", "family-assistant", str(CHART), "--wait",
            "--set", f"schema={schema},tag={schema},alembicConfig={INI}",
        )  # fmt: skip
    assert schema_version(postgres_dsn) == "0042"
    slack.add_usergroup(DBAS, [DBA])
    job = {"env": [DATABASE_URL], "pod_annotations": {RUN_LOCAL_ANNOTATION: "true"}}
    config = RollbotConfig.model_validate(
        {
            "services": {
                "family-assistant": {
                    "namespace": ns,
                    "strategy": "helm",
                    "migrations": {
                        "version_from": {"helm_hook": "pre-upgrade"},
                        "approvers": [DBAS],
                        "backup": {**job, "image": "postgres:16", "command": ["true"]},
                        "backup_location": "nowhere (the test keeps none)",
                        "downgrade": {
                            **job,
                            "image": "{{ current_image }}",
                            "command": ["alembic", "-c", INI, "downgrade", "{{ target_schema }}"],
                        },
                    },
                }
            }
        }
    )
    bot = make_bot(
        config,
        helm=HelmSettings(str(binaries.testbed_binaries() / "helm"), str(control_plane.kubeconfig)),
    )

    SlackUser(bot.url, ALICE).command("family-assistant")
    record_id, ts = confirmation(slack)
    shown = json.dumps(slack.thread(CHANNEL, ts)[0].blocks, ensure_ascii=False)
    assert "helm revision 2 ran migration 0042; helm revision 1 expects 0041" in shown
    SlackUser(bot.url, BOB).click(ActionId.APPROVE, record_id, ts)
    SlackUser(bot.url, DBA).click(ActionId.APPROVE, record_id, ts)

    record = final(bot.store, record_id, timeout=180)

    assert record.state is RollbackState.SUCCEEDED, record.error
    assert record.migration is not None
    assert record.migration.current_image == "registry.example/family-assistant:0042"
    assert schema_version(postgres_dsn) == "0041"
    assert workloads.images_of("family-assistant") == ["registry.example/family-assistant:0041"]
