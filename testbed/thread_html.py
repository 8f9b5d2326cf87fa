"""A thread of the local Slack as a web page: `make demo` writes `demo-output/thread.html`.

It is built from what `testbed.slack_api.FakeSlackApi` kept: the root message in its last
state (with what chat.update replaced, so the confirmation and its buttons stay visible
beside the outcome), the replies under it, the files shared in the thread with links to
copies written next to the page, and mentions named from users.info's data. Block Kit
is laid out the way Slack lays it out; buttons are drawn, faded, since nothing here can
take a click.

Every text comes from the bot, and through it from pods and people: it is rendered by
`testbed.mrkdwn_html` (which escapes) or by Jinja2 with autoescape, never pasted in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from testbed.mrkdwn_html import Names, mrkdwn_to_html, plain_to_html
from testbed.slack_api import FakeSlackApi, Message, SlackError, UploadedFile

PAGE = "thread.html"
#: Slack's button colours (#007a5a, #e01e5a) faded to 70 % on white: a disabled look.
BUTTON_COLOURS = {"primary": "#4da28c", "danger": "#e9618c"}
_TEMPLATES = Path(__file__).parent / "templates"
_BUTTON_STYLES = frozenset(BUTTON_COLOURS)
_LINK_SCHEMES = ("http://", "https://")


@dataclass(frozen=True)
class ShownElement:
    """An element of an actions or context block, or a section's accessory."""

    kind: str  # "button", "text", "image" or "control" (a select, date picker…)
    html: Markup
    style: str = ""  # "primary", "danger" or "" (the default grey)
    url: str | None = None  # a link button's target, http(s) only


@dataclass(frozen=True)
class ShownBlock:
    kind: str  # header, section, context, actions, divider, image, text, unsupported
    html: Markup = Markup("")
    fields: tuple[Markup, ...] = ()
    elements: tuple[ShownElement, ...] = ()
    accessory: ShownElement | None = None


@dataclass(frozen=True)
class ShownMessage:
    ts: str
    blocks: tuple[ShownBlock, ...]
    edited: bool
    broadcast: bool
    reactions: tuple[Markup, ...]
    #: the message as first posted, when chat.update has replaced it since
    first_posted: tuple[ShownBlock, ...] = ()


@dataclass(frozen=True)
class ShownFile:
    name: str
    title: str
    size: str
    href: str


@dataclass(frozen=True)
class FileShare:
    """Files shared by one upload: Slack shows them as one message, with its comment."""

    comment: Markup
    files: tuple[ShownFile, ...]


@dataclass(frozen=True)
class ThreadPage:
    channel: str
    root: ShownMessage
    replies: tuple[ShownMessage, ...]
    shares: tuple[FileShare, ...]


def names_from(slack: FakeSlackApi) -> Names:
    """A user id to the name Slack shows: users.info's display name, else its name."""

    def name(user_id: str) -> str:
        try:
            user = slack.user_info(user_id)
        except SlackError:
            return user_id
        profile = user.get("profile") or {}
        return str(profile.get("display_name") or user.get("name") or user_id)

    return name


def text_html(obj: object, names: Names) -> Markup:
    """A text object (`{"type": "mrkdwn"|"plain_text", "text": …}`) as HTML."""
    if not isinstance(obj, Mapping):
        return Markup("")
    text = str(obj.get("text", ""))
    if obj.get("type") == "mrkdwn":
        return mrkdwn_to_html(text, names)
    return plain_to_html(text, emoji=obj.get("emoji", True) is not False)


def shown_element(element: object, names: Names) -> ShownElement:
    if not isinstance(element, Mapping):
        return ShownElement("text", Markup(""))
    kind = element.get("type")
    if kind in ("mrkdwn", "plain_text"):
        return ShownElement("text", text_html(element, names))
    if kind == "button":
        style = str(element.get("style", ""))
        url = str(element.get("url", ""))
        return ShownElement(
            "button",
            text_html(element.get("text"), names),
            style if style in _BUTTON_STYLES else "",
            url if url.startswith(_LINK_SCHEMES) else None,
        )
    if kind == "image":  # not fetched: the page works offline, and shows what it shows
        return ShownElement("image", escape(f"[image: {element.get('alt_text', '')}]"))
    placeholder = element.get("placeholder") or {"type": "plain_text", "text": str(kind)}
    return ShownElement("control", text_html(placeholder, names))


def shown_blocks(blocks: list[Any], text: str, names: Names) -> tuple[ShownBlock, ...]:
    """A message's blocks as Slack lays them out; its text when it has none."""
    if not blocks:
        return (ShownBlock("text", mrkdwn_to_html(text, names)),)
    return tuple(_shown_block(block, names) for block in blocks)


def _shown_block(block: Any, names: Names) -> ShownBlock:
    kind = block.get("type") if isinstance(block, Mapping) else None
    if kind == "header":
        return ShownBlock("header", text_html(block.get("text"), names))
    if kind == "section":
        fields = block.get("fields") or []
        accessory = block.get("accessory")
        return ShownBlock(
            "section",
            text_html(block.get("text"), names),
            fields=tuple(text_html(f, names) for f in fields),
            accessory=shown_element(accessory, names) if accessory else None,
        )
    if kind in ("context", "actions"):
        elements = tuple(shown_element(e, names) for e in block.get("elements") or [])
        return ShownBlock(kind, elements=elements)
    if kind == "divider":
        return ShownBlock("divider")
    if kind == "markdown":
        return ShownBlock("section", mrkdwn_to_html(str(block.get("text", "")), names))
    if kind == "image":
        title = block.get("title") or {"type": "plain_text", "text": ""}
        alt = escape(f"[image: {block.get('alt_text', '')}]")
        return ShownBlock("image", Markup("{} {}").format(text_html(title, names), alt))
    return ShownBlock("unsupported", escape(f"[a {kind} block]"))


def shown_message(versions: list[Message], names: Names) -> ShownMessage:
    """A message in its last state, and as first posted if it was edited since (the
    states in between, a rollout's progress say, are left out)."""
    now, first = versions[-1], versions[0]
    return ShownMessage(
        ts=now.ts,
        blocks=shown_blocks(now.blocks, now.text, names),
        edited=now.updated > 0,
        broadcast=now.reply_broadcast,
        reactions=tuple(plain_to_html(f":{name}:") for name in now.reactions),
        first_posted=shown_blocks(first.blocks, first.text, names) if len(versions) > 1 else (),
    )


def _size(length: int) -> str:
    if length < 1024:
        return f"{length} B"
    if length < 1024 * 1024:
        return f"{length / 1024:.1f} KB"
    return f"{length / 1024 / 1024:.1f} MB"


def local_name(file: UploadedFile, taken: set[str]) -> str:
    """A name to write a shared file under, inside the page's folder whatever it is
    called in Slack ("../x", "", ".hidden")."""
    name = Path(file.filename.replace("\\", "/")).name.strip()
    if not name or name.startswith("."):
        name = file.id
    if name in taken:
        name = f"{file.id}-{name}"
    taken.add(name)
    return name


def file_shares(
    files: Iterable[UploadedFile], local: Mapping[str, str], names: Names
) -> tuple[FileShare, ...]:
    """Consecutive files with the same comment came from one upload: one share."""
    shares: list[tuple[str | None, list[ShownFile]]] = []
    for file in files:
        shown = ShownFile(
            file.filename, file.title, _size(len(file.content)), quote(local[file.id])
        )
        if shares and shares[-1][0] == file.initial_comment:
            shares[-1][1].append(shown)
        else:
            shares.append((file.initial_comment, [shown]))
    return tuple(
        FileShare(mrkdwn_to_html(comment or "", names), tuple(shown)) for comment, shown in shares
    )


def thread_page(
    slack: FakeSlackApi,
    channel: str,
    ts: str,
    local: Mapping[str, str],
    *,
    channel_name: str | None = None,
) -> ThreadPage:
    """The thread rooted at `ts`, as everyone in the channel sees it; `local` maps the id
    of each file shared in it to the name of its copy next to the page."""
    names = names_from(slack)
    thread = slack.thread(channel, ts)
    files = [f for f in slack.files() if f.channel == channel and f.thread_ts == ts]
    return ThreadPage(
        channel=channel_name or channel,
        root=shown_message(slack.versions(channel, ts), names),
        replies=tuple(shown_message(slack.versions(channel, m.ts), names) for m in thread[1:]),
        shares=file_shares(files, local, names),
    )


def render_page(page: ThreadPage) -> str:
    environment = Environment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.get_template("thread.html.j2").render(page=page, colours=BUTTON_COLOURS)


def write_thread_html(
    slack: FakeSlackApi, channel: str, ts: str, folder: Path, *, channel_name: str | None = None
) -> Path:
    """Write the thread's files into `folder`, then `folder/thread.html` linking to them."""
    folder.mkdir(parents=True, exist_ok=True)
    taken = {PAGE}
    local: dict[str, str] = {}
    for file in slack.files():
        if file.channel == channel and file.thread_ts == ts:
            local[file.id] = local_name(file, taken)
            (folder / local[file.id]).write_bytes(file.content)
    page = folder / PAGE
    page.write_text(
        render_page(thread_page(slack, channel, ts, local, channel_name=channel_name)),
        encoding="utf-8",
    )
    return page
