"""The body cap in front of the Bolt app (handlers/wsgi.py), on plain WSGI environs."""

from __future__ import annotations

import io
from typing import Any

import pytest

from handlers.wsgi import (
    MAX_BODY_BYTES,
    MAX_HEAD_BYTES,
    POLLER_BODY_BYTES,
    _arrived,
    _whole,
    limit_body,
)


class Unread(io.BytesIO):
    """A request body that records how much of it was read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.taken = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.taken += len(chunk)
        return chunk


def call(environ: dict[str, Any]) -> tuple[str, bytes, list[bytes]]:
    seen: list[bytes] = []

    def app(env: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(env["wsgi.input"].read(int(env.get("CONTENT_LENGTH") or 0)))
        start_response("200 OK", [])
        return [b"ok"]

    status: list[str] = []
    body = b"".join(limit_body(app)(environ, lambda s, h: status.append(s)))
    return status[0], body, seen


def test_a_declared_body_over_the_limit_is_refused_unread():
    stream = Unread(b"x" * 10)
    status, _, seen = call({"CONTENT_LENGTH": str(MAX_BODY_BYTES + 1), "wsgi.input": stream})
    assert status.startswith("413") and seen == [] and stream.taken == 0


def test_a_chunked_body_over_the_limit_is_refused_after_the_limit():
    stream = Unread(b"x" * (3 * MAX_BODY_BYTES))
    status, _, seen = call({"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": stream})
    assert status.startswith("413") and seen == []
    assert stream.taken <= MAX_BODY_BYTES + 1


def test_a_chunked_body_under_the_limit_reaches_the_app_with_its_length():
    status, _, seen = call(
        {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input": io.BytesIO(b"command=x")}
    )
    assert status == "200 OK" and seen == [b"command=x"]


def test_a_body_within_the_limit_reaches_the_app_whole():
    status, body, seen = call({"CONTENT_LENGTH": "9", "wsgi.input": io.BytesIO(b"command=x")})
    assert (status, body, seen) == ("200 OK", b"ok", [b"command=x"])


def test_a_malformed_content_length_is_a_bad_request():
    status, _, seen = call({"CONTENT_LENGTH": "-1", "wsgi.input": io.BytesIO(b"")})
    assert status.startswith("400") and seen == []


# -- what the poller waits for before a request gets a thread ------------------------------

HEAD = b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"


def test_a_request_has_arrived_once_its_declared_body_is_there():
    assert not _arrived(HEAD[:20])
    assert not _arrived(HEAD)
    assert not _arrived(HEAD + b"x" * 9)
    assert _arrived(HEAD + b"x" * 10)


def test_a_request_without_a_body_has_arrived_with_its_head():
    assert _arrived(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")


def test_the_length_header_is_found_in_any_case():
    assert not _arrived(HEAD.replace(b"Content-Length", b"content-LENGTH"))


@pytest.mark.parametrize(
    "head",
    [
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: ten\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 10\r\nContent-Length: 10\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % (POLLER_BODY_BYTES + 1),
    ],
    ids=["chunked", "not-a-number", "twice", "larger-than-the-poller-reads"],
)
def test_a_body_the_poller_does_not_read_goes_to_a_thread_with_the_head(head):
    assert _arrived(head)
    assert not _whole(head + b"x" * 10), "a thread reads it, in time; never the loop"


def test_only_a_request_all_there_is_answered_on_the_loop():
    assert _whole(HEAD + b"x" * 10)
    assert _whole(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert not _whole(HEAD + b"x" * 9), "its parsing would wait for the last byte"
    assert not _whole(HEAD[:-2])
    both = HEAD.replace(b"\r\n\r\n", b"\r\nTransfer-ENCODING: chunked\r\n\r\n")
    assert not _whole(both + b"x" * 10), "a length and chunks: gunicorn reads it its way"


def test_a_head_that_never_ends_goes_to_the_parser_at_its_limit():
    endless = b"GET / HTTP/1.1\r\nX: " + b"y" * MAX_HEAD_BYTES
    assert not _arrived(endless[: MAX_HEAD_BYTES - 1])
    assert _arrived(endless[:MAX_HEAD_BYTES])


def test_a_length_of_thousands_of_digits_is_no_number_not_an_exception():
    """int() refuses over 4300 digits with a ValueError: on the loop, the process's end."""
    huge = b"POST /slack/events HTTP/1.1\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n"
    assert _arrived(huge) and not _whole(huge)
    status, _, seen = call({"CONTENT_LENGTH": "9" * 5000, "wsgi.input": Unread(b"")})
    assert status.startswith("400") and seen == []
    status, _, seen = call({"CONTENT_LENGTH": "²", "wsgi.input": Unread(b"")})
    assert status.startswith("400") and seen == [], "a digit to str.isdigit, not a length"


@pytest.mark.parametrize("path", [b"/readyz", b"/metrics", b"/slack/other", b"/"])
def test_only_slacks_requests_and_the_liveness_probe_are_answered_on_the_loop(path):
    """/readyz asks Redis and Kubernetes, /metrics reads a thousand records: never
    on the loop that acks Slack."""
    assert not _whole(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert _whole(b"GET /healthz?verbose HTTP/1.1\r\nHost: x\r\n\r\n")
