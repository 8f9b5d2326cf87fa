"""The runbooks' templates, filled in from one report context."""

from __future__ import annotations

import pytest

from bot.errors import InvalidInput
from bot.incident import ReportContext
from bot.reports import (
    TO_BE_FILLED_IN,
    ReportTemplateError,
    TemplateRenderer,
    default_next_steps,
    template_variables,
)

RUNBOOKS = [
    "email.txt.j2",
    "incident_notification.txt.j2",
    "incident_report.md.j2",
    "rollback_complete.txt.j2",
    "rollback_report.md.j2",
    "slack_alert.txt.j2",
]
#: The runbooks' six, and the status page's public text (which says no "unknown").
BUILTIN = sorted([*RUNBOOKS, "statuspage_incident.txt.j2"])
PLACEHOLDER = TO_BE_FILLED_IN.format(who="the incident lead")
CHANGES = [
    "container app: image: ghcr.io/acme/web:v3 → ghcr.io/acme/web:v2",
    "container app: env API_KEY: •••1a2b3c → •••4d5e6f",
    "container app: env DB added: {'secretKeyRef': {'key': 'url', 'name': 'db'}}",
    "pod: label <track> removed (was canary & co)",
]


def full_context() -> ReportContext:
    return {
        "rollback_id": "rb-20240117-web",
        "service": "jarvis-api",
        "namespace": "production",
        "environment": "production",
        "workloads": ["deployment/web", "deployment/worker"],
        "requested_by": "Jane Doe",
        "approved_by": "John Roe",
        "reason": "error rate 12% after the 14:30 deploy",
        "trigger": "manual",
        "from_revision": 7,
        "to_revision": 6,
        "from_images": ["ghcr.io/acme/web:v3"],
        "to_images": ["ghcr.io/acme/web:v2"],
        "changes": list(CHANGES),
        "outcome": "succeeded",
        "severity": "high",
        "recommendation": "roll back now",
        # Given out of order: the report puts it in time order.
        "timeline": [
            {"at": "2024-01-17T14:36:30+00:00", "state": "approved", "message": "John approved"},
            {"at": "2024-01-17T14:36:00Z", "state": "requested", "message": "Jane asked"},
            {"at": "2024-01-17T14:36:31Z", "state": "rolling out", "message": "patched rev 8"},
            {"at": "2024-01-17T14:39:12Z", "state": "succeeded", "message": "3/3 ready"},
        ],
        "started_at": "2024-01-17T14:36:31Z",
        "finished_at": "2024-01-17T14:39:12Z",
        "pods_before": {"ready": 1, "total": 3, "restarts": 14},
        "pods_after": {"ready": 3, "total": 3, "restarts": 0},
        "health_before": [{"name": "GET /health", "ok": False, "detail": "HTTP 503"}],
        "health_after": [{"name": "GET /health", "ok": True, "detail": "HTTP 200"}],
        "backup_files": ["deployment.yaml", "service.yaml", "configmaps.yaml"],
        "thread_url": "https://acme.slack.com/archives/C1/p1705502160",
        "next_steps": ["Fix the cache key bug (JIRA-1234)"],
        "database": {
            "from_schema": "0042_add_memory_store",
            "to_schema": "0041",
            "source": "env var SCHEMA_VERSION",
            "compatible": False,
            "dba_approved_by": "Dana Bell",
            "order": "schema-first",
            "backup": {"job": "rollbot-rb-20240117-web-backup", "outcome": "succeeded"},
            "downgrade": {"job": "rollbot-rb-20240117-web-downgrade", "outcome": "succeeded"},
            "backup_location": "s3://dumps/rb-20240117-web.sql.gz",
            "check": {"job": "rollbot-rb-20240117-web-check", "outcome": "succeeded"},
            "state": None,
        },
    }


def minimal_context() -> ReportContext:
    return {
        "rollback_id": "rb-1",
        "service": "family-assistant",
        "namespace": "homelab",
        "workloads": ["deployment/family-assistant"],
        "requested_by": "alertmanager",
        "reason": "",
        "trigger": "automatic",
        "outcome": "in progress",
    }


@pytest.fixture
def renderer() -> TemplateRenderer:
    return TemplateRenderer()


def test_the_builtin_templates_are_the_runbooks_six_and_the_status_pages(renderer):
    assert renderer.builtin_names() == BUILTIN
    assert sorted(renderer.render_all(minimal_context())) == BUILTIN


@pytest.mark.parametrize("name", BUILTIN)
def test_every_template_renders_a_full_context(renderer, name):
    text = renderer.render(name, full_context())
    assert "jarvis-api" in text
    assert "None" not in text
    assert text.endswith("\n")


@pytest.mark.parametrize("name", BUILTIN)
@pytest.mark.parametrize(
    "outcome",
    ["succeeded", "failed", "cancelled", "expired", "rolled back but unhealthy", "in progress"],
)
def test_every_template_renders_a_minimal_context_for_every_outcome(renderer, name, outcome):
    context = minimal_context()
    context["outcome"] = outcome  # type: ignore[typeddict-item]
    text = renderer.render(name, context)
    assert "family-assistant" in text
    assert "None" not in text


@pytest.mark.parametrize("name", RUNBOOKS)
def test_optional_facts_given_as_none_or_empty_render_as_unknown(renderer, name):
    context = minimal_context()
    for key in ("environment", "approved_by", "from_revision", "severity", "pods_after"):
        context[key] = None  # type: ignore[literal-required]
    for key in ("timeline", "changes", "health_after", "backup_files", "next_steps"):
        context[key] = []  # type: ignore[literal-required]
    text = renderer.render(name, context)
    assert "None" not in text
    assert "unknown" in text


def test_the_incident_report_lists_the_timeline_in_time_order(renderer):
    text = renderer.render("incident_report.md.j2", full_context())
    lines = [
        "- 2024-01-17 14:36:00 UTC — requested: Jane asked",
        "- 2024-01-17 14:36:30 UTC — approved: John approved",
        "- 2024-01-17 14:36:31 UTC — rolling out: patched rev 8",
        "- 2024-01-17 14:39:12 UTC — succeeded: 3/3 ready",
    ]
    positions = [text.index(line) for line in lines]
    assert positions == sorted(positions)


def test_a_timeline_with_an_unreadable_time_keeps_its_order_and_its_text(renderer):
    context = minimal_context()
    context["timeline"] = [
        {"at": "2024-01-17T14:40:00", "state": "requested", "message": "second by time"},
        {"at": "yesterday", "state": "note", "message": "first by time?"},
    ]
    text = renderer.render("incident_report.md.j2", context)
    assert text.index("2024-01-17 14:40:00 UTC — requested") < text.index("yesterday — note")


def test_the_incident_report_gives_the_time_to_restore_from_request_to_success(renderer):
    text = renderer.render("incident_report.md.j2", full_context())
    assert "**Duration:** 3m12s" in text
    assert "Rollout duration: 2m41s" in text


def test_facts_only_a_person_knows_are_marked_to_be_filled_in_not_invented(renderer):
    text = renderer.render("incident_report.md.j2", full_context())
    for section in ("## Root Cause", "## Lessons Learned"):
        assert text.split(section, 1)[1].lstrip().startswith(PLACEHOLDER)
    assert f"Users affected: {PLACEHOLDER}" in text
    assert f"Revenue impact: {PLACEHOLDER}" in text


def test_the_diff_lines_pass_through_unchanged_and_unescaped(renderer):
    text = renderer.render("incident_report.md.j2", full_context())
    for line in CHANGES:
        assert f"- {line}\n" in text
    assert "&lt;" not in text and "&amp;" not in text


def test_an_unfinished_rollback_has_no_time_to_restore(renderer):
    context = full_context()
    context["outcome"] = "rolled back but unhealthy"
    variables = template_variables(context)
    assert variables["time_to_restore"] is None
    assert variables["time_to_restore_text"] == "not restored"
    text = renderer.render("rollback_complete.txt.j2", context)
    assert text.startswith("NOT RESOLVED:")


def test_a_succeeded_rollback_reads_as_resolved(renderer):
    text = renderer.render("rollback_complete.txt.j2", full_context())
    assert text.startswith("RESOLVED: Production rollback completed successfully\n")
    assert "Rollback Time: 2m41s (time to restore: 3m12s)" in text


def test_the_email_starts_with_a_subject_naming_environment_service_and_outcome(renderer):
    text = renderer.render("email.txt.j2", full_context())
    assert text.splitlines()[0] == "Subject: PRODUCTION ROLLBACK: jarvis-api - Service Restored"


def test_the_rollback_report_shows_health_and_pods_before_and_after_and_backups(renderer):
    text = renderer.render("rollback_report.md.j2", full_context())
    before, after = text.split("## After rollback")
    assert "unhealthy (1 of 1 checks failed: GET /health)" in before
    assert "1/3 ready, 14 restarts" in before
    assert "healthy (1/1 checks passed)" in after
    assert "3/3 ready, 0 restarts" in after
    assert "- configmaps.yaml" in after


def test_given_next_steps_are_used_as_they_are(renderer):
    text = renderer.render("slack_alert.txt.j2", full_context())
    assert "• Fix the cache key bug (JIRA-1234)" in text
    assert "Monitor" not in text


def test_without_next_steps_the_runbooks_follow_up_steps_are_supplied(renderer):
    context = full_context()
    context["next_steps"] = []
    text = renderer.render("rollback_report.md.j2", context)
    assert "1. Monitor error rates, pod health and key metrics for 30 minutes" in text
    assert "Root-cause analysis" in text
    assert "fix forward" in text.lower()


def test_default_next_steps_fit_the_outcome():
    assert default_next_steps("failed")[0].startswith("Escalate")
    assert default_next_steps("cancelled")[0].startswith("If the problem persists")
    assert any("30 minutes" in step for step in default_next_steps("succeeded"))


def test_a_context_without_a_required_fact_is_refused_by_name():
    context = dict(minimal_context())
    del context["service"]
    with pytest.raises(ValueError, match="service"):
        template_variables(context)


def test_an_override_replaces_one_template_and_leaves_the_others(tmp_path):
    template = "{{ service }} rolled back by {{ requested_by }}\n"
    (tmp_path / "slack_alert.txt.j2").write_text(template)
    builtin = TemplateRenderer().render_all(full_context())
    overridden = TemplateRenderer(tmp_path).render_all(full_context())
    assert overridden["slack_alert.txt.j2"] == "jarvis-api rolled back by Jane Doe\n"
    assert {name: text for name, text in overridden.items() if name != "slack_alert.txt.j2"} == {
        name: text for name, text in builtin.items() if name != "slack_alert.txt.j2"
    }


def test_an_override_folder_may_add_templates_of_its_own(tmp_path):
    (tmp_path / "pager.txt.j2").write_text("{{ service }}: {{ time_to_restore_text }}\n")
    renderer = TemplateRenderer(tmp_path)
    assert renderer.render("pager.txt.j2", full_context()) == "jarvis-api: 3m12s\n"
    assert "pager.txt.j2" not in renderer.render_all(full_context())


def test_a_misspelled_variable_names_the_user_template_and_line(tmp_path):
    template = tmp_path / "incident_report.md.j2"
    template.write_text("# {{ service }}\n\n{{ servce }}\n")
    with pytest.raises(ReportTemplateError) as caught:
        TemplateRenderer(tmp_path).render("incident_report.md.j2", full_context())
    assert isinstance(caught.value, InvalidInput)
    assert caught.value.template == str(template)
    assert caught.value.line == 3
    assert str(caught.value) == f"report template {template}, line 3: 'servce' is undefined"


def test_a_syntax_error_names_the_user_template_and_line(tmp_path):
    template = tmp_path / "email.txt.j2"
    template.write_text("Subject: {{ service }}\n{% if restored %}\nrestored\n")
    with pytest.raises(ReportTemplateError, match=r"email\.txt\.j2, line \d: syntax error") as e:
        TemplateRenderer(tmp_path).render("email.txt.j2", full_context())
    assert e.value.template == str(template)


def test_an_error_in_an_included_partial_names_the_partial(tmp_path):
    (tmp_path / "_footer.j2").write_text("ok\n{{ footer_text }}\n")
    (tmp_path / "slack_alert.txt.j2").write_text('{{ service }}\n{% include "_footer.j2" %}\n')
    with pytest.raises(ReportTemplateError, match=r"_footer\.j2, line 2: 'footer_text'"):
        TemplateRenderer(tmp_path).render("slack_alert.txt.j2", full_context())


def test_a_user_template_cannot_reach_python_internals(tmp_path):
    (tmp_path / "slack_alert.txt.j2").write_text("{{ service.__class__.__mro__ }}\n")
    with pytest.raises(ReportTemplateError, match="unsafe"):
        TemplateRenderer(tmp_path).render("slack_alert.txt.j2", full_context())


def test_an_unknown_template_name_is_a_clear_error(renderer):
    with pytest.raises(ReportTemplateError, match="no template named 'pager.txt.j2'"):
        renderer.render("pager.txt.j2", full_context())


def test_an_override_folder_that_does_not_exist_is_refused(tmp_path):
    with pytest.raises(ReportTemplateError, match="not a folder"):
        TemplateRenderer(tmp_path / "missing")
