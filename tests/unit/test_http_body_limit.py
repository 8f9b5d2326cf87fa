"""The body cap in front of the Bolt app (handlers/wsgi.py), on plain WSGI environs."""

from __future__ import annotations

import io
from typing import Any

from handlers.wsgi import MAX_BODY_BYTES, limit_body


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
