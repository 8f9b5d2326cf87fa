"""`rollbot serve` and `rollbot worker`: the Bolt app over HTTP (signed requests)
or Socket Mode, and workers running the queue, in one process or apart.

`RollbotServer` is what the commands run and what the end-to-end tests and the
demo start in-process: the workers (and Socket Mode) run as threads of the calling
process, HTTP is answered by gunicorn's processes (`handlers/wsgi.py`), forked
from it with the listening socket it bound.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from http import HTTPStatus
from pathlib import Path
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot import metrics
from bot.config import RollbotConfig
from bot.history import rollback_targets
from bot.notify.delivery import ChangeDeliverer
from bot.notify.destinations import destinations_from_environment
from bot.outbox import Outbox, OutboxSink
from bot.pipeline import Worker, WorkerKube
from bot.pipeline.liveness import Liveness
from bot.policy import named_groups, protected_where
from bot.records import RollbackRecord
from bot.redis_connection import answer_within
from bot.runtime import Runtime, StartupError, forget_inherited_connections, not_ready
from bot.store import JobQueue, RollbackStore, StoreUnavailable
from bot.strategies import HelmSettings
from handlers.app import create_app, slack_client
from handlers.delivery import OutboxDeliverer
from handlers.groups import SlackGroups
from handlers.people import SlackPeople
from handlers.services import Services
from handlers.slack_http import Malformed, read_body, unsigned
from handlers.thread import SlackThreadSink
from handlers.wsgi import Environ, StartResponse, WsgiApp, answer, limit_body, start_master

log = logging.getLogger("rollbot.server")

#: How long an HTTP process waits for one Redis call. An ack makes one to three,
#: and Slack gives it 3 s; on a live Redis each takes well under a millisecond.
ACK_REDIS_TIMEOUT_SECONDS = 0.8


@dataclass
class RollbotServer:
    config: RollbotConfig
    store: RollbackStore
    kube: WorkerKube
    token: str
    signing_secret: str
    slack_api_url: str | None = None
    workers: int = 1
    #: The helm binary and the kubeconfig it uses, for services with strategy helm.
    helm: HelmSettings | None = None
    #: Whether Slack's requests arrive over HTTP (False in Socket Mode: the HTTP port
    #: then serves only /healthz, /readyz and /metrics).
    http_events: bool = True
    #: gunicorn worker processes answering HTTP: Bolt's CPU per request is what
    #: bounds acks under a burst, and one process uses one core.
    http_processes: int = 1
    app: App = field(init=False)
    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    listener: socket.socket | None = None
    #: The gunicorn master's pid, while HTTP is served.
    master: int | None = None

    def __post_init__(self) -> None:
        self.app, self.groups = self._slack_app()
        # The pipeline's messages wait in the outbox until Slack takes them; live rollout
        # progress goes straight to the thread.
        self.outbox = Outbox(self.store.redis)
        self.sink = OutboxSink(self.outbox, live=SlackThreadSink(self.app.client))
        # Made before HTTP is forked, so that the processes answering /readyz see the
        # workers' beats: one slot per worker, and the last for the outbox's deliverer.
        self.liveness = Liveness(self.workers + 1)
        self.beating = [*(f"worker-{n}" for n in range(self.workers)), "outbox"]

    def _slack_app(self) -> tuple[App, SlackGroups]:
        """The Bolt app, and the user groups its listeners read (`read_groups_ahead`)."""
        client = slack_client(self.token, self.slack_api_url)
        groups = SlackGroups(client)
        services = Services(
            self.config,
            self.store,
            JobQueue(self.store.redis),
            groups_of=groups,
            targets=partial(rollback_targets, self.kube, self.config),
        )
        app = create_app(
            services, token=self.token, signing_secret=self.signing_secret, client=client
        )
        return app, groups

    def read_groups_ahead(self, groups: SlackGroups | None = None) -> None:
        """Read the user groups the config names now and keep them fresh, in a thread
        (`SlackGroups.keep_fresh`), so that a click's ack does not wait for Slack: in
        each HTTP process for its own app, and for Socket Mode's (this process's). Never
        before HTTP is forked (a thread of ours must not exist at the fork)."""
        thread = (groups or self.groups).keep_fresh(named_groups(self.config), self.stop_event)
        if thread is not None:
            self.threads.append(thread)  # joined by `stop`; HTTP may not be forked after it

    @property
    def url(self) -> str:
        assert self.listener is not None
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/slack/events"

    def _wsgi(self) -> WsgiApp:
        """The app one HTTP process serves, built in that process after the fork: its
        own Bolt App (whose thread pool a fork would leave without threads) and no
        connection of the parent's."""
        forget_inherited_connections(self.kube)
        # Slack gives an ack 3 s: a stalled Redis (stopped, partitioned) must turn into
        # "the store is unavailable" well within it, not into no answer at all.
        answer_within(self.store.redis, ACK_REDIS_TIMEOUT_SECONDS)
        slack_app, groups = self._slack_app()
        if self.http_events:  # else Slack's requests come by Socket Mode, not here
            self.read_groups_ahead(groups)
        bolt = SlackRequestHandler(slack_app)  # what is not Slack's POST: Bolt's 404
        # What was built so far (the packages, the app) lives as long as the process:
        # frozen, the collector no longer walks it in the middle of a request (a
        # collection's pause: up to 7 ms before, 0.2 ms after, in bench/ack_latency.py).
        gc.freeze()

        def application(environ: Environ, start_response: StartResponse) -> Any:
            path = environ.get("PATH_INFO")
            if path == "/healthz":  # the process answers: nothing else is checked
                return answer(start_response, "200 OK", "ok\n")
            if path == "/readyz":
                reason = not_ready(self.store, self.kube, self.config) or self.pipeline_problem()
                if reason is not None:
                    return answer(start_response, "503 Service Unavailable", reason + "\n")
                return answer(start_response, "200 OK", "ok\n")
            if path == "/metrics":
                try:
                    records: list[RollbackRecord] | None = self.store.recent(metrics.WINDOW)
                    counters: dict[str, float] | None = self.store.counters()
                except StoreUnavailable:
                    records, counters = None, None
                text = metrics.render(records, counters, self.config.environment_of).encode()
                start_response("200 OK", [("Content-Type", metrics.CONTENT_TYPE)])
                return [text]
            if not self.http_events:
                return answer(
                    start_response,
                    "404 Not Found",
                    "Socket Mode: Slack's events arrive over the WebSocket, not here\n",
                )
            if path == "/slack/events" and environ.get("REQUEST_METHOD") == "POST":
                request = self._checked(environ)
                if isinstance(request, tuple):
                    return answer(start_response, *request)
                return _answer_bolt(start_response, slack_app.dispatch(request))
            return bolt(environ, start_response)

        return limit_body(application)

    def _checked(self, environ: Environ) -> BoltRequest | tuple[str, str]:
        """The request for Bolt, or why it is refused before Bolt sees it (see
        handlers/slack_http.py): (status, text).

        Bolt is given the body as parsed here, verified, as it is given a Socket Mode
        request (which its connection verifies): it neither parses the body again nor
        checks the signature a second time."""
        body = environ["wsgi.input"].read()
        timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", "")
        signature = environ.get("HTTP_X_SLACK_SIGNATURE", "")
        if unsigned(body, timestamp, signature, self.signing_secret):
            return "401 Unauthorized", "invalid request\n"
        content_type = str(environ.get("CONTENT_TYPE", "")).split(";")[0].strip().lower()
        try:
            fields = read_body(body, content_type)
        except Malformed as problem:
            log.warning("refused a signed request: %s", problem)
            return "400 Bad Request", f"malformed request: {problem}\n"
        headers: dict[str, str | Sequence[str]] = {
            name[5:].lower().replace("_", "-"): str(value)
            for name, value in environ.items()
            if name.startswith("HTTP_")
        }
        if content_type:
            headers["content-type"] = content_type
        return BoltRequest(
            body=fields,
            query=str(environ.get("QUERY_STRING", "")),
            headers=headers,
            mode="socket_mode",
        )

    def pipeline_problem(self) -> str | None:
        """Why this process's workers or its messages are not getting through: a
        worker or the deliverer stopped or stuck, or Slack not taking messages."""
        if not self.liveness.started():
            return None  # no workers here (`rollbot serve --no-worker`)
        stuck = self.config.rollout_timeout_seconds * 2 + 300
        if problem := self.liveness.problem(self.beating, stale=90, stuck=stuck):
            return problem
        if (age := self.outbox.oldest_age()) > self.config.outbox_stale_seconds:
            return f"slack: {self.outbox.depth()} message(s) waiting for {age:.0f}s"
        return None

    def start_http(self, port: int = 3000, host: str = "127.0.0.1") -> None:
        """Bind `host:port` here (0: any free port, see `url`) and fork gunicorn's
        master to answer on it. Before the workers, never after: a fork copies the
        locks the workers' threads hold at that instant (the apiserver's and Redis's
        connection pools), held for good in the child, whose /readyz then hangs."""
        if self.threads:
            raise RuntimeError("start HTTP before the workers: a fork after them can deadlock")
        listener = socket.create_server((host, port), backlog=128)
        listener.set_inheritable(True)
        self.listener = listener
        self.master = start_master(
            listener, self._wsgi, processes=self.http_processes, name="rollbot-http"
        )

    def http_pids(self) -> list[int]:
        """The processes answering HTTP: gunicorn's master and its workers."""
        if self.master is None:
            return []
        children = Path(f"/proc/{self.master}/task/{self.master}/children")
        try:
            return [self.master, *map(int, children.read_text().split())]
        except OSError:
            return [self.master]

    def start_workers(self) -> None:
        for n in range(self.workers):
            worker = Worker(
                self.store,
                JobQueue(self.store.redis, heartbeat_ttl=self.config.worker_lease_seconds),
                self.kube,
                self.config,
                self.sink,
                helm=self.helm,
                names_of=SlackPeople(self.app.client),
                liveness=(self.liveness, n),
            )
            self._spawn(f"worker-{n}", lambda w=worker: w.run(self.stop_event))
        deliverer = OutboxDeliverer(
            self.outbox,
            self.store,
            self.app.client,
            protected=partial(protected_where, self.config),
            join_channels=self.config.join_public_channels,
        )
        slot = self.workers
        self._spawn(
            "outbox", lambda: deliverer.run(self.stop_event, lambda: self.liveness.beat(slot))
        )
        # Change events (PagerDuty, webhooks, a status page), when the config names any.
        if self.config.notify.any:
            destinations = destinations_from_environment(self.config, os.environ, self.store.redis)
            changes = ChangeDeliverer(self.store, self.config, destinations)
            self._spawn("changes", lambda: changes.run(self.stop_event))

    def _spawn(self, name: str, target: Any) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def http_failed(self) -> bool:
        """Whether gunicorn's master has exited (it then no longer answers)."""
        if self.master is None:
            return False
        try:
            pid, _ = os.waitpid(self.master, os.WNOHANG)
        except ChildProcessError:
            return True
        if pid:
            self.master = None
            return True
        return False

    def stop(self) -> None:
        self.stop_event.set()
        if self.master is not None:
            try:
                os.kill(self.master, signal.SIGTERM)  # gunicorn stops its workers first
                os.waitpid(self.master, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.master = None
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        for thread in self.threads:
            thread.join(timeout=5)
        self.threads.clear()


def _answer_bolt(start_response: StartResponse, response: BoltResponse) -> list[bytes]:
    body = response.body.encode()
    headers = [
        (name, value)
        for name, values in response.headers.items()
        if name.lower() != "content-length"
        for value in values
    ]
    headers.append(("content-length", str(len(body))))
    start_response(f"{response.status} {HTTPStatus(response.status).phrase}", headers)
    return [body]


def _http_or_fail(server: RollbotServer, port: int) -> None:
    try:
        server.start_http(port, host=os.environ.get("ROLLBOT_BIND", "0.0.0.0"))
    except OSError as err:
        raise StartupError(f"cannot listen on port {port}: {err.strerror or err}") from err


def _until_stopped(server: RollbotServer) -> None:
    """Wait for SIGTERM or SIGINT, then stop what was started (the HTTP processes,
    the workers): a stopped rollbot leaves nothing running behind it."""

    def stop(signum: int, _frame: object) -> None:
        server.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while not server.stop_event.wait(1):
            if server.http_failed():
                raise StartupError("the HTTP server stopped (see its log above)", exit_code=1)
    finally:
        server.stop()


def work_from_environment(runtime: Runtime, port: int = 0) -> None:
    """`rollbot worker`: jobs only; with a port, also the probes and /metrics (no Slack
    events arrive there), so a worker-only pod can be probed like the bot's."""
    server = RollbotServer(
        runtime.config,
        runtime.store,
        runtime.kube,
        os.environ.get("SLACK_BOT_TOKEN", ""),
        "unused",
        slack_api_url=os.environ.get("SLACK_API_URL"),
        helm=runtime.helm,
        http_events=False,
    )
    if port:
        _http_or_fail(server, port)
        print(f"rollbot worker; /healthz, /readyz, /metrics on :{port}", flush=True)
    server.start_workers()
    _until_stopped(server)


@dataclass(frozen=True)
class SlackSettings:
    """What `rollbot serve` needs from Slack; Socket Mode when there is an app token."""

    token: str
    signing_secret: str
    app_token: str

    @classmethod
    def from_environment(cls) -> SlackSettings:
        settings = cls(
            os.environ.get("SLACK_BOT_TOKEN", ""),
            os.environ.get("SLACK_SIGNING_SECRET", ""),
            os.environ.get("SLACK_APP_TOKEN", ""),
        )
        if not settings.token or not (settings.signing_secret or settings.app_token):
            raise StartupError(
                "needs SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET "
                "(HTTP mode) or SLACK_APP_TOKEN (Socket Mode)"
            )
        return settings


def serve_from_environment(
    slack: SlackSettings,
    runtime: Runtime,
    port: int,
    with_worker: bool,
    http_processes: int = 1,
) -> None:
    """`rollbot serve`: HTTP mode, or Socket Mode when there is an app token (the
    HTTP port then answers the probes and /metrics only)."""
    server = RollbotServer(
        runtime.config,
        runtime.store,
        runtime.kube,
        slack.token,
        slack.signing_secret or "unused",
        slack_api_url=os.environ.get("SLACK_API_URL"),
        helm=runtime.helm,
        http_events=not slack.app_token,
        http_processes=http_processes,
    )
    # HTTP first: gunicorn's master is forked before any thread of ours exists.
    _http_or_fail(server, port)
    if with_worker:
        server.start_workers()
    if not slack.app_token:
        print(f"rollbot listening on :{port} (/slack/events, /healthz)", flush=True)
        _until_stopped(server)
        return
    from slack_bolt.adapter.socket_mode import SocketModeHandler
    from slack_sdk.errors import SlackApiError, SlackClientError

    server.read_groups_ahead()
    handler = SocketModeHandler(server.app, slack.app_token)
    try:
        handler.connect()  # type: ignore[no-untyped-call]
    except (SlackApiError, SlackClientError, OSError) as err:
        server.stop()
        raise StartupError(f"Socket Mode could not connect to Slack: {err}", exit_code=3) from err
    print(f"rollbot in Socket Mode; /healthz, /readyz, /metrics on :{port}", flush=True)
    try:
        _until_stopped(server)
    finally:
        handler.close()  # type: ignore[no-untyped-call]
