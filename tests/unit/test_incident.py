"""A finished rollback's record as its reports show it: people by name, the
assessment's fields, nothing secret, and every file from one call."""

from __future__ import annotations

import json

import pytest

from bot.incident import people, report_context
from bot.records import RollbackRecord, RollbackState, requested
from bot.redaction import REDACTED
from bot.reports import TemplateRenderer, render_report_files

S = RollbackState
NAMES = {"U0ALICE": "alice", "U0BOB": "bob"}


def finished(**changes: object) -> RollbackRecord:
    """web rolled back 4 → 3, asked by alice, approved by bob (an old-style mention)."""
    record = requested("prod", "web", "U0ALICE", reason="5xx after deploy, token=abc123")
    record = record.transition(
        S.ASSESSED,
        "revision 4 → 3",
        from_revision=4,
        target_revision=3,
        assessment=("Rollout: complete", "Pods: 1/3 ready, 9 restarts"),
        severity="high",
        recommendation="more than half the pods are failing: roll back now",
    )
    record = record.transition(S.AWAITING_APPROVAL, "confirmation posted")
    record = record.transition(
        S.APPROVED, "approved by <@U0BOB>", actor="U0BOB", approved_by="U0BOB"
    )
    record = record.note("asked for status", actor="U0CAROL")
    for state in (S.BACKING_UP, S.ROLLING_BACK, S.VERIFYING, S.SUCCEEDED):
        record = record.transition(state, f"now {state.value}")
    return record.model_copy(update=changes)


@pytest.fixture(scope="module")
def renderer() -> TemplateRenderer:
    return TemplateRenderer()


def test_people_are_shown_by_name_when_known_else_by_id_never_as_mentions(renderer):
    context = report_context(finished(), NAMES)
    assert (context["requested_by"], context["approved_by"]) == ("alice", "bob")
    approved, carol = (e for e in context["timeline"] if e["state"] == "approved")
    assert approved["message"] == "approved by bob"
    assert approved["actor"] is None, "the message names them already"
    assert (carol["message"], carol["actor"]) == ("asked for status", "U0CAROL")
    assert [e["state"] for e in context["timeline"]][2] == "awaiting approval"

    record = finished()
    _, files = render_report_files(record, renderer, NAMES)
    everything = "\n".join(files.values())
    assert "<@" not in everything
    report = files[f"{record.id}-incident-report.md"]
    assert "**Triggered By:** alice" in report and "**Approved By:** bob" in report
    assert "asked for status (U0CAROL)" in report


def test_without_names_people_are_their_ids():
    context = report_context(finished())
    assert (context["requested_by"], context["approved_by"]) == ("U0ALICE", "U0BOB")
    approved = next(e for e in context["timeline"] if e["state"] == "approved")
    assert approved["message"] == "approved by U0BOB"


def test_the_ids_a_report_names_are_listed_for_looking_up():
    assert people(finished()) == {"U0ALICE", "U0BOB", "U0CAROL"}


def test_severity_and_recommendation_come_from_the_records_fields():
    context = report_context(finished())
    assert context["severity"] == "high"
    assert context["recommendation"] == "more than half the pods are failing: roll back now"


def test_an_old_record_without_a_recommendation_field_reports_none_and_parses_nothing():
    old = finished(
        recommendation=None, assessment=("Severity: *high* — roll back now", "Pods: 1/3 ready")
    )
    assert report_context(old)["recommendation"] is None


def test_the_reason_is_redacted_in_the_record_and_the_report(renderer):
    record = finished()
    assert record.reason == f"5xx after deploy, token={REDACTED}"
    _, files = render_report_files(record, renderer)
    assert "abc123" not in "\n".join(files.values())


def test_every_report_file_comes_from_one_call_and_the_backup_only_redacted(renderer):
    record = finished()
    backup = {
        "deployment": {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "app", "image": "app:v3", "env": [{"name": "K", "value": "v"}]}
                        ]
                    }
                }
            }
        },
        "config_maps": [{"kind": "ConfigMap", "data": {"FLAG": "on-secretly"}}],
    }
    summary, files = render_report_files(record, renderer, NAMES, backup=backup)
    assert summary.startswith("RESOLVED")
    assert sorted(files) == [
        f"{record.id}-backup.json",
        f"{record.id}-communications.txt",
        f"{record.id}-incident-report.md",
        f"{record.id}-rollback-report.md",
    ]
    shown = json.loads(files[f"{record.id}-backup.json"])
    container = shown["deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == [{"name": "K", "value": REDACTED}]
    assert "on-secretly" not in files[f"{record.id}-backup.json"]
    assert "===== Email =====" in files[f"{record.id}-communications.txt"]
    _, without = render_report_files(record, renderer)
    assert f"{record.id}-backup.json" not in without


def test_credentials_in_the_diff_lines_do_not_reach_the_report():
    record = finished(changes=("container app: args: ['--token=abc123'] → ['--port', '80']",))
    assert report_context(record)["changes"] == [
        f"container app: args: ['--token={REDACTED}'] → ['--port', '80']"
    ]
