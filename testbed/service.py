"""What every local server of the test bed shares: start, stop, and `with`."""

from __future__ import annotations

import sys
import threading
from http.server import ThreadingHTTPServer
from socketserver import TCPServer
from types import TracebackType
from typing import Any, Self


class LocalService:
    """A server on loopback that a test starts and always stops (`with` does both)."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class QuietHTTPServer(ThreadingHTTPServer):
    """A client that hangs up first (a check that timed out) is not an error here."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class ThreadedHttpService(LocalService):
    """An HTTP server on a free loopback port, served from a background thread."""

    _server: TCPServer | None = None
    _thread: threading.Thread | None = None

    def _make_server(self) -> TCPServer:
        """The server, bound to 127.0.0.1 on port 0 (the OS picks a free one)."""
        raise NotImplementedError

    def _before_stop(self) -> None:
        """Close what the server holds open besides its socket (e.g. WebSockets)."""

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running: call start() first")
        return int(self._server.server_address[1])

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        server = self._make_server()
        # A short poll keeps stop() quick; every test pays it once.
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        thread.start()
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._before_stop()
        server.shutdown()
        server.server_close()
        thread.join()
        self._server = self._thread = None
