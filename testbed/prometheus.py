"""A Prometheus the tests can set: `GET /api/v1/query` answers the error ratio
they chose, as a scalar or a vector, or hangs, or fails.

    with FakePrometheus(value=0.7) as prometheus:
        PrometheusQuery(url=prometheus.url, query="…")

Modes: "answer" (the value; "NaN" and the like as a string), "hang" (no answer
until the test stops the server), "error" (HTTP `error_status` with Prometheus'
error body), "garbage" (HTTP 200, not JSON).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self
from urllib.parse import parse_qs, urlsplit

from testbed.service import QuietHTTPServer, ThreadedHttpService

Mode = Literal["answer", "hang", "error", "garbage"]
ResultType = Literal["vector", "scalar"]


class FakePrometheus(ThreadedHttpService):
    def __init__(
        self,
        value: float | str = 0.0,
        mode: Mode = "answer",
        result_type: ResultType = "vector",
        series: int = 1,
        error_status: int = 503,
    ) -> None:
        self.value = value
        self.mode: Mode = mode
        self.result_type: ResultType = result_type
        #: How many series a vector answer holds (0: the empty vector of no traffic).
        self.series = series
        self.error_status = error_status
        #: The PromQL of every query asked, in order.
        self.queries: list[str] = []
        self._release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _before_stop(self) -> None:
        self._release.set()  # a hanging answer ends with the server

    def start(self) -> Self:
        self._release.clear()
        return super().start()

    def _result(self) -> Any:
        sample = [round(time.time(), 3), str(self.value)]
        if self.result_type == "scalar":
            return {"resultType": "scalar", "result": sample}
        series = [{"metric": {"job": f"web-{n}"}, "value": sample} for n in range(self.series)]
        return {"resultType": "vector", "result": series}

    def _make_server(self) -> ThreadingHTTPServer:
        prometheus = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                if url.path != "/api/v1/query":
                    self._answer(404, b"404 page not found\n")
                    return
                prometheus.queries += parse_qs(url.query).get("query", [""])
                if prometheus.mode == "hang":
                    prometheus._release.wait()
                    return
                if prometheus.mode == "garbage":
                    self._answer(200, b"<html>not Prometheus</html>")
                    return
                if prometheus.mode == "error":
                    body = {"status": "error", "errorType": "unavailable", "error": "overloaded"}
                    self._answer(prometheus.error_status, json.dumps(body).encode())
                    return
                body = {"status": "success", "data": prometheus._result()}
                self._answer(200, json.dumps(body).encode())

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        server = QuietHTTPServer(("127.0.0.1", 0), Handler)
        return server
