"""Text for Slack's mrkdwn, made from text rollbot does not control.

Everything the domain hands over is plain text, and much of it quotes pods,
events and people: a log line can hold `<!channel>`, a `--reason` a link
`<https://evil.example|Approved by SRE lead>` that would read as rollbot's own
words. So every such string goes through `untrusted()` before it is put into a
message, and rollbot's own decoration (emoji, `*bold*`, `<@requester>` built
from an id) is added around it, never inside it.
"""

from __future__ import annotations

import re

from bot.redaction import redact

#: Slack's control characters, as Slack asks them to be escaped.
_ENTITIES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"))
#: Mentions that notify a whole channel or workspace when typed bare.
_MASS_MENTION = re.compile(r"@(?=(?:channel|here|everyone|group)\b)", re.IGNORECASE)
#: Keeps "@channel" readable but no longer a mention.
_WORD_JOINER = "\u2060"
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
_ENTITY_TAIL = re.compile(r"&[a-z]{0,3}$")
#: A person or channel a person's text names by id (`handlers.slack_text` keeps them so);
#: an id has a digit, so "@UTC" or "#CVE" stays text.
_NAMED_USER = re.compile(r"(?<![\w@<;])@((?=[UW][A-Z]*\d)[UW][A-Z0-9]{2,})\b")
_NAMED_CHANNEL = re.compile(r"(?<![\w#<;])#((?=[CG][A-Z]*\d)[CG][A-Z0-9]{2,})\b")


def redacted(text: str) -> str:
    """THE place where secrets are taken out of quoted text, for messages and files
    alike (the domain redacts what it quotes too: this is the last line)."""
    return redact(text)


def escape(text: str) -> str:
    """`& < >` escaped, so no `<!channel>`, `<@U…>`, `<#C…>` or `<url|label>` is
    read as markup, and bare `@channel`/`@here`/`@everyone` broken up."""
    for char, entity in _ENTITIES:
        text = text.replace(char, entity)
    return _MASS_MENTION.sub("@" + _WORD_JOINER, text)


def untrusted(text: str) -> str:
    """Any text from the domain, made safe to put into mrkdwn: redacted, then escaped."""
    return escape(redacted(text))


def plain(text: str) -> str:
    """Domain text for a `plain_text` object (headers, buttons): no markup is read
    there, so it is only redacted."""
    return redacted(text)


def code(text: str) -> str:
    """Untrusted text as inline code; a backquote in it cannot end the span early."""
    return "`" + untrusted(text).replace("`", "ˋ") + "`"


def mention(user: str | None) -> str:
    """A person rollbot names, by id: a mention when it is a Slack user id, the escaped
    text otherwise (the CLI and automatic rollbacks have no Slack user)."""
    if not user:
        return "someone"
    return f"<@{user}>" if _USER_ID.match(user) else untrusted(user)


def mention_listed(entry: str) -> str:
    """A user or user group (S…) a policy lists, as a mention that notifies them."""
    if _GROUP_ID.match(entry):
        return f"<!subteam^{entry}>"
    return mention(entry)


def mention_actor(escaped: str, actor: str | None) -> str:
    """Escaped text that names `actor` by id ("approved by U0BOB"): the id shown as a
    mention. Only a Slack user id is ever turned into one."""
    if not actor or not _USER_ID.match(actor):
        return escaped
    return re.sub(rf"(?<![@\w]){re.escape(actor)}\b", f"<@{actor}>", escaped)


def mention_named(escaped: str) -> str:
    """Escaped text from a person (a reason) with the people and channels it names by
    id (`@U123`, `#C123`, as `handlers.slack_text` reads Slack's mentions) shown as
    Slack shows them: the name, kept current, linked. Nothing else becomes markup."""
    escaped = _NAMED_USER.sub(r"<@\1>", escaped)
    return _NAMED_CHANNEL.sub(r"<#\1>", escaped)


def clip(escaped: str, limit: int) -> str:
    """Escaped text cut to `limit` characters, never in the middle of an entity."""
    if len(escaped) <= limit:
        return escaped
    head = escaped[: limit - 1]
    return _ENTITY_TAIL.sub("", head) + "…"
