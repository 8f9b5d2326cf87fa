"""The test bed's person sends a command's text as Slack does: `&`, `<` and `>`
typed as characters escaped, the markup of what was picked from a list left as
markup — and reading it back (`handlers.slack_text`) gives what was typed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.slack_text import command_text
from testbed.slack_user import as_slack_sends


def test_ampersands_and_angle_brackets_typed_are_entities():
    assert as_slack_sends("5xx & timeouts <50%> -> a") == "5xx &amp; timeouts &lt;50%&gt; -&gt; a"


@pytest.mark.parametrize(
    "markup",
    [
        "<@U0CAROL>",
        "<@U0CAROL|carol>",
        "<@W0GRID1|grid user>",
        "<#C0OPS|ops>",
        "<#G0PRIVATE>",
        "<!here>",
        "<!channel>",
        "<!subteam^S0SRE|@sre>",
        "<https://evil.example|Approved by SRE lead>",
        "<http://example.com>",
        "<mailto:a@example.com|a@example.com>",
    ],
)
def test_slacks_own_markup_is_left_as_markup(markup):
    assert as_slack_sends(f"a < {markup} & b") == f"a &lt; {markup} &amp; b"


def test_an_ampersand_inside_a_link_is_escaped_as_slack_does():
    sent = as_slack_sends("<https://x.example/?a=1&b=2|x & y>")
    assert sent == "<https://x.example/?a=1&amp;b=2|x &amp; y>"


def test_what_only_looks_like_markup_is_escaped():
    for typed in ("<script>", "<@alice>", "<#ops>", "<!>", "<U0BOB>", "<ftp://x>", "<<@U0BOB>"):
        assert "<" not in as_slack_sends(typed).replace("<@U0BOB>", "")


def test_literal_text_escapes_markup_spelled_out_too():
    typed = "<!channel> <https://evil.example|x> & y"
    assert as_slack_sends(typed, literal=True) == (
        "&lt;!channel&gt; &lt;https://evil.example|x&gt; &amp; y"
    )


@given(st.text(alphabet="ab &<>;@#!|:/U0C", max_size=40))
def test_literal_text_reads_back_as_typed(typed):
    # Entities are undone after markup, so nothing spelled out becomes markup.
    assert command_text(as_slack_sends(typed, literal=True)) == typed
