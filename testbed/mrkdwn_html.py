"""Slack's mrkdwn as HTML, to look at what the local Slack received.

A viewer of the fake Slack (see `testbed/thread_html.py`), not part of rollbot, so it
only needs to be faithful where the demo's thread is concerned: `*bold*`, `_italics_`,
`~strike~`, inline code and code blocks, quotes, links `<url|text>`, mentions `<@U…>`
(named through a lookup), `<#C…>`, `<!here>`, `<!date^…>` and emoji shortcodes.

Everything comes out escaped. A message's text reaches Slack with `& < >` written as
entities and raw `<…>` meaning markup; here text is decoded from those three entities
once and then HTML-escaped once, so `&lt;script&gt;` shows as `<script>`, and a raw
`<script>` or `<img onerror=…>`, which Slack would not read as markup either, shows as
the text it is. Only http, https and mailto links become links.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit

from markupsafe import Markup, escape

#: A user id to the name Slack shows for it ("alice" for U0ALICE).
Names = Callable[[str], str]

#: The shortcodes rollbot and people commonly use; any other stays as typed.
EMOJI = {
    "arrows_counterclockwise": "🔄",
    "white_check_mark": "✅",
    "heavy_check_mark": "✔️",
    "x": "❌",
    "warning": "⚠️",
    "rotating_light": "🚨",
    "no_entry_sign": "🚫",
    "no_entry": "⛔",
    "hourglass": "⌛",
    "hourglass_flowing_sand": "⏳",
    "information_source": "ℹ️",
    "rocket": "🚀",
    "fire": "🔥",
    "tada": "🎉",
    "eyes": "👀",
    "thumbsup": "👍",
    "+1": "👍",
    "thumbsdown": "👎",
    "-1": "👎",
    "wave": "👋",
    "memo": "📝",
    "page_facing_up": "📄",
    "bar_chart": "📊",
    "chart_with_upwards_trend": "📈",
    "chart_with_downwards_trend": "📉",
    "lock": "🔒",
    "key": "🔑",
    "bell": "🔔",
    "red_circle": "🔴",
    "large_green_circle": "🟢",
    "large_yellow_circle": "🟡",
    "rewind": "⏪",
    "leftwards_arrow_with_hook": "↩️",
    "mag": "🔍",
    "construction": "🚧",
    "sos": "🆘",
    "stopwatch": "⏱️",
    "clipboard": "📋",
    "package": "📦",
    "robot_face": "🤖",
    "slightly_smiling_face": "🙂",
}

_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITY_CHARS = {"amp": "&", "lt": "<", "gt": ">"}
_CODE_BLOCK = re.compile(r"```(.*?)```", re.DOTALL)
_QUOTE = re.compile(r"^(?:&gt;|>) ?")
_INLINE = re.compile(
    r"(?P<code>`[^`\n]+`)"
    r"|(?P<angle><[^<>\n]*>)"
    r"|(?P<emoji>:[a-z0-9_+'-]+:)"
    # Slack formats only where a marker starts and ends a word: not in snake_case, 2*3*4.
    r"|(?P<styled>(?<![\w*_~])(?P<mark>[*_~])(?=\S)(?P<inner>[^\n]+?)(?<=\S)(?P=mark)(?![\w*_~]))"
)
_STYLE_TAG = {"*": "b", "_": "i", "~": "s"}
_LINK_SCHEMES = frozenset({"http", "https", "mailto"})
_SPECIAL_MENTIONS = frozenset({"here", "channel", "everyone"})
_DATE_TOKEN = re.compile(r"\{(\w+)\}")


def unescape_slack(text: str) -> str:
    """Text as Slack shows it: its three entities decoded, in one pass."""
    return _ENTITY.sub(lambda m: _ENTITY_CHARS[m[1]], text)


def _shown_as_id(user_id: str) -> str:
    return user_id


def mrkdwn_to_html(text: str, names: Names = _shown_as_id) -> Markup:
    """A `mrkdwn` text object's (or a message's) text as safe HTML."""
    parts: list[Markup] = []
    pieces = _CODE_BLOCK.split(text)
    for index, piece in enumerate(pieces):
        if index % 2:  # inside ``` … ```: shown verbatim
            parts.append(
                Markup('<pre class="code-block">{}</pre>').format(unescape_slack(piece.strip("\n")))
            )
            continue
        # A code block stands on its own lines: the newlines around it are not text.
        if index > 0:
            piece = piece.removeprefix("\n")
        if index < len(pieces) - 1:
            piece = piece.removesuffix("\n")
        if piece:
            parts.append(_lines(piece, names))
    return Markup("").join(parts)


def plain_to_html(text: str, *, emoji: bool = True) -> Markup:
    """A `plain_text` object's text: no markup is read, only shortcodes (when `emoji`)."""
    if not emoji:
        return escape(text)
    parts: list[Markup] = []
    position = 0
    for match in re.finditer(r":([a-z0-9_+'-]+):", text):
        if match[1] in EMOJI:
            parts.append(escape(text[position : match.start()]))
            parts.append(_emoji(match[1]))
            position = match.end()
    parts.append(escape(text[position:]))
    return Markup("").join(parts)


def _lines(text: str, names: Names) -> Markup:
    """Lines joined by <br>, with runs of `>` lines as one quote."""
    parts: list[Markup] = []
    quoted: list[str] = []

    def flush_quote() -> None:
        if quoted:
            inner = Markup("<br>").join(_inline(line, names) for line in quoted)
            parts.append(Markup("<blockquote>{}</blockquote>").format(inner))
            quoted.clear()

    plain: list[Markup] = []
    for line in text.split("\n"):
        if _QUOTE.match(line):
            if plain:
                parts.append(Markup("<br>").join(plain))
                plain = []
            quoted.append(_QUOTE.sub("", line, count=1))
            continue
        flush_quote()
        plain.append(_inline(line, names))
    flush_quote()
    if plain:
        parts.append(Markup("<br>").join(plain))
    return Markup("").join(parts)


def _inline(text: str, names: Names) -> Markup:
    parts: list[Markup] = []
    position = 0
    while match := _INLINE.search(text, position):
        parts.append(escape(unescape_slack(text[position : match.start()])))
        position = match.end()
        if match["code"] is not None:
            code = unescape_slack(match["code"][1:-1])
            parts.append(Markup("<code>{}</code>").format(code))
        elif match["angle"] is not None:
            parts.append(_angle(match["angle"][1:-1], names))
        elif match["emoji"] is not None:
            name = match["emoji"][1:-1]
            if name in EMOJI:
                parts.append(_emoji(name))
            else:  # "10:30:45" or an emoji this viewer does not know: the colon is text
                parts.append(Markup(":"))
                position = match.start() + 1
        else:
            tag = _STYLE_TAG[match["mark"]]
            inner = _inline(match["inner"], names)
            parts.append(Markup("<{tag}>{inner}</{tag}>").format(tag=Markup(tag), inner=inner))
    parts.append(escape(unescape_slack(text[position:])))
    return Markup("").join(parts)


def _emoji(name: str) -> Markup:
    return Markup('<span class="emoji" title=":{}:">{}</span>').format(name, EMOJI[name])


def _mention(text: str) -> Markup:
    return Markup('<span class="mention">{}</span>').format(text)


def _angle(inner: str, names: Names) -> Markup:
    """What is between `<` and `>`: a mention, a date or a link; anything else is text."""
    target, _, label = inner.partition("|")
    label = unescape_slack(label)
    if target.startswith("@") and len(target) > 1:
        return _mention("@" + names(target[1:]))
    if target.startswith("#") and len(target) > 1:
        return _mention("#" + (label or target[1:]))
    if target.startswith("!"):
        command = target[1:]
        if command in _SPECIAL_MENTIONS:
            return _mention("@" + command)
        if command.startswith("subteam^"):
            return _mention(label or "@" + command.removeprefix("subteam^"))
        if command.startswith("date^"):
            return _date(command, label)
        return escape(label or f"<{unescape_slack(inner)}>")
    url = unescape_slack(target)
    if _is_link(url):
        return Markup('<a href="{}" rel="noopener noreferrer">{}</a>').format(url, label or url)
    return escape(f"<{unescape_slack(inner)}>")  # not markup Slack knows: shown as sent


def _is_link(url: str) -> bool:
    if any(c.isspace() or ord(c) < 32 for c in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme.lower() not in _LINK_SCHEMES:
        return False
    return parts.scheme.lower() == "mailto" or bool(parts.netloc)


def _date(command: str, fallback: str) -> Markup:
    """`<!date^SECONDS^FORMAT[^LINK]|fallback>`, shown in UTC (Slack uses the reader's
    zone); the fallback when the seconds are not a number."""
    fields = command.split("^")
    try:
        when = datetime.fromtimestamp(int(fields[1]), UTC)
        template = fields[2]
    except (IndexError, ValueError, OverflowError, OSError):
        return escape(fallback)
    shown = _DATE_TOKEN.sub(lambda m: _date_token(when, m[1]) or m[0], unescape_slack(template))
    return Markup('<time datetime="{}" title="{} UTC">{}</time>').format(
        when.isoformat(), when.strftime("%Y-%m-%d %H:%M:%S"), shown
    )


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _date_token(when: datetime, token: str) -> str | None:
    month, day = when.strftime("%B"), _ordinal(when.day)
    twelve = when.strftime("%I").lstrip("0") or "12"
    return {
        "date_num": when.strftime("%Y-%m-%d"),
        "date": f"{month} {day}, {when.year}",
        "date_pretty": f"{month} {day}, {when.year}",
        "date_short": f"{when.strftime('%b')} {when.day}, {when.year}",
        "date_short_pretty": f"{when.strftime('%b')} {when.day}, {when.year}",
        "date_long": f"{when.strftime('%A')}, {month} {day}, {when.year}",
        "date_long_pretty": f"{when.strftime('%A')}, {month} {day}, {when.year}",
        "time": f"{twelve}:{when.strftime('%M %p')}",
        "time_secs": f"{twelve}:{when.strftime('%M:%S %p')}",
    }.get(token)
