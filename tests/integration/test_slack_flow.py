"""The product as its users meet it: signed Slack requests to the running Bolt
app, a local Slack Web API, a real redis-server and the real control plane.

/rollback → confirmation with the plan → Approve → worker → live thread.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from bot.config import RollbotConfig
from bot.records import RollbackRecord, RollbackState
from bot.store import RollbackStore
from handlers.ids import ActionId
from tests.integration.slack_helpers import (
    ALICE,
    BOB,
    CHANNEL,
    MALLORY,
    SlackUser,
    confirmation,
    ephemerals,
    final,
    wait_for,
)

pytestmark = pytest.mark.cluster


def test_slash_command_to_approved_rollback_with_a_live_thread(make_bot, slack, workloads):
    workloads.create(
        "web", ["app:v1", "app:v2-broken"], replicas=3, progress_deadline=5, wait=False
    )
    workloads.wait_deadline_exceeded("web")
    bot = make_bot(RollbotConfig(incidents_channel="C0ALLINCIDENTS"))
    answer = SlackUser(bot.url, ALICE).command(
        f'web -n {workloads.namespace} --reason "500s after v2"'
    )
    assert answer.status_code == 200
    assert "Assessing" in answer.json()["text"]

    record_id, root_ts = confirmation(slack)
    root = slack.thread(CHANNEL, root_ts)[0]
    shown = json.dumps(root.blocks, ensure_ascii=False)
    assert "app:v2-broken" in shown and "app:v1" in shown
    assert "container app: image: app:v2-broken → app:v1" in shown
    assert "Severity: *high* — the new revision missed its progress deadline" in shown
    assert "Pods: 3/4 ready" in shown and "CrashLoopBackOff" in shown

    assert SlackUser(bot.url, BOB).click(ActionId.APPROVE, record_id, root_ts).status_code == 200
    record = final(bot.store, record_id)
    assert record.state is RollbackState.SUCCEEDED, record.timeline
    assert record.approved_by == BOB
    assert workloads.images_of("web") == ["app:v1"]
    assert workloads.get("web")["status"]["availableReplicas"] == 3

    # The report is the last thing posted: once it is there, the thread is complete.
    files = wait_for("the report files", lambda: len(slack.files()) >= 3 and slack.files())
    assert {f.thread_ts for f in files} == {root_ts}
    by_name = {f.filename: f.content.decode() for f in files}
    report = by_name[f"{record_id}-incident-report.md"]
    assert record_id in report and "500s after v2" in report
    assert '"image": "app:v2-broken"' in by_name[f"{record_id}-backup.json"]
    assert f"{record_id}-rollback-report.md" in by_name
    communications = by_name[f"{record_id}-communications.txt"]
    assert "===== Email =====" in communications and "Subject:" in communications
    announced = wait_for("the incidents channel", lambda: slack.messages("C0ALLINCIDENTS"))
    assert announced[0].text.startswith("RESOLVED")
    wait_for(
        "the summary",
        lambda: any(m.text.startswith("RESOLVED") for m in slack.thread(CHANNEL, root_ts)),
    )
    transcript = [m.text for m in slack.thread(CHANNEL, root_ts)]
    assert any(t.startswith("Backup saved") for t in transcript)
    assert any(t.startswith("Rollback applied: revision 2 → 1") for t in transcript)
    assert any("successfully rolled out" in t for t in transcript)
    assert any(t.startswith(f"Rollback {record_id} succeeded") for t in transcript)
    root = slack.thread(CHANNEL, root_ts)[0]
    assert "succeeded" in json.dumps(root.blocks, ensure_ascii=False) and root.updated >= 1
    assert "Approve" not in json.dumps(root.blocks, ensure_ascii=False), (
        "the buttons are gone once decided"
    )
    states = [e.state for e in record.timeline]
    assert states[:3] == [
        RollbackState.REQUESTED,
        RollbackState.ASSESSED,
        RollbackState.AWAITING_APPROVAL,
    ]
    assert states[-1] is RollbackState.SUCCEEDED
    assert (
        bot.store.get_backup(record_id)["deployment"]["spec"]["template"]["spec"]["containers"][0][
            "image"
        ]
        == "app:v2-broken"
    )


def test_self_approval_is_refused_and_an_unlisted_approver_too(make_bot, slack, workloads):
    workloads.create("web", ["app:v1", "app:v2"])
    bot = make_bot(RollbotConfig(approvers=[BOB]))
    SlackUser(bot.url, ALICE).command(f"web -n {workloads.namespace}")
    record_id, ts = confirmation(slack)
    SlackUser(bot.url, ALICE).click(ActionId.APPROVE, record_id, ts)
    SlackUser(bot.url, MALLORY).click(ActionId.APPROVE, record_id, ts)
    wait_for(
        "two refusals",
        lambda: len(ephemerals(slack, ALICE)) >= 1 and len(ephemerals(slack, MALLORY)) >= 1,
    )
    assert "someone else to approve" in ephemerals(slack, ALICE)[-1]
    assert "may not approve" in ephemerals(slack, MALLORY)[-1]
    record = bot.store.get(record_id)
    assert record.state is RollbackState.AWAITING_APPROVAL
    refusals = [e.message for e in record.timeline if e.message.startswith("click by")]
    assert len(refusals) == 2, refusals
    assert workloads.images_of("web") == ["app:v2"]


def test_a_double_click_runs_the_rollback_once(make_bot, slack, workloads):
    workloads.create("web", ["app:v1", "app:v2"])
    bot = make_bot(workers=2)
    SlackUser(bot.url, ALICE).command(f"web -n {workloads.namespace}")
    record_id, ts = confirmation(slack)
    bob = SlackUser(bot.url, BOB)
    bob.click(ActionId.APPROVE, record_id, ts)
    bob.click(ActionId.APPROVE, record_id, ts)
    record = final(bot.store, record_id)
    assert record.state is RollbackState.SUCCEEDED
    assert [e.state for e in record.timeline].count(RollbackState.APPROVED) == 1
    assert sorted(workloads.revisions("web")) == [2, 3], "one rollback, not two"
    wait_for("the second click's answer", lambda: ephemerals(slack, BOB))
    assert "already" in ephemerals(slack, BOB)[-1]


def test_a_second_rollback_of_the_same_workload_is_told_who_holds_it(make_bot, slack, workloads):
    workloads.create("web", ["app:v1", "app:v2"])
    bot = make_bot()
    bot.store.lock_workload(f"{workloads.namespace}/web", "rb-other")
    bot.store.create(
        RollbackRecord(
            id="rb-other", namespace=workloads.namespace, workload="web", requested_by=BOB
        )
    )
    answer = SlackUser(bot.url, ALICE).command(f"web -n {workloads.namespace}")
    assert "already in progress (`rb-other`, requested by <@U0BOB>)" in answer.json()["text"]


def test_a_rollback_running_from_a_terminal_is_named_as_such(make_bot, slack, workloads):
    workloads.create("web", ["app:v1", "app:v2"])
    bot = make_bot()
    key = f"{workloads.namespace}/web"
    bot.store.lock_workload(key, "rb-fromcli")
    bot.store.create(
        RollbackRecord(
            id="rb-fromcli", namespace=workloads.namespace, workload="web",
            requested_by="ci-job", trigger="cli",
        )
    )  # fmt: skip
    alice = SlackUser(bot.url, ALICE)
    text = alice.command(f"web -n {workloads.namespace}").json()["text"]
    assert "web is being rolled back from a terminal by ci-job (`rb-fromcli`)" in text
    bot.store.redis.delete("rollbot:record:rb-fromcli")  # its record gone meanwhile
    text = alice.command(f"web -n {workloads.namespace}").json()["text"]
    assert "already in progress (`rb-fromcli`): see its thread" in text


def test_an_unknown_deployment_is_refused_to_the_requester_alone(make_bot, slack, workloads):
    bot = make_bot()
    SlackUser(bot.url, ALICE).command(f"ghost -n {workloads.namespace}")
    wait_for("the refusal", lambda: ephemerals(slack, ALICE))
    assert "deployment 'ghost' not found" in ephemerals(slack, ALICE)[-1]
    assert not [m for m in slack.messages(CHANNEL) if m.ephemeral_user is None]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("web --to-revision two", "takes a revision number"),
        ("Web_App", "DNS-1123"),
        ("web -n kube-system", "not one rollbot may touch"),
    ],
)
def test_bad_commands_get_a_clear_answer_and_record_nothing(make_bot, slack, text, message):
    bot = make_bot(RollbotConfig(namespaces=["prod"]))
    answer = SlackUser(bot.url, ALICE).command(text)
    assert answer.status_code == 200
    assert message in answer.json()["text"]
    assert bot.store.recent() == []


def test_a_command_whose_text_says_payload_is_read_like_any_other(make_bot, slack, workloads):
    # Bolt's own parser took any form with "payload" in it for a button's payload.
    workloads.create("web", ["app:v1", "app:v2"])
    bot = make_bot()
    answer = SlackUser(bot.url, ALICE).command(
        f'web -n {workloads.namespace} --reason "payload=1 broke the schema"'
    )
    assert answer.status_code == 200
    assert "Assessing" in answer.json()["text"]
    [record] = bot.store.recent()
    assert record.reason == "payload=1 broke the schema"


def test_an_unlisted_requester_is_refused(make_bot, slack):
    bot = make_bot(RollbotConfig(requesters=[BOB]))
    answer = SlackUser(bot.url, ALICE).command("web")
    assert "may request a rollback" in answer.json()["text"]
    assert bot.store.recent() == []


def test_an_expired_confirmation_cannot_be_approved(make_bot, slack, workloads):
    workloads.create("web", ["app:v1", "app:v2"])
    bot = make_bot(RollbotConfig(confirmation_ttl_seconds=1))
    SlackUser(bot.url, ALICE).command(f"web -n {workloads.namespace}")
    record_id, ts = confirmation(slack)
    time.sleep(1.2)
    SlackUser(bot.url, BOB).click(ActionId.APPROVE, record_id, ts)
    record = final(bot.store, record_id, timeout=15)
    assert record.state is RollbackState.EXPIRED
    wait_for("the answer", lambda: ephemerals(slack, BOB))
    assert "expired" in ephemerals(slack, BOB)[-1]
    assert workloads.images_of("web") == ["app:v2"]


def test_cancel_leaves_the_workload_alone_and_says_so_in_the_message(make_bot, slack, workloads):
    workloads.create("web", ["app:v1", "app:v2"])
    bot = make_bot()
    SlackUser(bot.url, ALICE).command(f"web -n {workloads.namespace}")
    record_id, ts = confirmation(slack)
    SlackUser(bot.url, ALICE).click(ActionId.CANCEL, record_id, ts)
    record = final(bot.store, record_id, timeout=15)
    assert record.state is RollbackState.CANCELLED
    wait_for(
        "the message to show it",
        lambda: "cancelled" in json.dumps(slack.thread(CHANNEL, ts)[0].blocks),
    )
    assert workloads.images_of("web") == ["app:v2"]


def test_requests_with_a_bad_signature_or_a_stale_timestamp_are_rejected(make_bot, slack):
    bot = make_bot()
    forged = SlackUser(bot.url, ALICE, secret="not-the-secret").command("web")
    stale = SlackUser(bot.url, ALICE).command("web", timestamp=int(time.time()) - 600)
    assert (forged.status_code, stale.status_code) == (401, 401)
    assert bot.store.recent() == []


def test_slack_rate_limits_are_waited_out(make_bot, slack, workloads):
    workloads.create("web", ["app:v1", "app:v2"])
    bot = make_bot()
    slack.fail_next("chat.postMessage", status=429, retry_after=1, times=1)
    SlackUser(bot.url, ALICE).command(f"web -n {workloads.namespace}")
    record_id, _ = confirmation(slack)
    assert bot.store.get(record_id).state is RollbackState.AWAITING_APPROVAL
    assert any(c.status == 429 for c in slack.calls("chat.postMessage"))


def test_a_rollback_whose_worker_died_after_the_patch_is_finished_by_another(
    make_bot, slack, workloads, kube, redis_client
):
    """The dead worker applied the patch and took its job with it; the record says
    'rolling back'. Another worker takes the job back and follows the rollout,
    without patching a second time."""
    from bot.engine import apply_rollback, change_cause_for, plan_rollback
    from bot.store import Job, JobQueue

    workloads.create("web", ["app:v1", "app:v2"])
    store = RollbackStore(redis_client)
    plan = plan_rollback(kube, RollbotConfig(), workloads.namespace, "web")
    record = RollbackRecord(
        namespace=workloads.namespace,
        workload="web",
        requested_by=ALICE,
        channel=CHANNEL,
        from_revision=2,
        target_revision=1,
        target_replica_set=plan.target.replica_set,
        approved_by=BOB,
    )
    store.create(record)
    for state in (
        RollbackState.ASSESSED,
        RollbackState.AWAITING_APPROVAL,
        RollbackState.APPROVED,
        RollbackState.BACKING_UP,
        RollbackState.ROLLING_BACK,
    ):
        store.update(record.id, lambda r, s=state: r.transition(s, f"→ {s}"))
    store.lock_workload(record.workload_key, record.id)
    apply_rollback(kube, RollbotConfig(), plan, change_cause=change_cause_for(plan, BOB))
    dead = JobQueue(redis_client, worker_id="dead")
    dead.enqueue(Job(kind="execute", record_id=record.id))
    assert dead.take(1) is not None
    redis_client.delete("rollbot:worker:dead")  # its heartbeat stops: it died

    bot = make_bot()
    done = final(bot.store, record.id)
    assert done.state is RollbackState.SUCCEEDED, done.timeline
    assert sorted(workloads.revisions("web")) == [2, 3], "patched once, by the dead worker"
    assert any("already applied" in m.text for m in slack.messages(CHANNEL))
    assert bot.store.lock_holder(record.workload_key) is None


def test_a_redelivered_command_is_acted_on_once(make_bot, slack, workloads):
    workloads.create("web", ["app:v1", "app:v2"])
    bot = make_bot()
    alice = SlackUser(bot.url, ALICE)
    first = alice.command(f"web -n {workloads.namespace}", trigger_id="trigger-1")
    again = alice.command(
        f"web -n {workloads.namespace}",
        trigger_id="trigger-1",
        headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "timeout"},
    )
    assert "Assessing" in first.json()["text"]
    assert "already received" in again.json()["text"]
    assert len(bot.store.recent()) == 1


def test_history_is_answered_to_the_asker_alone(make_bot, slack, workloads):
    workloads.create("web", ["app:v1", "app:v2"])
    bot = make_bot()
    answer = SlackUser(bot.url, ALICE).command(f"history web -n {workloads.namespace}")
    assert "Reading the history" in answer.json()["text"]
    text = wait_for("the history", lambda: ephemerals(slack, ALICE))[-1]
    assert "• 1 app:v1 — revision 1: app:v1" in text
    assert "• 2 (current) app:v2" in text


CAROL = "U0CAROL"


def two_approvals(namespace: str, **extra: Any) -> RollbotConfig:
    return RollbotConfig.model_validate(
        {
            "environments": {
                "prod": {
                    "namespaces": [namespace],
                    "approvals": 2,
                    "approvers": [BOB, CAROL],
                    **extra,
                }
            }
        }
    )


def test_an_environment_needing_two_approvals_waits_for_the_second(make_bot, slack, workloads):
    workloads.create("web", ["app:v1", "app:v2"])
    bot = make_bot(two_approvals(workloads.namespace))
    SlackUser(bot.url, ALICE).command(f"web -n {workloads.namespace}")
    record_id, ts = confirmation(slack)
    SlackUser(bot.url, BOB).click(ActionId.APPROVE, record_id, ts)
    wait_for("the first approval's answer", lambda: ephemerals(slack, BOB))
    assert "recorded (1 of 2)" in ephemerals(slack, BOB)[-1]
    assert bot.store.get(record_id).state is RollbackState.AWAITING_APPROVAL
    SlackUser(bot.url, BOB).click(ActionId.APPROVE, record_id, ts)  # not twice by one person
    wait_for("the second answer", lambda: len(ephemerals(slack, BOB)) >= 2)
    assert "approved this rollback already" in ephemerals(slack, BOB)[-1]
    SlackUser(bot.url, CAROL).click(ActionId.APPROVE, record_id, ts)
    record = final(bot.store, record_id)
    assert record.state is RollbackState.SUCCEEDED
    assert record.approvals == (BOB, CAROL)
    assert workloads.images_of("web") == ["app:v1"]


def test_emergency_runs_without_approval_only_where_policy_allows(make_bot, slack, workloads):
    workloads.create("web", ["app:v1", "app:v2"])
    strict = make_bot(two_approvals(workloads.namespace))
    refused = SlackUser(strict.url, ALICE).command(f"web -n {workloads.namespace} --emergency")
    assert "--emergency may not skip approval in prod" in refused.json()["text"]
    assert strict.store.recent() == []
    strict.stop()

    bot = make_bot(two_approvals(workloads.namespace, emergency_skips_approval=True))
    SlackUser(bot.url, ALICE).command(f"web -n {workloads.namespace} --emergency")
    record = final(bot.store, wait_for("the record", lambda: bot.store.recent())[0].id)
    assert record.state is RollbackState.SUCCEEDED, record.timeline
    assert "emergency: approval skipped by policy" in [e.message for e in record.timeline]
    assert workloads.images_of("web") == ["app:v1"]


def test_user_groups_grant_requesting_and_approving(make_bot, slack, workloads):
    workloads.create("web", ["app:v1", "app:v2"])
    slack.add_usergroup("S0ONCALL", [ALICE])
    slack.add_usergroup("S0LEADS", [CAROL])
    bot = make_bot(RollbotConfig(requesters=["S0ONCALL"], approvers=["S0LEADS"]))

    def both_read() -> bool:
        asked = {c.args.get("usergroup") for c in slack.calls("usergroups.users.list")}
        return asked == {"S0ONCALL", "S0LEADS"}

    wait_for("the groups read ahead", both_read)
    read = len(slack.calls("usergroups.users.list"))
    refused = SlackUser(bot.url, MALLORY).command(f"web -n {workloads.namespace}")
    assert "may request a rollback" in refused.json()["text"]
    SlackUser(bot.url, ALICE).command(f"web -n {workloads.namespace}")
    record_id, ts = confirmation(slack)
    SlackUser(bot.url, BOB).click(ActionId.APPROVE, record_id, ts)
    wait_for("bob's refusal", lambda: ephemerals(slack, BOB))
    assert "may not approve" in ephemerals(slack, BOB)[-1]
    SlackUser(bot.url, CAROL).click(ActionId.APPROVE, record_id, ts)
    assert final(bot.store, record_id).state is RollbackState.SUCCEEDED
    assert len(slack.calls("usergroups.users.list")) == read, "memberships are cached"


def catalog(namespace: str, service_url: str, **extra: Any) -> RollbotConfig:
    return RollbotConfig.model_validate(
        {
            "services": {
                "family-assistant": {
                    "namespace": namespace,
                    "deployment": "web",
                    "health_checks": [{"name": "health", "url": f"{service_url}/health"}],
                    "smoke_tests": [
                        {
                            "name": "chat",
                            "url": f"{service_url}/chat",
                            "method": "POST",
                            "json_body": {"message": "test"},
                            "expect_field": "response",
                        }
                    ],
                    "verify_attempts": 2,
                    "verify_interval_seconds": 0.2,
                    **extra,
                }
            }
        }
    )


def test_a_catalog_service_is_assessed_and_verified_through_its_checks(make_bot, slack, workloads):
    from testbed.http_service import FakeService

    workloads.create("web", ["app:v1", "app:v2"])
    with FakeService(mode="failing") as service:
        bot = make_bot(catalog(workloads.namespace, service.url))
        SlackUser(bot.url, ALICE).command("family-assistant")  # no -n: the catalog knows
        record_id, ts = confirmation(slack)
        shown = json.dumps(slack.thread(CHANNEL, ts)[0].blocks, ensure_ascii=False)
        assert "Severity: *critical* — the service is down" in shown
        assert "✗ health: HTTP 500, expected 200" in shown
        service.mode = "healthy"  # as if the old version answers again
        SlackUser(bot.url, BOB).click(ActionId.APPROVE, record_id, ts)
        record = final(bot.store, record_id)
    assert record.state is RollbackState.SUCCEEDED, record.timeline
    assert record.timeline[-1].message == "healthy: 2/2 replicas available, 2 checks passing"
    assert any(m.text.startswith("Verified (attempt 1)") for m in slack.messages(CHANNEL))


def test_a_rollback_whose_checks_keep_failing_ends_rolled_back_but_unhealthy(
    make_bot, slack, workloads
):
    from testbed.http_service import FakeService

    workloads.create("web", ["app:v1", "app:v2"])
    with FakeService(mode="failing") as service:
        bot = make_bot(catalog(workloads.namespace, service.url))
        SlackUser(bot.url, ALICE).command("family-assistant")
        record_id, ts = confirmation(slack)
        SlackUser(bot.url, BOB).click(ActionId.APPROVE, record_id, ts)
        record = final(bot.store, record_id)
    assert record.state is RollbackState.FAILED
    assert record.error is not None
    assert record.error.startswith("rolled back but unhealthy after 2 attempts")
    assert workloads.images_of("web") == ["app:v1"], "the rollback itself was applied"


def test_an_unanswered_confirmation_expires_on_its_own_and_loses_its_buttons(
    make_bot, slack, workloads
):
    workloads.create("web", ["app:v1", "app:v2"])
    bot = make_bot(RollbotConfig(confirmation_ttl_seconds=1))
    SlackUser(bot.url, ALICE).command(f"web -n {workloads.namespace}")
    record_id, ts = confirmation(slack)
    record = final(bot.store, record_id, timeout=15)
    assert record.state is RollbackState.EXPIRED
    root = wait_for("the root to change", lambda: (m := slack.thread(CHANNEL, ts)[0]).updated and m)
    assert "Approve" not in json.dumps(root.blocks)


def test_follow_ups_survive_a_restart_and_raise_the_alarm_when_it_breaks_again(
    make_bot, slack, workloads
):
    from testbed.http_service import FakeService

    workloads.create("web", ["app:v1", "app:v2"])
    with FakeService() as service:
        config = catalog(
            workloads.namespace,
            service.url,
        ).model_copy(update={"follow_up_minutes": [0.03, 0.12, 0.4]})
        first = make_bot(config)
        SlackUser(first.url, ALICE).command("family-assistant")
        record_id, ts = confirmation(slack)
        SlackUser(first.url, BOB).click(ActionId.APPROVE, record_id, ts)
        assert final(first.store, record_id).state is RollbackState.SUCCEEDED
        first.stop()  # the process restarts: the follow-ups wait in Redis

        def follow_ups() -> list[str]:
            return [
                m.text
                for m in slack.thread(CHANNEL, ts)
                if re.match(r"(:[a-z_]+: )?Follow-up", m.text)
            ]

        second = make_bot(config)
        wait_for("the first follow-up", lambda: follow_ups())
        assert follow_ups()[0].startswith("Follow-up +0.03 min: healthy (2/2 available, 1 checks")
        service.mode = "failing"
        # The last is due 24 s after the success: time for the outcome and the report to
        # reach Slack, the restart and the first follow-up before the service breaks.
        wait_for("the last follow-up", lambda: len(follow_ups()) >= 3, timeout=60)
    alarm = follow_ups()[-1]
    assert alarm.startswith(":warning: Follow-up +0.4 min: unhealthy again")
    assert "<@U0ALICE>" in alarm, "the requester is alerted"
    assert "HTTP 500" in alarm
    notes = [e.message for e in second.store.get(record_id).timeline]
    assert sum(n.startswith((":warning: Follow-up", "Follow-up")) for n in notes) == 3


def auto_config(namespace: str, **policy: Any) -> RollbotConfig:
    return RollbotConfig.model_validate(
        {
            "namespaces": [namespace],
            "auto_rollback_channel": CHANNEL,
            "auto_rollback_interval_seconds": 0.5,
            **policy,
        }
    )


def test_a_failed_fresh_release_gets_an_automatic_rollback_once(make_bot, slack, workloads):
    workloads.create(
        "healthy", ["app:v1", "app:v2"], annotations={"rollbot.dev/auto-rollback": "true"}
    )
    workloads.create(
        "web",
        ["app:v1", "app:v2-broken"],
        progress_deadline=3,
        wait=False,
        annotations={"rollbot.dev/auto-rollback": "true"},
    )
    bot = make_bot(auto_config(workloads.namespace))
    record_id, ts = confirmation(slack)
    shown = json.dumps(slack.thread(CHANNEL, ts)[0].blocks, ensure_ascii=False)
    assert "Opened automatically by rollbot — automatic: revision 2 (app=app:v2-broken)" in shown
    assert "exceeded its progress deadline" in shown
    record = bot.store.get(record_id)
    assert (record.workload, record.trigger) == ("web", "automatic")
    SlackUser(bot.url, BOB).click(ActionId.APPROVE, record_id, ts)
    assert final(bot.store, record_id).state is RollbackState.SUCCEEDED
    assert workloads.images_of("web") == ["app:v1"]
    time.sleep(2)  # several more watch rounds: rollbot's own revision is not "failed"
    assert [r.id for r in bot.store.recent()] == [record_id], "one rollback, only for web"


def test_an_environment_may_let_automatic_rollbacks_run_at_once(make_bot, slack, workloads):
    workloads.create(
        "web",
        ["app:v1", "app:v2-broken"],
        progress_deadline=3,
        wait=False,
        annotations={"rollbot.dev/auto-rollback": "true"},
    )
    bot = make_bot(auto_config(workloads.namespace, auto_execute=True))
    record = final(bot.store, wait_for("the record", lambda: bot.store.recent())[0].id)
    assert record.state is RollbackState.SUCCEEDED, record.timeline
    assert record.approved_by == "rollbot"
    assert "automatic: run at once by policy" in [e.message for e in record.timeline]
    assert workloads.images_of("web") == ["app:v1"]


def test_an_image_tag_rollback_from_slack(make_bot, slack, workloads):
    workloads.create("web", ["reg.local/app:1.2.3", "reg.local/app:1.3.0", "reg.local/app:1.4.0"])
    bot = make_bot()
    never = SlackUser(bot.url, ALICE).command(f"web -n {workloads.namespace} --to-tag 0.9")
    assert "Assessing" in never.json()["text"]
    wait_for("the refusal", lambda: ephemerals(slack, ALICE))
    assert "'0.9' was never deployed" in ephemerals(slack, ALICE)[-1]
    SlackUser(bot.url, ALICE).command(f"web -n {workloads.namespace} --to-tag 1.2.3")
    record_id, ts = confirmation(slack)
    SlackUser(bot.url, BOB).click(ActionId.APPROVE, record_id, ts)
    assert final(bot.store, record_id).state is RollbackState.SUCCEEDED
    assert workloads.images_of("web") == ["reg.local/app:1.2.3"]


def test_an_assessment_whose_worker_died_before_asking_still_gets_its_question(
    make_bot, slack, workloads, redis_client
):
    from bot.store import Job, JobQueue

    workloads.create("web", ["app:v1", "app:v2"])
    store = RollbackStore(redis_client)
    record = store.create(
        RollbackRecord(
            namespace=workloads.namespace, workload="web", requested_by=ALICE, channel=CHANNEL
        )
    )
    store.update(
        record.id,
        lambda r: r.transition(
            RollbackState.ASSESSED, "revision 2 → 1", from_revision=2, target_revision=1
        ),
    )
    JobQueue(redis_client).enqueue(Job(kind="assess", record_id=record.id))  # redelivered
    make_bot()
    record_id, _ = confirmation(slack)
    assert record_id == record.id
    assert store.get(record.id).state is RollbackState.AWAITING_APPROVAL
