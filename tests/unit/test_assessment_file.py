"""A confirmation too long for Slack's sections keeps within them and puts the
whole plan and assessment in its thread as a file; a short one posts no file."""

from __future__ import annotations

import json

from bot.records import RollbackRecord, requested
from handlers.app import slack_client
from handlers.blocks import REST_IN_FILE, as_dicts, confirmation_blocks
from handlers.thread import SlackThreadSink
from testbed.slack_api import FakeSlackApi


def long_record() -> RollbackRecord:
    return requested("prod", "web", "U1", channel="C0PROD").model_copy(
        update={
            "changes": tuple(f"container c{i}: image: a:{i} → b:{i}" for i in range(200)),
            "assessment": (
                *(f"finding {n}: " + "x" * 400 for n in range(20)),
                "last finding: DATABASE_URL=postgres://app:hunter2@db/prod",
            ),
        }
    )


def test_a_long_assessment_is_cut_where_it_says_so_and_is_whole_in_a_file():
    with FakeSlackApi() as slack:
        sink = SlackThreadSink(slack_client("xoxb-test", slack.base_url))
        record = long_record()
        thread = sink.confirmation(record)
        shown = json.dumps(as_dicts(confirmation_blocks(record)), ensure_ascii=False)
        assert json.dumps(REST_IN_FILE, ensure_ascii=False)[1:-1] in shown
        assert "…and 185 more, in the assessment file in the thread" in shown
        [uploaded] = slack.files()
        assert (uploaded.filename, uploaded.thread_ts) == (f"{record.id}-assessment.txt", thread)
        content = uploaded.content.decode()
        assert "container c199: image: a:199 → b:199" in content
        assert "last finding: DATABASE_URL=" in content and "hunter2" not in content


def test_a_confirmation_that_fits_posts_no_file():
    with FakeSlackApi() as slack:
        sink = SlackThreadSink(slack_client("xoxb-test", slack.base_url))
        record = requested("prod", "web", "U1", channel="C0PROD").model_copy(
            update={"changes": ("container app: image: a:2 → a:1",), "assessment": ("ok",)}
        )
        assert sink.confirmation(record)
        assert slack.files() == []
        assert REST_IN_FILE not in json.dumps(as_dicts(confirmation_blocks(record)))
