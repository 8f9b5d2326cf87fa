"""A slash command's text as Slack delivers it, read back into what the person typed.

Three things stand between the two, all of them Slack's (so they are undone here,
at the edge, and the domain's grammar in `bot.commands` reads plain text):

- **markup**: a user, channel or group picked from the autocomplete arrives as
  `<@U123|alice>`, `<#C123|ops>`, `<!subteam^S123|@sre>`, a link as
  `<https://…|label>`. A person becomes `@U123` (the id: Slack renders it as a
  mention, files show the name — see `handlers.people`), a channel `#ops`, a link
  its address.
- **entities**: `&`, `<` and `>` that people typed arrive as `&amp;`, `&lt;`,
  `&gt;`. Undone after the markup, so a typed `&lt;@U1&gt;` stays text and is
  never read as a mention; rollbot escapes again wherever it writes mrkdwn
  (`handlers.mrkdwn`).
- **autocorrect**: the desktop and phone clients turn `"` into `“ ”`, `'` into
  `‘ ’` and `--` into `—` or `–`. Quotes become the shell quotes they were (an
  apostrophe stays an apostrophe), and a dash that starts a word becomes `--`
  (`-` before a lone letter: `–n` can only be `-n`).

Only the Slack command goes through this: a terminal does not autocorrect, and a
`—` or `“` given to `rollbot rollback` was typed on purpose.
"""

from __future__ import annotations

import re

#: Slack's markup: `<…>`; its insides decide what it was.
_MARKUP = re.compile(r"<([^<>]*)>")
_USER = re.compile(r"@([UW][A-Z0-9]{2,})(?:\|[^|]*)?")
_CHANNEL = re.compile(r"#([CGD][A-Z0-9]{2,})(?:\|(.*))?")
_SPECIAL = re.compile(r"!(?:subteam\^[A-Z0-9]+\|)?([^|]*)(?:\|(.*))?")

_OPEN_DOUBLE = "“„‟"
_CLOSE_DOUBLE = "”"
_OPEN_SINGLE = "‘‛‚"
_CLOSE_SINGLE = "’"
_DASHES = "—–"


def command_text(text: str) -> str:
    """What the person typed, from what Slack sent: markup, entities, autocorrect undone."""
    return plain_punctuation(_unescape(_MARKUP.sub(_plain_markup, text)))


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _plain_markup(match: re.Match[str]) -> str:
    inside = match.group(1)
    if user := _USER.fullmatch(inside):
        return f"@{user.group(1)}"
    if channel := _CHANNEL.fullmatch(inside):
        name = channel.group(2)
        return f"#{_unescape(name)}" if name else f"#{channel.group(1)}"
    if special := _SPECIAL.fullmatch(inside):
        label = special.group(2) or special.group(1)
        # `<!here>`, `<!subteam^S1|@sre>`, `<!date^…|fallback>`: what the person saw.
        return _unescape(label if label.startswith("@") or special.group(2) else f"@{label}")
    # A link: `<https://x.example|x.example>` or `<mailto:a@b|a@b>`; the address is
    # what was typed (the label is Slack's shortening of it).
    return _unescape(inside.split("|", 1)[0])


def plain_punctuation(text: str) -> str:
    """Smart quotes and autocorrected dashes back to what the shell grammar reads.

    Walks the text keeping track of which quote is open, so that `’` closes a
    `‘`-quoted value but is an apostrophe in `don’t` (kept as `'`, escaped where a
    shell would otherwise read it as a quote)."""
    out: list[str] = []
    quote = ""  # the shell quote open at this point: "", '"' or "'"
    for i, char in enumerate(text):
        at_word_start = i == 0 or text[i - 1].isspace()
        ends_word = i + 1 == len(text) or text[i + 1].isspace()
        if char in _OPEN_DOUBLE or char in _CLOSE_DOUBLE or char == '"':
            if quote == "'":
                out.append('"')
            else:
                quote = "" if quote == '"' else '"'
                out.append('"')
        elif char in _OPEN_SINGLE and quote == "" and at_word_start:
            quote = "'"
            out.append("'")
        elif char in _OPEN_SINGLE or char in _CLOSE_SINGLE:
            if quote == "'" and char in _CLOSE_SINGLE and ends_word:
                quote = ""
                out.append("'")
            else:
                out.append(_apostrophe(quote))
        elif char == "'":
            if quote == '"':
                out.append("'")
            else:
                quote = "" if quote == "'" else "'"
                out.append("'")
        elif char in _DASHES and quote == "" and at_word_start and text[i + 1 : i + 2].isalpha():
            # `—dry-run` was `--dry-run`; `–n` can only have been the short flag `-n`.
            short = i + 2 == len(text) or text[i + 2].isspace()
            out.append("-" if short else "--")
        else:
            out.append(char)
    return "".join(out)


def _apostrophe(quote: str) -> str:
    """A `'` that the shell grammar reads as the character itself, wherever it is."""
    if quote == '"':
        return "'"
    if quote == "'":
        return "'\\''"  # close, an escaped quote, reopen
    return "\\'"
