"""A service the tests can make healthy, failing, slow or the wrong version:
what rollbot's health checks, smoke tests and version checks talk to.

    GET  /health  → 200 {"status": "healthy"} | 500 | slow
    POST /chat    → 200 {"response": "…"} (the family-assistant smoke test)
    GET  /api     → 200 {"version": VERSION}
"""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from testbed.service import QuietHTTPServer, ThreadedHttpService

Mode = Literal["healthy", "failing", "slow", "down"]


class FakeService(ThreadedHttpService):
    def __init__(
        self, mode: Mode = "healthy", version: str = "1.5.0", slow_seconds: float = 5.0
    ) -> None:
        self.mode: Mode = mode
        self.version = version
        self.slow_seconds = slow_seconds
        self.requests = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _make_server(self) -> ThreadingHTTPServer:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _serve(self) -> None:
                service.requests += 1
                if service.mode == "slow":
                    time.sleep(service.slow_seconds)
                if service.mode in ("failing", "down"):
                    self._answer(
                        500 if service.mode == "failing" else 503, {"error": "internal error"}
                    )
                elif self.path.startswith("/health"):
                    self._answer(200, {"status": "healthy"})
                elif self.path.startswith("/api"):
                    self._answer(200, {"version": service.version})
                elif self.path.startswith("/chat") and self.command == "POST":
                    length = int(self.headers.get("Content-Length") or 0)
                    message = json.loads(self.rfile.read(length) or b"{}").get("message")
                    self._answer(200, {"response": f"you said {message}"})
                else:
                    self._answer(404, {"error": "not found"})

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        server = QuietHTTPServer(("127.0.0.1", 0), Handler)
        return server
