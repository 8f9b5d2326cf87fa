"""The thread sink against the local Slack Web API: coalesced progress edits."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from bot.progress import Tone
from bot.records import requested
from bot.rollout import RolloutPhase, RolloutState
from handlers.app import slack_client
from handlers.blocks import confirmation_blocks
from handlers.thread import SlackThreadSink
from testbed.slack_api import FakeSlackApi


def wait_for(test: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not test():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def state(phase: RolloutPhase, available: int) -> RolloutState:
    return RolloutState(phase, f"{phase} {available}", 10, 10, 10, available, available, 1, 1)


def test_fast_progress_is_coalesced_into_few_edits_but_the_final_state_always_shows():
    with FakeSlackApi() as slack:
        sink = SlackThreadSink(slack_client("xoxb-test", slack.base_url), min_interval=60)
        record = requested("prod", "web", "U1", channel="C0PROD")
        record = record.model_copy(update={"thread_ts": sink.confirmation(record)})
        for available in range(10):
            sink.rollout(record, state(RolloutPhase.WAITING_AVAILABLE, available))
        sink.rollout(record, state(RolloutPhase.COMPLETE, 10))
        assert len(slack.calls("chat.update")) == 1, "only the final state was edited in"
        [status] = slack.thread("C0PROD", record.thread_ts or "")[1:]
        assert status.text.endswith("complete 10 (10/10 available)")


def test_a_confirmation_with_many_changes_stays_within_slacks_limits():
    with FakeSlackApi() as slack:
        sink = SlackThreadSink(slack_client("xoxb-test", slack.base_url))
        record = requested("prod", "web", "U1", channel="C0PROD").model_copy(
            update={
                "changes": tuple(f"container c{i}: image: a:{i} → b:{i}" * 20 for i in range(200)),
                "assessment": tuple("x" * 500 for _ in range(50)),
            }
        )
        assert len(confirmation_blocks(record)) < 50
        assert sink.confirmation(record)  # the server would reject over-long sections


def test_one_components_rate_limit_does_not_stall_anothers_progress():
    with FakeSlackApi() as slack:
        sink = SlackThreadSink(slack_client("xoxb-test", slack.base_url), min_interval=0)
        record = requested("prod", "shop", "U1", channel="C0PROD")
        record = record.model_copy(update={"thread_ts": sink.confirmation(record)})
        sink.rollout(record, state(RolloutPhase.WAITING_AVAILABLE, 1), "backend")
        sink.rollout(record, state(RolloutPhase.WAITING_AVAILABLE, 1), "frontend")
        slack.fail_next("chat.update", status=429, retry_after=3)
        stalled = threading.Thread(
            target=sink.rollout,
            args=(record, state(RolloutPhase.COMPLETE, 10), "backend"),
        )
        stalled.start()
        deadline = time.monotonic() + 5
        while not any(c.status == 429 for c in slack.calls("chat.update")):
            assert time.monotonic() < deadline, "the backend's edit was never tried"
            time.sleep(0.01)
        started = time.monotonic()
        sink.rollout(record, state(RolloutPhase.COMPLETE, 10), "frontend")
        assert time.monotonic() - started < 1.5, "the frontend waited for the backend's 429"
        stalled.join()
        # The backend's final state is shown once its Retry-After has passed.
        assert wait_for(
            lambda: (
                [m.text for m in slack.thread("C0PROD", record.thread_ts or "")[1:]]
                == [
                    ":arrows_counterclockwise: complete 10 (10/10 available)",
                    ":arrows_counterclockwise: complete 10 (10/10 available)",
                ]
            ),
            timeout=6,
        )


def test_a_rate_limited_progress_edit_returns_at_once_and_shows_the_latest_state_later():
    with FakeSlackApi() as slack:
        sink = SlackThreadSink(slack_client("xoxb-test", slack.base_url), min_interval=0)
        record = requested("prod", "web", "U1", channel="C0PROD")
        record = record.model_copy(update={"thread_ts": sink.confirmation(record)})
        sink.rollout(record, state(RolloutPhase.WAITING_AVAILABLE, 1))
        slack.fail_next("chat.update", status=429, retry_after=2)

        started = time.monotonic()
        sink.rollout(record, state(RolloutPhase.WAITING_AVAILABLE, 5))
        sink.rollout(record, state(RolloutPhase.COMPLETE, 10))
        assert time.monotonic() - started < 0.5, "the worker's thread sat out the Retry-After"

        assert wait_for(
            lambda: slack.thread("C0PROD", record.thread_ts or "")[1].text.endswith(
                "complete 10 (10/10 available)"
            ),
            timeout=5,
        )
        updates = slack.calls("chat.update")
        assert [c.status for c in updates] == [429, 200], "one edit after the wait"
        assert updates[1].at - updates[0].at >= 2


def test_progress_from_many_threads_posts_one_line_and_ends_on_the_final_state():
    with FakeSlackApi() as slack:
        sink = SlackThreadSink(slack_client("xoxb-test", slack.base_url), min_interval=60)
        record = requested("prod", "web", "U1", channel="C0PROD")
        record = record.model_copy(update={"thread_ts": sink.confirmation(record)})
        workers = [
            threading.Thread(
                target=sink.rollout, args=(record, state(RolloutPhase.WAITING_AVAILABLE, i))
            )
            for i in range(8)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        sink.rollout(record, state(RolloutPhase.COMPLETE, 10))
        [status] = slack.thread("C0PROD", record.thread_ts or "")[1:]
        assert status.text.endswith("complete 10 (10/10 available)")
        assert len(slack.calls("chat.update")) <= 1


def test_quoted_progress_text_is_escaped_and_the_alert_is_a_mention():
    with FakeSlackApi() as slack:
        sink = SlackThreadSink(slack_client("xoxb-test", slack.base_url))
        record = requested("prod", "web", "U0ALICE", channel="C0PROD")
        record = record.model_copy(update={"thread_ts": sink.confirmation(record)})
        sink.milestone(record, "pod says <!channel> & @here", Tone.WARNING, alert="U0ALICE")
        sink.tell("C0PROD", "U0BOB", "history of <#C0X>")
        sink.refused(record, "no: <https://evil.example|ok>")
        thread = [m.text for m in slack.thread("C0PROD", record.thread_ts or "")[1:]]
        assert thread[0] == ":warning: pod says &lt;!channel&gt; &amp; @\u2060here <@U0ALICE>"
        assert thread[1] == ":warning: no: &lt;https://evil.example|ok&gt;"
        ephemeral = [m.text for m in slack.messages("C0PROD") if m.ephemeral_user == "U0BOB"]
        assert ephemeral == ["history of &lt;#C0X&gt;"]
