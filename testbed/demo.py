"""`make demo`: a broken release rolled back by rollbot from Slack, all local.

It starts a real kube-apiserver and kube-controller-manager (built from source
on the first run), deploys `family-assistant` through three revisions, the last
of which crash-loops and misses its progress deadline, then starts rollbot on
its embedded defaults (embedded Redis, one process) against a local Slack Web
API, types `/rollback family-assistant` as @alice, clicks Approve as @bob, and
prints the thread as a person would read it. The filled-in incident report and
the backup land in ./demo-output/, with thread.html: the thread as Slack shows it.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kubernetes import config as kconfig
from rich.console import Console
from rich.panel import Panel
from rich.rule import Rule

from bot.config import RollbotConfig
from bot.kube import Kube
from bot.outbox import Outbox
from bot.store import RollbackStore, connect
from handlers.ids import ActionId
from handlers.server import RollbotServer
from testbed.controlplane import ControlPlane
from testbed.sample_app import SampleApp
from testbed.slack_api import FakeSlackApi, Message
from testbed.slack_user import SlackUser
from testbed.thread_html import write_thread_html

NAMESPACE, APP, CHANNEL, CHANNEL_NAME = "homelab", "family-assistant", "C0INCIDENTS", "incidents"
ALICE, BOB = "U0ALICE", "U0BOB"
SECRET = "demo-signing-secret"
OUTPUT = Path("demo-output")
REVISIONS = [
    ("ghcr.io/example/family-assistant:1.4.0", "deploy 1.4.0: calendar sync"),
    ("ghcr.io/example/family-assistant:1.5.0", "deploy 1.5.0: faster chat"),
    ("ghcr.io/example/family-assistant:1.6.0-broken", "deploy 1.6.0: new memory store"),
]


def readable(message: Message) -> str:
    """A message as Slack shows it: the blocks' texts, or the text."""
    parts: list[str] = []
    for block in message.blocks:
        if block.get("type") in ("header", "section"):
            parts.append(str(block["text"]["text"]))
        elif block.get("type") == "actions":
            parts.append("  ".join(f"[ {e['text']['text']} ]" for e in block["elements"]))
        elif block.get("type") == "context":
            parts.append(" ".join(str(e.get("text", "")) for e in block["elements"]))
    return "\n".join(parts) or message.text


def wait_for(test: Any, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = test()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError("the demo waited too long")


def main() -> int:
    console = Console(highlight=False)
    console.print(Rule("rollbot demo"))
    console.print(
        "Starting a local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager)."
    )
    console.print(
        "[dim]The first run builds them from the upstream Go modules: 10-25 minutes "
        "on 2 cores. Later runs start in seconds.[/]"
    )
    started = time.monotonic()
    with ControlPlane() as plane, FakeSlackApi() as slack:
        slack.add_channel(CHANNEL, CHANNEL_NAME)
        slack.add_user(ALICE, name="alice", real_name="Alice")
        slack.add_user(BOB, name="bob", real_name="Bob")
        console.print(f"control plane up in {time.monotonic() - started:.1f}s at {plane.server}")
        app = SampleApp(kconfig.new_client_from_config(str(plane.kubeconfig)), NAMESPACE, APP)
        app.ensure_namespace()
        console.print(Rule(f"Deploying {APP} through three revisions"))
        for number, (image, cause) in enumerate(REVISIONS, start=1):
            broken = number == len(REVISIONS)
            app.deploy(image, cause, progress_deadline=10)
            console.print(
                f"revision {number}: {image}"
                + (
                    "  [red](crash-loops: waiting for it to miss its 10s progress deadline)[/]"
                    if broken
                    else ""
                )
            )
            app.wait("deadline" if broken else "complete")

        console.print(Rule("rollbot, on its embedded defaults (embedded Redis, one process)"))
        data_dir = Path(tempfile.mkdtemp(prefix="rollbot-demo-"))
        bot = RollbotServer(
            RollbotConfig(default_namespace=NAMESPACE),
            RollbackStore(connect(data_dir=data_dir)),
            Kube.from_kubeconfig(str(plane.kubeconfig)),
            token="xoxb-demo",
            signing_secret=SECRET,
            slack_api_url=slack.base_url,
        )
        bot.start_http(port=0)
        bot.start_workers()
        try:
            alice = SlackUser(bot.url, ALICE, CHANNEL, SECRET)
            bob = SlackUser(bot.url, BOB, CHANNEL, SECRET)
            text = f'{APP} --reason "1.6.0 crash-loops on start"'
            console.print(f"\n[bold]@alice[/] types: /rollback {text}")
            answer = alice.command(text).json()["text"]
            console.print(Panel(answer, title="only visible to you", expand=False))

            def root() -> Message | None:
                return next(
                    (
                        m
                        for m in slack.messages(CHANNEL)
                        if m.thread_ts is None and m.ephemeral_user is None
                    ),
                    None,
                )

            confirmation = wait_for(root)
            console.print(
                Panel(readable(confirmation), title="#incidents — rollbot", expand=False),
                markup=False,
            )
            record_id = next(
                e["value"]
                for b in confirmation.blocks
                if b.get("type") == "actions"
                for e in b["elements"]
                if e["action_id"] == ActionId.APPROVE
            )
            console.print(f"[bold]@bob[/] clicks [green]Approve[/] on {record_id}\n")
            bob.click(ActionId.APPROVE, record_id, confirmation.ts)

            def finished() -> bool:
                # The reports are the last thing a rollback posts, after its record ends:
                # once they are in the thread and the outbox is empty, the thread is whole.
                reported = any(f.thread_ts == confirmation.ts for f in slack.files())
                ended = bot.store.get(record_id).state.terminal
                return reported and ended and Outbox(bot.store.redis).depth() == 0

            shown: set[str] = set()
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                done = finished()
                for reply in slack.thread(CHANNEL, confirmation.ts)[1:]:
                    key = f"{reply.ts}:{reply.updated}:{reply.text}"
                    if key not in shown:
                        shown.add(key)
                        console.print(f"  ↳ rollbot: {reply.text.splitlines()[0]}", markup=False)
                if done:
                    break
                time.sleep(0.2)
            record = bot.store.get(record_id)
            console.print(
                Panel(
                    readable(slack.thread(CHANNEL, confirmation.ts)[0]),
                    title="the root message, updated",
                    expand=False,
                ),
                markup=False,
            )

            page = write_thread_html(
                slack, CHANNEL, confirmation.ts, OUTPUT, channel_name=CHANNEL_NAME
            )
            (OUTPUT / f"{record_id}-timeline.json").write_text(
                json.dumps([e.model_dump(mode="json") for e in record.timeline], indent=2)
            )
            console.print(Rule("The incident report (first lines)"))
            report = OUTPUT / f"{record_id}-incident-report.md"
            if report.exists():
                console.print("\n".join(report.read_text().splitlines()[:25]), markup=False)
            console.print(f"\nreports, backup and timeline written to {OUTPUT.resolve()}/")
            console.print(f"the thread as Slack shows it: {page.resolve().as_uri()}")
        finally:
            bot.stop()

        console.print(Rule("The same history from a terminal"))
        command = [sys.executable, "-m", "bot", "history", APP, "-n", NAMESPACE]
        console.print(f"[bold]$ rollbot {shlex.join(command[3:])}[/]")
        subprocess.call(command, env={"KUBECONFIG": str(plane.kubeconfig), "PATH": ""})
        ok = record.state.value == "succeeded"
        console.print(
            f"\n[green]Done:[/] {APP} is back on 1.5.0 and healthy."
            if ok
            else f"\n[red]The rollback ended {record.state.value}[/]"
        )
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
