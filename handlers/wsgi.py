"""The HTTP side of `rollbot serve` and `rollbot worker --port`: gunicorn, embedded.

Why gunicorn: it is the WSGI server most Python services run in production, kept
up by its maintainers, and it brings what `wsgiref` plus a hand-rolled pre-fork
lacked: a master process that starts, watches and restarts a bounded number of
worker processes (`--http-processes`), each with a bounded pool of threads, and
connections that wait for their bytes in a selector rather than in a thread.
Embedded as a `BaseApplication`, it stays one command with no config file.

What gunicorn leaves to its host (it expects a buffering proxy in front) is added
here, so a pod faced with Slack directly holds up on its own:

* **the body size**, refused from the `Content-Length` before a byte of the body
  is read (413), capped while reading a chunked one, and read whole within
  BODY_TIMEOUT_SECONDS (408) before the app sees it;
* **the request is read in the worker's poller**, not in a thread: gunicorn's
  gthread worker hands a new connection to a pool thread at once (to wait up to
  5 s for data, then read the head with no time limit), so idle or trickling
  sockets would hold every thread and queue real requests behind them. Here a
  connection is answered only once its head and a Slack-sized body
  (POLLER_BODY_BYTES) have arrived, and is closed if that takes over
  IDLE_TIMEOUT_SECONDS; a larger or chunked body is read by the thread within
  BODY_TIMEOUT_SECONDS, and every later read or write times out too
  (`SO_RCVTIMEO`/`SO_SNDTIMEO`). Connections are not kept alive: each request is a
  new connection and goes through that check.

**A request that has arrived whole is answered on the worker's loop**, the one
that read it, with no thread: handing it to a pool thread and its answer back
(through gunicorn's pipe) cost two switches of the interpreter's lock per
request, and under load every one of them waited for whichever of the process's
threads held it. Answered in place, under the ack bench's 50 requests in flight,
the command's p99 went from 71–96 to 55–74 ms and the click's from 66–102 to
59–87 ms, for some throughput (bench/README.md, "Answered on the loop"). It is
safe because nothing rollbot does before its ack waits on anything but Redis
(with its timeouts): every call to Slack is made after the ack, in Bolt's pool
(tests/integration/faults/test_slow_slack.py), and user groups are read ahead
(`handlers/groups.py`). A body larger than POLLER_BODY_BYTES, or sent chunked, is
still read by a pool thread (THREADS), within BODY_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import io
import logging
import os
import re
import selectors
import signal
import socket
import struct
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from functools import partial
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import TConn, ThreadWorker

log = logging.getLogger("rollbot.http")

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]

#: Slack's largest payloads (a modal's view state) are tens of kilobytes.
MAX_BODY_BYTES = 1 << 20
#: A connection whose request head has not arrived after this long is closed.
IDLE_TIMEOUT_SECONDS = 5
#: A request body still incomplete after this long is answered 408.
BODY_TIMEOUT_SECONDS = 10
#: One read or write on a connection that stalls for this long ends it.
IO_TIMEOUT_SECONDS = 10
#: A head (request line and headers) larger than this goes to gunicorn's parser,
#: whose limits answer it.
MAX_HEAD_BYTES = 64 * 1024
#: A body declared up to this size is read in the poller before a thread is given
#: (Slack's commands are ~1 KB, clicks carry their message: tens of KB); a larger one
#: is read by the thread.
POLLER_BODY_BYTES = 128 * 1024
#: What the poller of one process holds at most across its waiting connections; past
#: it, a connection goes to a thread with what it has (read on there, in time).
POLLER_BUDGET_BYTES = 16 * 1024 * 1024
#: What a closing connection may still send before it is closed anyway (gunicorn's
#: own cap for its linger).
LINGER_BYTES = 64 * 1024
#: Threads per HTTP process, for the requests not answered on the loop: a body
#: larger than POLLER_BODY_BYTES or sent chunked, read within BODY_TIMEOUT_SECONDS.
THREADS = 2


def answer(start_response: StartResponse, status: str, text: str) -> list[bytes]:
    body = text.encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _read_body(environ: Environ, limit: int) -> bytes | None:
    """The body, at most `limit` bytes, read within BODY_TIMEOUT_SECONDS; None if it
    is larger. Raises TimeoutError when the client is too slow."""
    stream = environ["wsgi.input"]
    connection: socket.socket | None = environ.get("gunicorn.socket")
    declared = environ.get("CONTENT_LENGTH") or ""
    wanted = int(declared) if declared else limit + 1
    deadline = time.monotonic() + BODY_TIMEOUT_SECONDS
    chunks: list[bytes] = []
    received = 0
    timed = False
    try:
        while received < wanted:
            # The first read finds a Slack-sized body already read with the head (no
            # wait, so no timeout to set: each settimeout is two syscalls that give up
            # the GIL); a read that waits is bounded by SO_RCVTIMEO, later ones by the
            # deadline.
            if connection is not None and chunks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("request body too slow")
                connection.settimeout(remaining)
                timed = True
            chunk = stream.read(min(64 * 1024, wanted - received))
            if not chunk:
                break
            chunks.append(chunk)
            received += len(chunk)
    finally:
        if timed and connection is not None:
            connection.settimeout(None)
    return None if received > limit else b"".join(chunks)


def limit_body(app: WsgiApp, limit: int = MAX_BODY_BYTES) -> WsgiApp:
    """`app`, with request bodies over `limit` bytes refused (413) before they are
    read, and the body read whole, in time (408), before `app` runs."""

    def limited(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        declared = environ.get("CONTENT_LENGTH") or ""
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        length = _length(declared.encode(errors="replace")) if declared else 0
        if length is None:
            return answer(start_response, "400 Bad Request", "bad Content-Length\n")
        if length > limit:
            return answer(start_response, "413 Content Too Large", "body too large\n")
        if declared or chunked:
            try:
                body = _read_body(environ, limit)
            except (TimeoutError, BlockingIOError):
                return answer(start_response, "408 Request Timeout", "body too slow\n")
            if body is None:
                return answer(start_response, "413 Content Too Large", "body too large\n")
            environ = {
                **environ,
                "wsgi.input": io.BytesIO(body),
                "CONTENT_LENGTH": str(len(body)),
            }
        return app(environ, start_response)

    return limited


class RollbotHttpWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker, with the request head read in its poller: a
    connection gets a pool thread once its head has arrived (module docstring)."""

    def enqueue_req(self, conn: TConn) -> None:
        if conn.initialized:
            super().enqueue_req(conn)
            return
        timeout = struct.pack("ll", IO_TIMEOUT_SECONDS, 0)
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeout)
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeout)
        conn.sock.setblocking(False)
        conn.head = b""
        # gunicorn's own list of connections waiting for data, closed by its timer
        # (ordered by deadline: every entry gets now + the same timeout).
        conn.timeout = time.monotonic() + IDLE_TIMEOUT_SECONDS
        self.pending_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._read_head, conn))

    def _read_head(self, conn: TConn, _sock: object) -> None:
        try:
            data = conn.sock.recv(MAX_HEAD_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            conn.head += data
            if not _arrived(conn.head) and not self._over_budget(conn):
                return  # more to come, before the connection's deadline
        self.poller.unregister(conn.sock)
        self.pending_conns.remove(conn)
        if not data:  # closed by the client before a whole head
            self.nr_conns -= 1
            conn.close()
            return
        conn.init()  # the HTTP/1 parser, which reads what arrived first
        conn.parser.unreader.unread(conn.head)
        conn.data_ready = True
        if _whole(conn.head):
            self._answer_here(conn)
        else:
            super().enqueue_req(conn)

    def _answer_here(self, conn: TConn) -> None:
        """The request, arrived whole, answered on this loop (module docstring); the
        connection then closed as a pool thread's would be."""
        # The master replaces a worker not heard from in `timeout`: a batch of requests
        # that each wait out their Redis time-outs must not look like a stuck loop.
        self.notify()
        done: Future[Any] = Future()
        done.set_result(self.handle(conn))  # gunicorn's: it answers its own errors
        self.finish_request(conn, done)

    def _over_budget(self, conn: TConn) -> bool:
        """Whether the waiting connections hold more than POLLER_BUDGET_BYTES (counted
        only once this one holds more than a head usually is)."""
        if len(conn.head) < 16 * 1024:
            return False
        waiting = sum(len(getattr(c, "head", b"")) for c in self.pending_conns)
        return waiting > POLLER_BUDGET_BYTES

    def finish_request(self, conn: TConn, fs: Future[Any]) -> None:
        """gunicorn closes a connection it does not keep alive with a linger: it half-
        closes, then waits up to 2 s for the client's FIN, so that unread request bytes
        cannot make the kernel reset the connection and cut the answer short. It does so
        on the worker's main loop, the one that accepts, reads heads and dispatches: with
        every connection closed after its request (keepalive 0), a profile under the
        bench's 50 concurrent requests found that loop blocked ~1.5 ms per connection.
        A request read to its end leaves nothing to reset on: closed at once. Anything
        else (a body refused unread, 413; bytes sent after the request) lingers in the
        poller, not on the loop: a client that never sends its FIN would have held the
        loop, and every ack behind it, for 2 s a connection."""
        closing = not fs.cancelled() and fs.exception() is None and fs.result() is False
        if not closing:
            super().finish_request(conn, fs)
        elif _nothing_unread(conn.sock):
            self.nr_conns -= 1
            conn.close()
        else:
            self._linger(conn)

    def _linger(self, conn: TConn) -> None:
        """Half-close, then read what the client still sends (up to LINGER_BYTES) until
        its FIN or IDLE_TIMEOUT_SECONDS, in the poller; then close."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.nr_conns -= 1
            conn.close()
            return
        conn.sock.setblocking(False)
        conn.drained = 0
        # gunicorn's waiting list, closed by its timer (the same timeout keeps it ordered).
        conn.timeout = time.monotonic() + IDLE_TIMEOUT_SECONDS
        self.pending_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._drain, conn))

    def _drain(self, conn: TConn, _sock: object) -> None:
        try:
            data = conn.sock.recv(64 * 1024)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        conn.drained += len(data)
        if data and conn.drained < LINGER_BYTES:
            return
        self.poller.unregister(conn.sock)
        self.pending_conns.remove(conn)
        self.nr_conns -= 1
        conn.close()


def _arrived(received: bytes) -> bool:
    """Whether the poller has read what it waits for: the head, and the body when its
    declared length is at most POLLER_BODY_BYTES. A head too large, a body sent
    chunked, larger or with a length that is no number go to the thread as they are
    (gunicorn's parser and `limit_body` answer them)."""
    end = received.find(b"\r\n\r\n")
    if end < 0:
        return len(received) >= MAX_HEAD_BYTES
    length = _body_length(received[:end])
    if length is None or length > POLLER_BODY_BYTES:
        return True
    return len(received) >= end + 4 + length


#: The paths answered on the loop: Slack's requests (whose acks the loop is for) and
#: the liveness probe. /readyz asks Redis and Kubernetes, and /metrics reads a
#: thousand records: a pool thread answers those, so they never hold an ack up.
ON_THE_LOOP = (b"/slack/events", b"/healthz")


def _whole(received: bytes) -> bool:
    """Whether `received` holds a whole request of at most POLLER_BODY_BYTES of body
    for a path ON_THE_LOOP: a head with no Transfer-Encoding, then the body its one
    Content-Length declares (none without one), all there. Only such a request is
    answered on the loop: its parsing can never wait for a byte."""
    end = received.find(b"\r\n\r\n")
    if end < 0:
        return False
    head = received[:end]
    target = head.split(b"\r\n", 1)[0].split(b" ")
    if len(target) != 3 or target[1].split(b"?", 1)[0] not in ON_THE_LOOP:
        return False
    if b"transfer-encoding:" in head.lower():
        return False  # chunked, or a length declared twice over: a thread reads it, in time
    length = _body_length(head)
    if length is None or length > POLLER_BODY_BYTES:
        return False
    return len(received) >= end + 4 + length


def _body_length(head: bytes) -> int | None:
    """The body's length a head declares (0 with no Content-Length); None when it
    declares it more than once or with something that is not a number."""
    declared = [
        line.split(b":", 1)[1].strip()
        for line in head.split(b"\r\n")[1:]
        if line[:15].lower() == b"content-length:"
    ]
    if not declared:
        return 0
    return _length(declared[0]) if len(declared) == 1 else None


def _length(declared: bytes) -> int | None:
    """A Content-Length's value; None unless it is ASCII digits, at most 18 of them
    (Python's int() refuses a string of over 4300 digits with a ValueError, which on
    the loop would end the process)."""
    return int(declared) if re.fullmatch(rb"[0-9]{1,18}", declared) else None


def _nothing_unread(sock: socket.socket) -> bool:
    try:
        return not sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True  # nothing there, the client still open: a FIN, not a reset
    except OSError:
        return True  # gone already


class _StalledClientFilter(logging.Filter):
    """A read or write that timed out is a slow client, not a server error: one line,
    not gunicorn's traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, (BlockingIOError, TimeoutError)):
            log.info("closed a connection that stalled for %ss", IO_TIMEOUT_SECONDS)
            return False
        return True


class _Embedded(BaseApplication):  # type: ignore[misc]
    """gunicorn with its settings from here, serving `load()`'s app in each worker."""

    def __init__(self, load: Callable[[], WsgiApp], options: dict[str, Any]) -> None:
        self._load, self._options = load, options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> WsgiApp:
        return self._load()


def _die_with_parent() -> None:
    """The master follows the process that started it, even one killed with SIGKILL."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: a stopped parent still stops it
        pass


def start_master(
    listener: socket.socket, load: Callable[[], WsgiApp], *, processes: int, name: str
) -> int:
    """Fork gunicorn's master to serve `load()`'s app on `listener` with `processes`
    workers; its pid. Each worker calls `load` after it is forked, so the app (and
    its thread pools and connections) is its own."""
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    status = 1
    try:
        _die_with_parent()
        if os.getppid() != parent:  # the parent died before prctl took hold
            os._exit(0)
        logging.getLogger("gunicorn.error").addFilter(_StalledClientFilter())
        _Embedded(
            load,
            {
                "bind": [f"fd://{listener.fileno()}"],
                "workers": processes,
                "worker_class": RollbotHttpWorker,
                "threads": THREADS,
                "keepalive": 0,  # every request on a new connection: see above
                "timeout": 30,  # a worker whose main loop is stuck this long is replaced
                "graceful_timeout": 5,
                "proc_name": name,
                "loglevel": "warning",
                "accesslog": None,
                "control_socket_disable": True,
                "preload_app": False,
            },
        ).run()
        status = 0
    except SystemExit as stop:  # the master's halt, and every worker's exit
        status = stop.code if isinstance(stop.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        # No atexit and no destructors of objects inherited from the parent (an
        # embedded Redis would be shut down by its client's).
        os._exit(status)
