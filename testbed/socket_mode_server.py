"""A local stand-in for Slack's side of Socket Mode.

One port serves both halves of it: `POST /api/apps.connections.open` (the Web API method an
app-level token calls to get a WebSocket URL) and the WebSocket that URL names. Point a
`slack_sdk.WebClient(base_url=server.base_url)` at it, hand that client to a Socket Mode
client, and the app connects here: it gets a `hello`, then whatever envelopes the test
pushes, and the acks it sends back are recorded for the test to wait on.

Standard library only, like the rest of the test bed: a minimal RFC 6455 server (text,
ping/pong and close frames; the client's frames must be masked, ours are not).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from typing import Any
from urllib.parse import parse_qs, urlsplit

from testbed.service import ThreadedHttpService

Args = dict[str, Any]

APP_ID = "A0ROLLBOT1"
_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_LINK_PATH = "/link/"
OP_CONTINUATION, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA


def _frame(opcode: int, data: bytes) -> bytes:
    """One final, unmasked frame: what a server sends."""
    size = len(data)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, size)
    return head + data


def _close_frame(code: int, reason: str = "") -> bytes:
    # Always with a status code: slack_sdk's builtin client waits for more than two bytes
    # before it parses a frame, so a bare two-byte close frame could sit unread.
    return _frame(OP_CLOSE, struct.pack("!H", code) + reason.encode())


class ProtocolError(Exception):
    """The client broke RFC 6455; the connection is closed with 1002."""


def _read_exactly(stream: BufferedIOBase, size: int) -> bytes:
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return data


def _read_frame(stream: BufferedIOBase) -> tuple[bool, int, bytes]:
    """(fin, opcode, unmasked payload) of the next frame; EOFError once the peer is gone."""
    first, second = _read_exactly(stream, 2)
    size = second & 0x7F
    if size == 126:
        (size,) = struct.unpack("!H", _read_exactly(stream, 2))
    elif size == 127:
        (size,) = struct.unpack("!Q", _read_exactly(stream, 8))
    if not second & 0x80:
        raise ProtocolError("a client frame must be masked")
    mask = _read_exactly(stream, 4)
    data = _read_exactly(stream, size)
    return bool(first & 0x80), first & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


class _Connection:
    """One WebSocket client; `send` may be called from any thread."""

    def __init__(self, server: FakeSocketModeServer, sock: socket.socket, ticket: str) -> None:
        self.server = server
        self.sock = sock
        self.ticket = ticket
        self._send_lock = threading.Lock()
        self.open = True

    def send(self, opcode: int, data: bytes) -> None:
        with self._send_lock:
            if self.open:
                self.sock.sendall(_frame(opcode, data))

    def close(self, code: int, reason: str = "") -> None:
        with self._send_lock:
            if not self.open:
                return
            self.open = False
            try:
                self.sock.sendall(_close_frame(code, reason))
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already gone

    def serve(self, stream: BufferedIOBase) -> None:
        """Read the client's frames until it goes away: pong its pings, record its texts."""
        fragments: list[bytes] = []
        try:
            while True:
                fin, opcode, data = _read_frame(stream)
                if opcode == OP_PING:
                    self.send(OP_PONG, data)
                elif opcode == OP_CLOSE:
                    self.close(1000)
                    return
                elif opcode in (OP_TEXT, OP_BINARY, OP_CONTINUATION):
                    fragments.append(data)
                    if fin:
                        self.server._received(b"".join(fragments).decode("utf-8"))
                        fragments.clear()
        except ProtocolError as err:
            self.close(1002, str(err))
        except (EOFError, OSError):
            pass
        finally:
            self.open = False
            self.server._forget(self)


class FakeSocketModeServer(ThreadedHttpService):
    """Slack's Socket Mode endpoint on 127.0.0.1; use it as a context manager."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._tickets: set[str] = set()
        self._connections: list[_Connection] = []
        self._acks: list[Args] = []
        self._other: list[str] = []
        self._tokens: list[str] = []

    # -- lifecycle -------------------------------------------------------------------------

    def _make_server(self) -> _Server:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        return server

    def _before_stop(self) -> None:
        """Close every WebSocket (1001, going away) before the listening socket."""
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.close(1001, "server stopping")

    @property
    def base_url(self) -> str:
        """For `slack_sdk.WebClient(base_url=...)`: it serves apps.connections.open."""
        return f"http://127.0.0.1:{self.port}/api/"

    # -- what the test does ----------------------------------------------------------------

    def wait_connected(self, timeout: float = 10) -> None:
        """Until a client has completed the handshake (and been sent its hello)."""
        with self._lock:
            if not self._lock.wait_for(lambda: self._connections, timeout):
                raise TimeoutError("no Socket Mode client connected")

    def wait_disconnected(self, timeout: float = 10) -> None:
        """Until no client is connected any more."""
        with self._lock:
            if not self._lock.wait_for(lambda: not self._connections, timeout):
                raise TimeoutError("a Socket Mode client is still connected")

    def push(
        self,
        kind: str,
        payload: Args,
        *,
        accepts_response_payload: bool = False,
        timeout: float = 10,
    ) -> str:
        """Send an envelope to the newest connection, as Slack does; answer its id."""
        self.wait_connected(timeout)
        with self._lock:
            connection = self._connections[-1]
        envelope_id = secrets.token_hex(16)
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        connection.send(OP_TEXT, json.dumps(envelope).encode())
        return envelope_id

    def slash_command(self, payload: Args) -> str:
        """A slash command, whose ack may carry the answer shown to the user."""
        return self.push("slash_commands", payload, accepts_response_payload=True)

    def interactive(self, payload: Args) -> str:
        """A block_actions (or other interactivity) payload."""
        return self.push("interactive", payload)

    def wait_for_ack(self, envelope_id: str, timeout: float = 10) -> Args:
        """The first ack the client sent for `envelope_id`: {"envelope_id", "payload"?}."""

        def found() -> Args | None:
            return next((a for a in self._acks if a.get("envelope_id") == envelope_id), None)

        with self._lock:
            ack = self._lock.wait_for(found, timeout)
        if ack is None:
            raise TimeoutError(f"no ack for envelope {envelope_id} within {timeout}s")
        return ack

    def acks(self) -> list[Args]:
        """Every ack received, in order (an envelope acked twice shows up twice)."""
        with self._lock:
            return list(self._acks)

    def other_messages(self) -> list[str]:
        """Text frames from the client that were not acks."""
        with self._lock:
            return list(self._other)

    def app_tokens(self) -> list[str]:
        """The token of each successful apps.connections.open call, in order."""
        with self._lock:
            return list(self._tokens)

    def connection_count(self) -> int:
        with self._lock:
            return len(self._connections)

    # -- the server's side -----------------------------------------------------------------

    def _open_connection(self, token: str | None) -> tuple[int, Args]:
        if not token:
            return 200, {"ok": False, "error": "not_authed"}
        if token.startswith("xox"):
            return 200, {"ok": False, "error": "not_allowed_token_type"}
        if not token.startswith("xapp-"):
            return 200, {"ok": False, "error": "invalid_auth"}
        ticket = secrets.token_hex(16)
        with self._lock:
            self._tickets.add(ticket)
            self._tokens.append(token)
        url = f"ws://127.0.0.1:{self.port}{_LINK_PATH}?ticket={ticket}&app_id={APP_ID}"
        return 200, {"ok": True, "url": url}

    def _take_ticket(self, ticket: str) -> bool:
        """A ticket opens one connection, like the URLs Slack hands out."""
        with self._lock:
            if ticket in self._tickets:
                self._tickets.discard(ticket)
                return True
            return False

    def _hello(self) -> Args:
        with self._lock:
            count = len(self._connections) + 1
        return {
            "type": "hello",
            "num_connections": count,
            "debug_info": {
                "host": "applink-testbed",
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": APP_ID},
        }

    def _register(self, connection: _Connection) -> None:
        with self._lock:
            self._connections.append(connection)
            self._lock.notify_all()

    def _forget(self, connection: _Connection) -> None:
        with self._lock:
            if connection in self._connections:
                self._connections.remove(connection)
            self._lock.notify_all()

    def _received(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            message = None
        with self._lock:
            if isinstance(message, dict) and "envelope_id" in message:
                self._acks.append(message)
            else:
                self._other.append(text)
            self._lock.notify_all()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeSocketModeServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8") if length else ""
        parts = urlsplit(self.path)
        if parts.path != "/api/apps.connections.open":
            self._reply(200, {"ok": False, "error": "unknown_method"})
            return
        token: str | None = None
        authorization = self.headers.get("Authorization") or ""
        if authorization.startswith("Bearer "):
            token = authorization.removeprefix("Bearer ").strip()
        else:
            form = parse_qs(body) | parse_qs(parts.query)
            token = form.get("token", [None])[0]
        self._reply(*self.server.fake._open_connection(token))

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        ticket = parse_qs(parts.query).get("ticket", [""])[0]
        key = self.headers.get("Sec-WebSocket-Key")
        upgrade = (self.headers.get("Upgrade") or "").lower() == "websocket"
        if parts.path != _LINK_PATH or not upgrade or not key:
            self._reply(400, {"ok": False, "error": "not a WebSocket handshake"})
            return
        fake = self.server.fake
        if not fake._take_ticket(ticket):
            self._reply(401, {"ok": False, "error": "invalid_ticket"})
            return
        accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        connection = _Connection(fake, self.connection, ticket)
        # The hello goes out before the connection is known to push(): it comes first.
        connection.send(OP_TEXT, json.dumps(fake._hello()).encode())
        fake._register(connection)
        connection.serve(self.rfile)
        self.close_connection = True

    def _reply(self, status: int, payload: Args) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: acks and app_tokens() are the log a test reads."""
