"""thread.html from what the local Slack kept, posted through a real slack_sdk client:
the thread's messages in their last state, Block Kit laid out, files linked, and no
text turned into HTML."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from slack_sdk import WebClient

from testbed.slack_api import FakeSlackApi
from testbed.thread_html import PAGE, write_thread_html
from tests.html_dom import Page, read_page

CHANNEL = "C0INCIDENT"
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>"


@pytest.fixture
def slack() -> Iterator[FakeSlackApi]:
    with FakeSlackApi() as server:
        server.add_user("U0BOB", name="bob", real_name="Bob")
        yield server


@pytest.fixture
def client(slack: FakeSlackApi) -> WebClient:
    return WebClient(token="xoxb-test", base_url=slack.base_url)


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def button(text: str, style: str | None = None) -> dict[str, Any]:
    element = {"type": "button", "text": plain(text), "action_id": text.lower(), "value": "rb-1"}
    return element | ({"style": style} if style else {})


CONFIRMATION = [
    {"type": "header", "text": plain("Roll back web?")},
    {"type": "section", "text": mrkdwn("*Rollback* `rb-1` of *web*")},
    {"type": "actions", "elements": [button("Approve", "primary"), button("Cancel", "danger")]},
]
OUTCOME = [
    {"type": "header", "text": plain("Roll back web: succeeded")},
    {"type": "section", "text": mrkdwn(":white_check_mark: *succeeded* — approved by <@U0BOB>")},
]


def page_of(slack: FakeSlackApi, ts: str, folder: Path) -> Page:
    path = write_thread_html(slack, CHANNEL, ts, folder, channel_name="incidents")
    assert path == folder / PAGE
    return read_page(path.read_text())


def test_versions_keep_what_each_chat_update_replaced(
    slack: FakeSlackApi, client: WebClient
) -> None:
    ts = client.chat_postMessage(channel=CHANNEL, text="asked", blocks=CONFIRMATION)["ts"]
    client.chat_update(channel=CHANNEL, ts=ts, text="done", blocks=OUTCOME)
    client.chat_update(channel=CHANNEL, ts=ts, text="done again")
    versions = slack.versions(CHANNEL, ts)
    assert [(v.text, v.updated) for v in versions] == [
        ("asked", 0),
        ("done", 1),
        ("done again", 2),
    ]
    assert versions[0].blocks == CONFIRMATION and versions[2].blocks == OUTCOME


def test_the_root_shows_its_outcome_and_the_confirmation_it_replaced(
    slack: FakeSlackApi, client: WebClient, tmp_path: Path
) -> None:
    ts = client.chat_postMessage(channel=CHANNEL, text="asked", blocks=CONFIRMATION)["ts"]
    client.chat_update(channel=CHANNEL, ts=ts, text="done", blocks=OUTCOME)
    page = page_of(slack, ts, tmp_path)

    root = page.find("article", "root")[0]
    assert "Roll back web: succeeded ✅ succeeded — approved by @bob" in root.text
    assert "(edited)" in root.text
    earlier = page.find("details", "earlier")
    assert len(earlier) == 1 and "open" in earlier[0].attrs
    assert "Roll back web? Rollback rb-1 of web" in earlier[0].text
    buttons = [(b.text, b.classes, "disabled" in b.attrs) for b in page.find("button")]
    assert buttons == [
        ("Approve", {"button", "primary"}, True),
        ("Cancel", {"button", "danger"}, True),
    ]
    assert [c.text for c in page.find("code")] == ["rb-1"]
    assert [m.text for m in page.find("span", "mention")] == ["@bob"]


def test_replies_follow_the_root_in_order_without_ephemeral_or_deleted_ones(
    slack: FakeSlackApi, client: WebClient, tmp_path: Path
) -> None:
    ts = client.chat_postMessage(channel=CHANNEL, text="root")["ts"]
    client.chat_postMessage(channel=CHANNEL, thread_ts=ts, text="Backup saved")
    client.chat_postEphemeral(channel=CHANNEL, user="U0BOB", thread_ts=ts, text="only bob")
    gone = client.chat_postMessage(channel=CHANNEL, thread_ts=ts, text="deleted")["ts"]
    client.chat_delete(channel=CHANNEL, ts=gone)
    client.chat_postMessage(channel=CHANNEL, thread_ts=ts, text="*Rollback applied*")
    client.chat_postMessage(channel=CHANNEL, text="another thread")
    page = page_of(slack, ts, tmp_path)

    assert [r.text for r in page.find("article", "reply")] == [
        "R rollbot APP Backup saved",
        "R rollbot APP Rollback applied",
    ]
    assert page.find("div", "reply-count")[0].text == "2 replies"
    assert "another thread" not in page.text and "only bob" not in page.text


def test_an_edited_reply_shows_its_last_state_and_keeps_its_first_folded(
    slack: FakeSlackApi, client: WebClient, tmp_path: Path
) -> None:
    ts = client.chat_postMessage(channel=CHANNEL, text="root")["ts"]
    reply = client.chat_postMessage(channel=CHANNEL, thread_ts=ts, text="Waiting: 0/3")["ts"]
    for text in ("Waiting: 1/3", "Waiting: 2/3", "Rolled out: 3/3"):
        client.chat_update(channel=CHANNEL, ts=reply, text=text)
    page = page_of(slack, ts, tmp_path)

    (shown,) = page.find("article", "reply")
    assert shown.text.startswith("R rollbot APP (edited) Rolled out: 3/3")
    (first,) = page.find("details", "earlier")
    assert "open" not in first.attrs, "only the root's first state is unfolded"
    assert first.text == "As first posted, before chat.update replaced it Waiting: 0/3"
    assert "1/3" not in page.text and "2/3" not in page.text


def test_block_kit_is_laid_out_as_slack_does(
    slack: FakeSlackApi, client: WebClient, tmp_path: Path
) -> None:
    blocks = [
        {"type": "header", "text": plain("Assessment :warning:")},
        {
            "type": "section",
            "fields": [mrkdwn("*Pods*\n3/4 ready"), mrkdwn("*Severity*\nhigh")],
            "accessory": button("Details"),
        },
        {"type": "divider"},
        {"type": "context", "elements": [mrkdwn("Expires <!date^1796169523^{time}|soon>.")]},
        {
            "type": "actions",
            "elements": [
                {"type": "static_select", "action_id": "pick", "placeholder": plain("Revision")},
                {**button("Runbook"), "url": "https://runbooks.example/web"},
            ],
        },
    ]
    ts = client.chat_postMessage(channel=CHANNEL, text="fallback", blocks=blocks)["ts"]
    page = page_of(slack, ts, tmp_path)

    assert page.find("div", "header")[0].text == "Assessment ⚠️"
    assert [f.text for f in page.find("div", "field")] == ["Pods 3/4 ready", "Severity high"]
    assert page.find("div", "accessory")[0].text == "Details"
    assert len(page.find("hr", "divider")) == 1
    assert page.find("div", "context")[0].text == "Expires 11:58 PM."
    assert page.find("span", "control")[0].text == "Revision ▾"
    assert page.find("button")[-1].attrs["data-url"] == "https://runbooks.example/web"
    assert "fallback" not in page.text, "a message with blocks shows its blocks"


def test_shared_files_are_copied_next_to_the_page_and_linked(
    slack: FakeSlackApi, client: WebClient, tmp_path: Path
) -> None:
    ts = client.chat_postMessage(channel=CHANNEL, text="root")["ts"]
    client.files_upload_v2(
        channel=CHANNEL,
        thread_ts=ts,
        file_uploads=[
            {"content": "# Report\n" * 200, "filename": "rb-1-report.md", "title": "Report"},
            {"content": "{}", "filename": "../../outside.json", "title": "Backup"},
            {"content": "x", "filename": "thread.html", "title": "Clash"},
        ],
    )
    client.files_upload_v2(channel=CHANNEL, content="elsewhere", filename="other.txt")
    folder = tmp_path / "out"
    page = page_of(slack, ts, folder)

    links = page.find("a", "file")
    assert [a.text for a in links] == [
        "FILE Report rb-1-report.md · 1.8 KB",
        "FILE Backup ../../outside.json · 2 B",
        "FILE Clash thread.html · 1 B",
    ]
    written = {unquote(a.attrs["href"]): (folder / unquote(a.attrs["href"])) for a in links}
    assert [f.read_text() for f in written.values()] == ["# Report\n" * 200, "{}", "x"]
    assert all(f.resolve().parent == folder.resolve() for f in written.values())
    assert sorted(p.name for p in folder.iterdir()) == sorted([PAGE, *written])
    assert "other.txt" not in page.text
    assert page.find("div", "reply-count")[0].text == "1 reply"


def test_hostile_text_anywhere_shows_as_text(
    slack: FakeSlackApi, client: WebClient, tmp_path: Path
) -> None:
    escaped = HOSTILE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    blocks = [
        {"type": "header", "text": plain(f"Roll back {HOSTILE}")},
        {"type": "section", "text": mrkdwn(f"Requested by <@U0BOB>: {escaped}")},
        {"type": "section", "text": mrkdwn(f"raw: {HOSTILE}"), "fields": [plain(HOSTILE)]},
        {"type": "context", "elements": [mrkdwn(f"`{escaped}`")]},
        {
            "type": "actions",
            "elements": [
                {**button(HOSTILE[:70]), "style": 'primary" onclick="alert(3)'},
                {**button("Open"), "url": "javascript:alert(4)"},
            ],
        },
    ]
    ts = client.chat_postMessage(channel=CHANNEL, text=HOSTILE, blocks=blocks)["ts"]
    client.chat_postMessage(channel=CHANNEL, thread_ts=ts, text=f"```{HOSTILE}```")
    client.files_upload_v2(
        channel=CHANNEL,
        thread_ts=ts,
        initial_comment=HOSTILE,
        file_uploads=[{"content": HOSTILE, "filename": f"{HOSTILE}.md", "title": HOSTILE}],
    )
    page = read_page(
        write_thread_html(slack, CHANNEL, ts, tmp_path, channel_name=HOSTILE).read_text()
    )

    assert page.find("script") == [] and page.find("img") == []
    assert page.handlers() == []
    assert all(b.classes == {"button"} and "data-url" not in b.attrs for b in page.find("button"))
    # the title bar, header, two sections, a field, code, a button, a code block, the
    # files' comment, title and name
    assert page.text.count(HOSTILE) == 11
    assert f"Requested by @bob: {HOSTILE}" in page.text
    assert page.find("title")[0].text == f"Thread in #{HOSTILE} — rollbot demo"
    (link,) = page.find("a", "file")
    assert (tmp_path / unquote(link.attrs["href"])).read_text() == HOSTILE
