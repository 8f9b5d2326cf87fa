from __future__ import annotations

import pytest

from bot.durations import parse_duration
from bot.errors import InvalidInput
from bot.names import check_container_name, check_namespace, check_object_name, quoted


@pytest.mark.parametrize(
    ("text", "seconds"), [("300", 300), ("90s", 90), ("5m", 300), ("1h30m", 5400), ("1.5m", 90)]
)
def test_durations_read_as_people_write_them(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "5 minutes", "m5", "-5m", "0s", "5mx", "٣m", "³s", "9" * 400, "169h", "1e9"]
)
def test_a_bad_duration_says_how_to_write_one(text):
    with pytest.raises(InvalidInput):
        parse_duration(text)


@pytest.mark.parametrize("name", ["Web", "web_app", "-web", "web-", "a" * 254, "we b", ""])
def test_names_that_are_not_dns_1123_are_refused_before_any_api_call(name):
    with pytest.raises(InvalidInput, match="DNS-1123"):
        check_object_name(name)


def test_namespaces_are_labels_so_dots_are_refused():
    assert check_namespace("prod-eu") == "prod-eu"
    with pytest.raises(InvalidInput, match="namespace"):
        check_namespace("prod.eu")


@pytest.mark.parametrize("name", ["web\n", "web.api\n", "web\r\n", "\nweb", "wéb", "web\x00"])
def test_a_name_with_a_trailing_newline_or_any_other_stray_character_is_refused(name):
    # `$` matches before a final newline: a name must match as a whole.
    with pytest.raises(InvalidInput, match="DNS-1123"):
        check_object_name(name)
    with pytest.raises(InvalidInput, match="namespace"):
        check_namespace(name.replace(".", ""))


def test_container_names_are_labels():
    assert check_container_name("app-1") == "app-1"
    for name in ("my.app", "a" * 64, "app\n"):
        with pytest.raises(InvalidInput, match="not a valid container name"):
            check_container_name(name)


def test_an_error_quotes_a_long_name_shortly_and_shows_control_characters():
    with pytest.raises(InvalidInput) as err:
        check_object_name("x" * 5000 + "\n")
    assert "5001 characters" in str(err.value)
    assert len(str(err.value)) < 250
    assert "'\\x1b'" in quoted("\x1b")
