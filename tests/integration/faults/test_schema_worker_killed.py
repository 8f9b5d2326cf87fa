"""A rollback across a migration whose worker is killed (SIGKILL) right after it
created a schema Job: another worker finds that Job by its name and follows it
instead of starting a second one; the backup and the downgrade each run once,
and the schema ends at the target."""

from __future__ import annotations

from typing import Any

from bot.records import RollbackState
from bot.store import RollbackStore
from handlers.ids import ActionId
from testbed.slack_api import FakeSlackApi
from testbed.slack_user import SlackUser
from tests.integration.faults.conftest import CHANNEL, finished, question, request_and_approve
from tests.integration.faults.harness import SECRET, wait_until
from tests.integration.test_schema_steps import DBA, DBAS, app, config, schema_version
from tests.integration.workloads import Workloads

__all__ = ["app"]  # the fixture: the app on schema 0042 over a real database


def pods_of(workloads: Workloads, job: str) -> list[Any]:
    return workloads.core.list_namespaced_pod(
        workloads.namespace, label_selector=f"job-name={job}"
    ).items


def test_a_worker_killed_after_creating_a_schema_job_is_replaced_and_the_job_runs_once(
    rollbot, slack: FakeSlackApi, store: RollbackStore, workloads: Workloads, app: str,
    postgres, tmp_path,
) -> None:  # fmt: skip
    settings = config(workloads.namespace, postgres, tmp_path)
    services = settings.model_dump(mode="json", exclude_unset=True)["services"]
    slack.add_usergroup(DBAS, [DBA])
    bot = rollbot(services=services)
    doomed = bot.start_worker(failpoint="schema_job_created")
    record_id = request_and_approve(bot, slack, f"web -n {workloads.namespace}")
    _, ts = wait_until("the confirmation", lambda: question(slack))
    dba = SlackUser(bot.events_url, DBA, CHANNEL, SECRET)
    assert dba.click(ActionId.APPROVE, record_id, ts).status_code == 200
    assert bot.wait_exit(doomed) == -9, f"the worker did not create a Job:\n{bot.logs()}"
    bot.start_worker()

    record = finished(store, record_id)

    assert record.state is RollbackState.SUCCEEDED, (record.error, bot.logs())
    assert record.schema_steps == ("backup", "downgrade", "check")
    assert schema_version(app) == "0041"
    for step in ("backup", "downgrade"):
        assert len(pods_of(workloads, f"rollbot-{record_id}-{step}")) == 1, step
    # The thread's lines reach Slack through the outbox, at Slack's pace (about one
    # a second per channel): they may still be on their way when the record ends.
    followed = f"Job rollbot-{record_id}-backup exists already (a previous attempt)"
    wait_until(
        "the thread saying the Job was followed",
        lambda: any(followed in m.text for m in slack.messages(CHANNEL)) or None,
        timeout=60,
    )
