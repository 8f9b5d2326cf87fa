"""Command text as Slack delivers it reads as the person typed it: smart quotes,
autocorrected dashes, HTML entities and mention markup change nothing about the
request that comes out."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bot.commands import parse_command
from bot.errors import InvalidInput
from bot.records import requested
from bot.requests import RollbackRequest
from handlers.blocks import requester_line
from handlers.people import with_names
from handlers.slack_text import command_text, plain_punctuation
from testbed.slack_user import as_slack_sends

# -- examples a person meets -------------------------------------------------------------


def test_a_curly_quoted_reason_is_one_value():
    command = parse_command(
        command_text("family-assistant --reason “crash loop on start”"), "homelab"
    )
    assert (command.service, command.reason) == ("family-assistant", "crash loop on start")


@pytest.mark.parametrize(
    ("typed", "flag"),
    [("web —dry-run", "dry_run"), ("web –dry-run", "dry_run"), ("web —emergency", "emergency")],
)
def test_a_dash_autocorrected_from_two_hyphens_is_the_flag(typed, flag):
    assert getattr(parse_command(command_text(typed), "prod"), flag) is True


def test_a_dash_before_a_lone_letter_is_the_short_flag():
    assert parse_command(command_text("web –n homelab"), "prod").namespace == "homelab"


def test_an_autocorrected_dash_inside_a_quoted_reason_stays_a_dash():
    command = parse_command(command_text("web –reason “v2 — broken”"), "prod")
    assert command.reason == "v2 — broken"


def test_an_apostrophe_is_not_a_quote_and_single_curly_quotes_are():
    assert parse_command(command_text("web --reason don’t"), "prod").reason == "don't"
    quoted = parse_command(command_text("web --reason ‘it’s down’ --dry-run"), "prod")
    assert (quoted.reason, quoted.dry_run) == ("it's down", True)
    inside = parse_command(command_text("web --reason “we’re ‘fine’”"), "prod")
    assert inside.reason == "we're 'fine'"


def test_entities_are_what_the_person_typed():
    command = parse_command(command_text("web --reason “a &amp; b &lt; c &gt; d”"), "prod")
    assert command.reason == "a & b < c > d"


def test_a_typed_entity_is_text_not_a_mention():
    assert command_text("--reason &lt;!channel&gt; &amp;lt;") == "--reason <!channel> &lt;"
    assert command_text("&lt;@U0ALICE&gt;") == "<@U0ALICE>"


@pytest.mark.parametrize(
    ("slack", "plain"),
    [
        ("<@U0BOB|bob>", "@U0BOB"),
        ("<@W0ENTERPRISE>", "@W0ENTERPRISE"),
        ("<#C0OPS|ops-room>", "#ops-room"),
        ("<#C0OPS|>", "#C0OPS"),
        ("<#C0OPS>", "#C0OPS"),
        ("<#C0OPS|r&amp;d>", "#r&d"),
        ("<!here>", "@here"),
        ("<!subteam^S0SRE|@sre>", "@sre"),
        (
            "<https://status.example.com/i/1|status.example.com/i/1>",
            "https://status.example.com/i/1",
        ),
        ("<mailto:oncall@example.com|oncall@example.com>", "mailto:oncall@example.com"),
    ],
)
def test_mention_and_link_markup_reads_as_plain_text(slack, plain):
    assert command_text(f"web --reason “paged {slack} at 3am”") == (
        f'web --reason "paged {plain} at 3am"'
    )


def test_a_person_in_a_reason_keeps_their_id():
    command = parse_command(command_text("web --reason “per <@U0BOB|bob>”"), "prod")
    assert command.reason == "per @U0BOB"


# -- properties ----------------------------------------------------------------------------

PEOPLE = {"U0BOB": "bob", "W0ENTALICE": "alice", "U0CAROL": "carol.s"}
CHANNELS = {"C0OPS": "ops", "C0INCIDENT": "incidents"}
_plain_chars = st.sampled_from(list("abcdefxyz0189 .,:;!?/()-&<>") + ["'"])
plain_words = st.text(_plain_chars, min_size=1, max_size=12).filter(lambda w: w.strip())
tokens = st.one_of(
    plain_words,
    st.sampled_from([f"@{user}" for user in PEOPLE]),
    st.sampled_from([f"#{name}" for name in CHANNELS.values()]),
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str]:
    """(the plain text a person meant, the text a Slack client delivers for it)."""
    plain: list[str] = [draw(st.sampled_from(["web", "family-assistant", "todo-app"]))]
    slack: list[str] = list(plain)

    def flag(name: str) -> None:
        plain.append(name)
        slack.append(draw(st.sampled_from(["—", "–", "--"])) + name[2:])

    if draw(st.booleans()):
        plain.extend(["-n", "prod"])
        slack.extend(["-n", "prod"])
    if draw(st.booleans()):
        flag("--dry-run")
    if draw(st.booleans()):
        flag("--to-revision")
        revision = str(draw(st.integers(0, 40)))
        plain.append(revision)
        slack.append(revision)
    if draw(st.booleans()):
        flag("--reason")
        words = draw(st.lists(tokens, min_size=1, max_size=6))
        reason = " ".join(words)
        plain.append(shlex.quote(reason))
        slack.append(_as_slack_sends(draw, words))
    if draw(st.booleans()):
        flag("--emergency")
    return " ".join(plain), " ".join(slack)


def _as_slack_sends(draw: st.DrawFn, words: list[str]) -> str:
    """A reason as the client autocorrects and Slack escapes it, quoted as people quote."""
    sent = []
    for word in words:
        if word[1:] in PEOPLE and word.startswith("@"):
            user = word[1:]
            sent.append(draw(st.sampled_from([f"<@{user}|{PEOPLE[user]}>", f"<@{user}>"])))
            continue
        if word.startswith("#") and word[1:] in CHANNELS.values():
            channel = next(c for c, n in CHANNELS.items() if n == word[1:])
            sent.append(f"<#{channel}|{word[1:]}>")
            continue
        escaped = as_slack_sends(word, literal=True)
        sent.append(escaped.replace("'", "’"))
    quote = draw(st.sampled_from(["double", "single"] if "'" not in "".join(words) else ["double"]))
    opening, closing = ("“", "”") if quote == "double" else ("‘", "’")
    return opening + " ".join(sent) + closing


def _outcome(text: str) -> RollbackRequest | str:
    try:
        return parse_command(text, "default")
    except InvalidInput as err:
        return str(err)


@given(requests())
@example(('web --reason "don\'t"', "web —reason don’t"))
@example(("web --reason 'a & b'", "web –reason ‘a &amp; b’"))
def test_the_request_from_slacks_text_is_the_one_from_the_plain_text(texts):
    plain, slack = texts
    assert _outcome(command_text(slack)) == _outcome(plain)


@given(st.text(st.characters(exclude_characters="<>&“”„‟‘’‛‚—–")))
def test_text_without_anything_slack_changes_is_left_as_it_is(text):
    assert command_text(text) == text


@given(st.text())
def test_any_text_reads_back_into_a_request_or_a_clear_refusal(text):
    """No text a client can send makes the reading itself fail."""
    result = _outcome(command_text(text))
    assert isinstance(result, RollbackRequest | str)


def test_punctuation_alone_is_undone_without_markup():
    assert plain_punctuation("“a” ‘b’ —cd –e don’t") == "\"a\" 'b' --cd -e don\\'t"


# -- and back out: the ids a reason keeps, as Slack and files show them ------------------


def test_a_reasons_people_are_mentions_in_slack_and_nothing_else_is():
    record = requested(
        "prod", "web", "U0ALICE", reason=command_text("per <@U0BOB|bob> in <#C0OPS> &lt;@U0EVE&gt;")
    )
    line = requester_line(record)
    assert "per <@U0BOB> in <#C0OPS>" in line
    assert "&lt;@U0EVE&gt;" in line and "<@U0EVE>" not in line


def test_a_file_names_the_people_a_reason_names_by_id():
    names = {"U0BOB": "Bob Builder"}
    assert with_names("Reason: per @U0BOB and @U0GONE", lambda ids: names) == (
        "Reason: per @Bob Builder and @U0GONE"
    )
    assert with_names("mail bob@U0BOB.example", lambda ids: names) == "mail bob@U0BOB.example"


def test_words_that_only_look_like_ids_stay_text():
    record = requested("prod", "web", "U0ALICE", reason="at 10:00 @UTC, see #CVE list")
    assert requester_line(record).endswith(": at 10:00 @UTC, see #CVE list")
