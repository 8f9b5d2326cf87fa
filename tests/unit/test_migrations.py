"""Database migrations: the crossing a rollback makes, how it weighs on the
decision, and who must approve it."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from bot.config import RollbotConfig
from bot.helm_history import revision_from_release
from bot.migrations import (
    Migrations,
    SchemaCrossing,
    SchemaVersionFrom,
    hook_image,
    version_in_template,
    weigh,
)
from bot.policy import (
    NotAllowed,
    check_approver,
    count_approval,
    emergency_waits_for_dbas,
    named_groups,
    still_needed,
)
from bot.records import RollbackRecord, RollbackState, requested

S = RollbackState
DBAS = "S0DBAS"


def crossing(current: str | None = "0042_add_memory_store", target: str | None = "0041", **kw: Any):
    fields: dict[str, Any] = {
        "current_label": "revision 42",
        "target_label": "revision 41",
        "current": current,
        "target": target,
        "source": "pod template annotation rollbot.dev/schema",
        "compatible": False,
        "approvers": (DBAS,),
    }
    return SchemaCrossing(**(fields | kw))


def template(annotations: dict[str, str] | None = None, env: list[Any] | None = None) -> Any:
    return {
        "metadata": {"annotations": annotations or {}, "labels": {"schema": "0041"}},
        "spec": {
            "containers": [
                {"name": "sidecar", "image": "proxy:1"},
                {"name": "app", "image": "web:42", "env": env or []},
            ]
        },
    }


def test_a_revision_declares_its_schema_by_annotation_label_or_env_var():
    tmpl = template({"rollbot.dev/schema": "0042"}, [{"name": "SCHEMA", "value": "0042b"}])
    assert version_in_template(tmpl, SchemaVersionFrom(annotation="rollbot.dev/schema")) == "0042"
    assert version_in_template(tmpl, SchemaVersionFrom(label="schema")) == "0041"
    assert version_in_template(tmpl, SchemaVersionFrom(env="SCHEMA")) == "0042b"
    assert version_in_template(tmpl, SchemaVersionFrom(env="SCHEMA", container="sidecar")) is None
    assert version_in_template(tmpl, SchemaVersionFrom(annotation="other")) is None


def test_the_catalog_takes_one_version_source_and_an_incompatible_migration_needs_approvers():
    with pytest.raises(ValidationError, match="exactly one"):
        SchemaVersionFrom(annotation="a", env="B")
    with pytest.raises(ValidationError, match="needs approvers"):
        Migrations(version_from=SchemaVersionFrom(label="schema"))
    with pytest.raises(ValidationError, match="needs a backup Job"):
        Migrations(
            version_from=SchemaVersionFrom(label="schema"),
            compatible=True,
            downgrade={"image": "app:42", "command": ["alembic", "downgrade", "x"]},
        )
    Migrations(version_from=SchemaVersionFrom(label="schema"), compatible=True)


def test_a_crossing_says_which_revision_ran_which_migration_and_what_it_means():
    lines = crossing().lines()
    assert lines[0] == (
        "Schema: revision 42 ran migration 0042_add_memory_store; revision 41 expects 0041."
    )
    assert "Needs a DBA's approval (S0DBAS)" in lines[1]
    assert "by hand" in lines[2]
    assert crossing().gated and not crossing().runs_downgrade
    planned = crossing(downgrade=True).lines()
    assert planned[2] == (
        "Schema step: a backup Job, then a downgrade Job to 0041, before the app rollback."
    )


def test_a_compatible_crossing_is_only_a_note():
    compatible = crossing(compatible=True)
    assert not compatible.gated
    assert "Declared backward compatible" in compatible.lines()[1]
    assert weigh("low", "no sign of trouble", compatible) == ("low", "no sign of trouble")


def test_the_same_schema_on_both_sides_crosses_nothing():
    same = crossing(current="0041", target="0041")
    assert not same.crossed and not same.gated
    assert same.lines() == [
        "Schema: revision 42 and revision 41 both expect 0041: no migration crossed."
    ]


def test_an_unknown_schema_version_cannot_be_ruled_out_and_is_gated():
    unknown = crossing(target=None)
    assert unknown.gated and not unknown.runs_downgrade
    assert "no schema version for revision 41" in unknown.lines()[0]


def test_an_incompatible_crossing_raises_the_severity_to_at_least_high_and_says_what_to_do():
    severity, recommendation = weigh("low", "no sign of trouble", crossing())
    assert severity == "high"
    assert recommendation.startswith("no sign of trouble; the rollback crosses an incompatible")
    assert "roll the schema back first with a DBA" in recommendation
    assert weigh("critical", "no pod is ready", crossing())[0] == "critical"
    _, planned = weigh("medium", "monitor", crossing(downgrade=True))
    assert "rollbot backs the database up and downgrades the schema first" in planned


def _helm_release(version: int, hook_image_: str) -> dict[str, Any]:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "todo-migrate", "annotations": {"helm.sh/hook": "pre-upgrade"}},
        "spec": {"template": {"spec": {"containers": [{"name": "m", "image": hook_image_}]}}},
    }
    return {
        "name": "todo-app",
        "version": version,
        "namespace": "prod",
        "info": {"status": "deployed"},
        "chart": {"metadata": {"name": "todo", "version": "1.0.0"}},
        "manifest": "",
        "hooks": [
            {
                "name": "todo-migrate",
                "kind": "Job",
                "events": ["pre-upgrade", "pre-install"],
                "manifest": yaml.safe_dump(job),
            }
        ],
    }


def test_a_helm_revision_keeps_its_hooks_and_the_migration_job_image_is_its_schema():
    revision = revision_from_release(_helm_release(7, "ghcr.io/acme/todo-migrate:0042"))
    assert hook_image(list(revision.hooks), "pre-upgrade") == "ghcr.io/acme/todo-migrate:0042"
    assert hook_image(list(revision.hooks), "post-upgrade") is None


# -- the DBAs' approval ---------------------------------------------------------------


def config(**policy: Any) -> RollbotConfig:
    return RollbotConfig.model_validate(
        {
            "approvers": ["ULEAD1", "ULEAD2", "UDBA2"],
            **policy,
            "services": {
                "web": {
                    "namespace": "prod",
                    "migrations": {
                        "version_from": {"annotation": "rollbot.dev/schema"},
                        "approvers": [DBAS],
                    },
                }
            },
        }
    )


def groups_of(user: str, groups: frozenset[str]) -> frozenset[str]:
    return frozenset({DBAS}) & groups if user in ("UDBA", "UDBA2") else frozenset()


def waiting(**changes: Any) -> RollbackRecord:
    record = (
        requested("prod", "web", "UREQ")
        .transition(S.ASSESSED, "a")
        .transition(S.AWAITING_APPROVAL, "asked")
    )
    return record.model_copy(update={"migration": crossing(), **changes})


def test_a_rollback_across_an_incompatible_migration_waits_for_a_dba_after_the_usual_approval():
    cfg = config()
    record = count_approval(cfg, waiting(), "ULEAD1", groups_of)
    assert record.state is S.AWAITING_APPROVAL
    assert still_needed(cfg, record) == (
        "Your approval is recorded (1 of 1); it needs a DBA's approval (one of S0DBAS)."
    )
    with pytest.raises(NotAllowed, match="waits for a DBA's approval"):
        count_approval(cfg, record, "ULEAD2", groups_of)
    approved = count_approval(cfg, record, "UDBA", groups_of)
    assert approved.state is S.APPROVED
    assert approved.schema_approved_by == "UDBA" and approved.approvals == ("ULEAD1",)


def test_a_dba_may_click_approve_only_on_a_rollback_that_waits_for_one():
    cfg = config()
    check_approver(cfg, waiting(), "UDBA", groups_of)
    with pytest.raises(NotAllowed, match="may not approve"):
        check_approver(cfg, waiting(migration=None), "UDBA", groups_of)
    with pytest.raises(NotAllowed, match="may not approve"):
        check_approver(cfg, waiting(schema_approved_by="UDBA2"), "UDBA", groups_of)


def test_one_person_is_either_the_dba_or_an_approver_never_both():
    cfg = config()
    record = count_approval(cfg, waiting(), "UDBA2", groups_of)  # an approver and a DBA
    assert record.state is S.AWAITING_APPROVAL and record.schema_approved_by == "UDBA2"
    with pytest.raises(NotAllowed, match="approved this rollback already"):
        count_approval(cfg, record, "UDBA2", groups_of)
    assert count_approval(cfg, record, "ULEAD1", groups_of).state is S.APPROVED


def test_the_requester_cannot_be_the_dba_of_their_own_rollback():
    record = waiting(requested_by="UDBA")
    with pytest.raises(NotAllowed, match="someone else"):
        count_approval(config(), record, "UDBA", groups_of)


def test_a_compatible_crossing_needs_only_the_usual_approval():
    record = waiting(migration=crossing(compatible=True))
    assert count_approval(config(), record, "ULEAD1", groups_of).state is S.APPROVED


def test_an_emergency_skips_the_dbas_only_where_the_environment_says_so():
    record = waiting(emergency=True)
    strict = config(emergency_skips_approval=True)
    assert emergency_waits_for_dbas(strict, record)
    # It skipped the usual approval: a DBA's click alone approves it.
    assert count_approval(strict, record, "UDBA", groups_of).state is S.APPROVED
    with pytest.raises(NotAllowed, match="waits for a DBA"):
        count_approval(strict, record, "ULEAD1", groups_of)
    lenient = config(emergency_skips_approval=True, emergency_skips_schema_approval=True)
    assert not emergency_waits_for_dbas(lenient, record)


def test_the_catalog_refuses_a_helm_hook_version_on_a_service_that_is_not_a_helm_release():
    migrations = {"version_from": {"helm_hook": "pre-upgrade"}, "compatible": True}
    with pytest.raises(ValidationError, match="needs strategy: helm"):
        RollbotConfig.model_validate({"services": {"web": {"migrations": migrations}}})
    RollbotConfig.model_validate(
        {"services": {"web": {"strategy": "helm", "migrations": migrations}}}
    )
    named = {"version_from": {"env": "V"}, "compatible": True, "deployment": "api"}
    with pytest.raises(ValidationError, match="not one of deployments"):
        RollbotConfig.model_validate(
            {"services": {"shop": {"deployments": ["web", "worker"], "migrations": named}}}
        )


def test_a_blue_green_switch_crosses_what_the_two_colours_declare():
    from bot.schema_versions import read_crossing
    from bot.strategies import Plan

    class Colours:
        def get_deployment(self, namespace: str, name: str) -> dict[str, Any]:
            schema = {"web-blue": "0042", "web-green": "0041"}[name]
            return {"spec": {"template": template({"rollbot.dev/schema": schema})}}

    plan = Plan(
        strategy="blue-green",
        namespace="prod",
        subject="service web (blue-green)",
        current="blue (web-blue)",
        target="green (web-green)",
        changes=(),
        pins={
            "from": "blue",
            "to": "green",
            "from_deployment": "web-blue",
            "deployment": "web-green",
        },
        workloads=("web-green",),
    )
    settings = Migrations(
        version_from=SchemaVersionFrom(annotation="rollbot.dev/schema"), approvers=[DBAS]
    )
    found = read_crossing(Colours(), settings, plan)  # type: ignore[arg-type]
    assert found is not None and found.gated
    assert (found.downgrade, found.check) == (False, False), "the catalog's steps, pinned"
    assert (
        found.lines()[0]
        == "Schema: web-blue (blue) ran migration 0042; web-green (green) expects 0041."
    )


def test_every_user_group_the_config_names_is_read_ahead_dbas_included():
    named = config(
        requesters=["S0DEVS", "UALICE"],
        environments={"prod": {"namespaces": ["prod"], "approvers": ["S0SRE", "ULEAD1"]}},
    )
    assert named_groups(named) == {"S0DEVS", "S0SRE", DBAS}
