"""The demo's thread.html, looked at through a real browser.

A rollback runs for real (signed Slack requests to the running bot, the control plane,
redis-server, the local Slack), its thread is written the way `make demo` writes it,
and Debian's Chromium, headless, opens the page: its DOM and its screenshot must show
the confirmation with its buttons and the outcome, and a hostile `--reason` only as
the text it is.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import unquote

import pytest
from PIL import Image

from bot.records import RollbackState
from handlers.ids import ActionId
from testbed.slack_api import FakeSlackApi
from testbed.thread_html import BUTTON_COLOURS, write_thread_html
from tests.html_dom import read_page
from tests.integration.slack_helpers import (
    ALICE,
    BOB,
    CHANNEL,
    SlackUser,
    confirmation,
    delivered,
    final,
    wait_for,
)

pytestmark = pytest.mark.cluster

CHROMIUM = Path(os.environ.get("ROLLBOT_CHROMIUM", "/usr/bin/chromium"))
#: As root, on a machine with no way out: no sandbox, no GPU, nothing fetched in the
#: background (each refused connection would be retried), a fresh profile every time.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
WINDOW = (1000, 3000)
HOSTILE = "<script>alert(1)</script> <img src=x onerror=alert(2)>"


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium; asked for first, so a missing one fails before a cluster starts."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"no Chromium at {CHROMIUM}: `make setup` installs Debian's chromium package "
            "(apt-get install -y chromium); ROLLBOT_CHROMIUM names another binary",
            pytrace=False,
        )
    return CHROMIUM


def open_in_chromium(chromium: Path, page: Path, screenshot: Path) -> str:
    """The DOM Chromium built from the page; and its screenshot, taken at the same time."""
    with (
        tempfile.TemporaryDirectory() as dom_profile,
        tempfile.TemporaryDirectory() as shot_profile,
    ):
        common = [str(chromium), *CHROMIUM_FLAGS]
        shot = subprocess.Popen(
            [
                *common,
                f"--user-data-dir={shot_profile}",
                f"--window-size={WINDOW[0]},{WINDOW[1]}",
                f"--screenshot={screenshot}",
                page.as_uri(),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            dom = subprocess.run(
                [*common, f"--user-data-dir={dom_profile}", "--dump-dom", page.as_uri()],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            _, shot_errors = shot.communicate(timeout=60)
        finally:
            shot.kill()
            shot.wait()
    assert dom.returncode == 0 and dom.stdout, dom.stderr[-2000:]
    assert shot.returncode == 0 and screenshot.exists(), shot_errors[-2000:]
    return dom.stdout


def pixels_near(image: Image.Image, colour: str, tolerance: int = 8) -> int:
    target = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return sum(
        count
        for count, rgb in image.getcolors(maxcolors=1 << 24) or []
        if all(abs(a - b) <= tolerance for a, b in zip(rgb, target, strict=True))
    )


def run_a_rollback(make_bot, slack: FakeSlackApi, workloads) -> str:  # type: ignore[no-untyped-def]
    """/rollback with a hostile reason, approved, until its reports are in the thread;
    the thread's root ts."""
    slack.add_user(ALICE, name="alice", real_name="Alice")
    slack.add_user(BOB, name="bob", real_name="Bob")
    workloads.create("web", ["app:v1", "app:v2-broken"], progress_deadline=5, wait=False)
    workloads.wait_deadline_exceeded("web")
    bot = make_bot()
    SlackUser(bot.url, ALICE).command(f'web -n {workloads.namespace} --reason "{HOSTILE}"')
    record_id, root_ts = confirmation(slack)
    SlackUser(bot.url, BOB).click(ActionId.APPROVE, record_id, root_ts)
    record = final(bot.store, record_id)
    assert record.state is RollbackState.SUCCEEDED, record.timeline
    wait_for("the reports", lambda: any(f.thread_ts == root_ts for f in slack.files()))
    delivered(bot.store)
    return root_ts


def test_the_thread_page_shows_the_confirmation_and_the_outcome_in_chromium(
    chromium, make_bot, slack, workloads, tmp_path
):
    root_ts = run_a_rollback(make_bot, slack, workloads)
    folder = tmp_path / "demo-output"
    page_file = write_thread_html(slack, CHANNEL, root_ts, folder, channel_name="incidents")
    screenshot = tmp_path / "thread.png"

    page = read_page(open_in_chromium(chromium, page_file, screenshot))

    # Nothing anyone typed became HTML: the reason is there, as text.
    assert page.find("script") == [] and page.find("img") == []
    assert page.handlers() == []
    assert f"Requested by @alice: {HOSTILE}" in page.text

    asked = page.find("details", "earlier")[0]  # the root as first posted
    assert "Roll back web?" in asked.text and "Assessment" in asked.text
    assert "container app: image: app:v2-broken → app:v1" in asked.text
    buttons = [(b.text, b.classes, "disabled" in b.attrs) for b in page.find("button")]
    assert buttons == [
        ("Approve", {"button", "primary"}, True),
        ("Cancel", {"button", "danger"}, True),
    ]

    (root,) = page.find("article", "root")
    outcome = root.text.removesuffix(asked.text)  # the root as it is now
    assert outcome != root.text
    assert "Roll back web: succeeded" in outcome
    assert "✅ succeeded — approved by @bob" in outcome
    replies = " ".join(r.text for r in page.find("article", "reply"))
    assert "Rollback applied: revision 2 → 1" in replies and "RESOLVED" in replies
    files = page.find("a", "file")
    assert len(files) == 4 and any("incident-report.md" in f.text for f in files)
    for link in files:
        assert (folder / unquote(link.attrs["href"])).stat().st_size > 0

    image = Image.open(screenshot).convert("RGB")
    assert image.size == WINDOW
    colours = image.getcolors(maxcolors=1 << 24) or []
    assert len(colours) > 200, "the screenshot is (nearly) blank"
    assert max(count for count, _ in colours) < 0.97 * WINDOW[0] * WINDOW[1]
    # The two buttons, drawn: each at least a few hundred pixels of its own colour.
    assert pixels_near(image, BUTTON_COLOURS["primary"]) > 600
    assert pixels_near(image, BUTTON_COLOURS["danger"]) > 600
