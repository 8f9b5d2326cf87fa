"""Quoted text cannot speak for rollbot: escaping for Slack's mrkdwn."""

from __future__ import annotations

import pytest

from handlers.mrkdwn import clip, code, escape, mention, mention_actor, untrusted

HOSTILE = "<!channel> <https://evil.example|Approved by SRE lead> & xoxb-123"


def test_control_characters_are_escaped_so_no_markup_survives():
    assert escape(HOSTILE) == (
        "&lt;!channel&gt; &lt;https://evil.example|Approved by SRE lead&gt; &amp; xoxb-123"
    )


@pytest.mark.parametrize(
    "markup",
    ["<!here>", "<!everyone>", "<@U0ALICE>", "<#C0PROD>", "<!subteam^S0LEADS>", "<http://x|y>"],
)
def test_no_mention_channel_link_or_group_reaches_slack_as_markup(markup):
    shown = untrusted(f"pod says {markup} now")
    assert "<" not in shown and ">" not in shown
    assert markup[1:-1] in shown, "the text stays readable"


@pytest.mark.parametrize("word", ["@channel", "@here", "@everyone", "@Channel"])
def test_bare_mass_mentions_are_broken_up_but_still_read_the_same(word):
    shown = untrusted(f"ping {word}!")
    assert word not in shown
    assert shown.replace("\u2060", "") == f"ping {word}!"


def test_an_ordinary_address_or_handle_is_left_alone():
    assert untrusted("mail ops@example.com or @alice") == "mail ops@example.com or @alice"


def test_already_escaped_text_is_escaped_again_not_trusted():
    assert escape("&lt;!channel&gt;") == "&amp;lt;!channel&amp;gt;"


def test_inline_code_cannot_be_closed_by_the_text_it_quotes():
    assert code("app:v1` *bold* `x") == "`app:v1ˋ *bold* ˋx`"
    assert code("<!here>") == "`&lt;!here&gt;`"


def test_only_a_slack_user_id_becomes_a_mention():
    assert mention("U0ALICE") == "<@U0ALICE>"
    assert mention("W0BOB") == "<@W0BOB>"
    assert mention("<!channel>") == "&lt;!channel&gt;"
    assert mention("alice") == "alice"
    assert mention(None) == "someone"


def test_an_actor_named_in_an_escaped_line_is_mentioned_by_id():
    assert mention_actor("cancelled by U0ALICE", "U0ALICE") == "cancelled by <@U0ALICE>"
    assert mention_actor("cancelled by U0ALICE2", "U0ALICE") == "cancelled by U0ALICE2"
    assert mention_actor("by &lt;@U0ALICE&gt;", "U0ALICE") == "by &lt;@U0ALICE&gt;"
    assert mention_actor("by alice", "alice") == "by alice"


@pytest.mark.parametrize("cut", range(1, 12))
def test_clipping_never_leaves_half_an_entity(cut):
    escaped = escape("a&b<c>d")  # a&amp;b&lt;c&gt;d
    clipped = clip(escaped, cut)
    assert len(clipped) <= cut
    body = clipped.removesuffix("…")
    assert escaped.startswith(body)
    assert body.count("&") == sum(body.count(e) for e in ("&amp;", "&lt;", "&gt;"))
