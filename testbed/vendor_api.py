"""What the local vendor APIs share (PagerDuty, Statuspage, a webhook receiver):
a JSON answer, the request body, and faults a test switches on — the next N
requests answered 429 (with Retry-After), 5xx, or never answered at all."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any


@dataclass
class Faults:
    """The next `count` requests fail with `status` (0: the connection is closed
    with no answer, as a network error)."""

    count: int = 0
    status: int = 500
    retry_after: float | None = None
    body: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set(
        self, count: int, status: int = 500, retry_after: float | None = None, body: Any = None
    ) -> None:
        with self.lock:
            self.count, self.status, self.retry_after, self.body = count, status, retry_after, body

    def take(self) -> tuple[int, float | None, Any] | None:
        with self.lock:
            if self.count <= 0:
                return None
            self.count -= 1
            return self.status, self.retry_after, self.body


class VendorHandler(BaseHTTPRequestHandler):
    """JSON in, JSON out; subclasses route."""

    protocol_version = "HTTP/1.1"

    def answer(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def is_json(self) -> bool:
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        return kind == "application/json"

    def fault(self, faults: Faults, default_body: Any) -> bool:
        """Answer the next scripted fault, if one is due; whether it did."""
        due = faults.take()
        if due is None:
            return False
        self.body()  # read it: the client must see our answer, not a reset
        status, retry_after, body = due
        if status == 0:
            self.close_connection = True
            self.connection.close()
            return True
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        self.answer(status, default_body if body is None else body, headers)
        return True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass
