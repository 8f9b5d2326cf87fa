"""The viewer's mrkdwn → HTML: Slack's formatting shown, and nothing in the text ever
becoming HTML of its own."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from testbed.mrkdwn_html import mrkdwn_to_html, plain_to_html, unescape_slack
from tests.html_dom import read_page

NAMES = {"U0BOB": "bob", "U0ALICE": "alice"}


def html(text: str) -> str:
    return str(mrkdwn_to_html(text, lambda user: NAMES.get(user, user)))


def test_bold_italics_and_strike_nest() -> None:
    assert html("*bold _both_* and ~gone~") == "<b>bold <i>both</i></b> and <s>gone</s>"


def test_markers_inside_words_or_around_spaces_are_text() -> None:
    assert html("family_assistant_v2 and 2*3*4") == "family_assistant_v2 and 2*3*4"
    assert html("a * b * c") == "a * b * c"


def test_inline_code_shows_markup_as_typed() -> None:
    assert html("run `*x* &lt;@U0BOB&gt;` now") == ("run <code>*x* &lt;@U0BOB&gt;</code> now")


def test_a_code_block_keeps_its_lines_and_stands_apart_from_the_text() -> None:
    assert html("before\n```a &amp;&amp; b\n  *c*```\nafter") == (
        'before<pre class="code-block">a &amp;&amp; b\n  *c*</pre>after'
    )


def test_lines_break_and_quoted_lines_become_one_quote() -> None:
    assert html("one\ntwo\n&gt; quoted\n&gt; more\nthree") == (
        "one<br>two<blockquote>quoted<br>more</blockquote>three"
    )


def test_links_show_their_label_and_keep_their_address() -> None:
    page = read_page(html("see <https://x.example/a?b=1&amp;c=2|the docs> or <https://x.example>"))
    links = page.find("a")
    assert [(a.attrs["href"], a.text) for a in links] == [
        ("https://x.example/a?b=1&c=2", "the docs"),
        ("https://x.example", "https://x.example"),
    ]
    assert "<mailto:ops@x.example|ops>" not in html("<mailto:ops@x.example|ops>")


@pytest.mark.parametrize(
    "link",
    [
        "<javascript:alert(1)|click>",
        "<data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;|x>",
        "<//evil.example|x>",
        "<vbscript:msgbox|x>",
        "<https://|x>",
    ],
)
def test_only_http_https_and_mailto_become_links(link: str) -> None:
    page = read_page(html(link))
    assert page.find("a") == []
    assert page.text == unescape_slack(link)


def test_a_quote_in_an_address_cannot_leave_the_attribute() -> None:
    page = read_page(html('<https://x.example/"onmouseover="alert(1)|x>'))
    assert page.handlers() == []
    assert page.find("a")[0].attrs["href"] == 'https://x.example/"onmouseover="alert(1)'


def test_mentions_show_names_channels_and_groups() -> None:
    page = read_page(
        html("<@U0BOB> and <@U0NOBODY>, <!here> <!channel> <#C0INC|incidents> <!subteam^S1|@sre>")
    )
    assert [m.text for m in page.find("span", "mention")] == [
        "@bob",
        "@U0NOBODY",
        "@here",
        "@channel",
        "#incidents",
        "@sre",
    ]


def test_a_date_is_shown_in_utc_and_a_bad_one_falls_back() -> None:
    shown = read_page(html("Expires <!date^1796169523^{date_num} {time}|in a while>."))
    assert shown.text == "Expires 2026-12-01 11:58 PM."
    assert read_page(html("<!date^soon^{time}|&lt;in a while&gt;>")).text == "<in a while>"


def test_known_emoji_are_drawn_and_other_colons_stay() -> None:
    assert read_page(html(":white_check_mark: at 10:30:45 :not_an_emoji:")).text == (
        "✅ at 10:30:45 :not_an_emoji:"
    )


def test_slack_escaped_text_shows_as_typed_and_is_decoded_once() -> None:
    text = (
        "&lt;script&gt;alert(1)&lt;/script&gt; &amp;lt;b&amp;gt; &lt;img src=x onerror=alert(2)&gt;"
    )
    for around in ("{}", "*bold* {} _it_ `code`"):
        page = read_page(html(around.format(text)))
        shown = "<script>alert(1)</script> &lt;b&gt; <img src=x onerror=alert(2)>"
        assert page.text == around.format(shown).replace("*", "").replace("_", "").replace("`", "")
        assert [e.tag for e in page.elements] == ([] if around == "{}" else ["b", "i", "code"])


def test_raw_html_is_not_slack_markup_and_shows_as_text() -> None:
    text = "<script>alert(1)</script> <img src=x onerror=alert(2)> <b onclick=x>hi</b>"
    page = read_page(html(text))
    assert [e.tag for e in page.elements] == []
    assert page.text == text


def test_plain_text_reads_no_markup_but_draws_emoji() -> None:
    assert str(plain_to_html("*Roll back* <b>x</b> &amp; :warning:")) == (
        '*Roll back* &lt;b&gt;x&lt;/b&gt; &amp;amp; <span class="emoji" title=":warning:">⚠️</span>'
    )
    assert str(plain_to_html(":warning:", emoji=False)) == ":warning:"


ALLOWED_TAGS = {"b", "i", "s", "code", "pre", "blockquote", "br", "a", "span", "time"}
ALLOWED_ATTRIBUTES = {"class", "title", "href", "rel", "datetime"}
SLACKISH = st.text(
    alphabet=st.sampled_from(list("<>&|*_~`:!@#^'\"= \n/abcUSC01;ltgmpjavscript")),
    max_size=80,
)


@given(st.one_of(SLACKISH, st.text(max_size=80)))
def test_whatever_the_text_only_the_renderers_own_tags_come_out(text: str) -> None:
    page = read_page(html(text))
    for element in page.elements:
        assert element.tag in ALLOWED_TAGS, (text, element)
        assert set(element.attrs) <= ALLOWED_ATTRIBUTES, (text, element)
        if "href" in element.attrs:
            assert urlsplit(element.attrs["href"]).scheme in ("http", "https", "mailto")
