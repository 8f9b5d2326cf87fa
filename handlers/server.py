"""`rollbot serve` and `rollbot worker`: the Bolt app over HTTP (signed requests)
or Socket Mode, and workers running the queue, in one process or apart.

`RollbotServer` is what the command runs and what the end-to-end tests and the
demo start in-process.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import redis
import urllib3
from kubernetes.client.exceptions import ApiException
from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot import metrics
from bot.config import RollbotConfig
from bot.kube import translate
from bot.pipeline import Worker, WorkerKube
from bot.records import RollbackRecord
from bot.store import JobQueue, RollbackStore, StoreUnavailable
from bot.strategies import HelmSettings
from handlers.app import create_app, slack_client
from handlers.groups import SlackGroups
from handlers.services import Services
from handlers.thread import SlackThreadSink

log = logging.getLogger("rollbot.server")


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops connections when Slack sends a burst:
    # the ack benchmark saw 2-9 % of 50 concurrent requests reset or delayed by seconds.
    request_queue_size = 128

    def get_request(self) -> tuple[Any, Any]:
        # With several processes on one socket, every one of them wakes for a new
        # connection and only one gets it: the listening socket is non-blocking then
        # (a process that loses the race goes back to waiting, and can still shut
        # down), while the connection it does accept is served blocking, as usual.
        connection, address = self.socket.accept()
        connection.setblocking(True)
        return connection, address


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug(format, *args)


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
    #: Processes answering HTTP on the one listening socket (pre-forked by start_http,
    #: which must then run before any other thread starts): Bolt's CPU per request is
    #: what bounds acks under a burst, and one process uses one core.
    http_processes: int = 1
    children: list[int] = field(default_factory=list)
    app: App = field(init=False)
    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    http: WSGIServer | None = None

    def __post_init__(self) -> None:
        client = slack_client(self.token, self.slack_api_url)
        self.services = Services(
            self.config, self.store, JobQueue(self.store.redis), groups_of=SlackGroups(client)
        )
        self.app = create_app(
            self.services, token=self.token, signing_secret=self.signing_secret, client=client
        )
        self.sink = SlackThreadSink(self.app.client)

    @property
    def url(self) -> str:
        assert self.http is not None
        return f"http://127.0.0.1:{self.http.server_port}/slack/events"

    def _wsgi(self) -> Any:
        bolt = SlackRequestHandler(self.app)

        def not_ready() -> str | None:
            """Why this replica cannot do its work, if it cannot: Redis or Kubernetes down."""
            try:
                self.store.redis.ping()
            except redis.RedisError as err:
                return f"redis: {err}"
            # The cheapest call the chart's Role allows; fakes without the API are not checked.
            apps = getattr(self.kube, "apps", None)
            if apps is None:
                return None
            namespace = (self.config.allowed_namespaces or [self.config.default_namespace])[0]
            try:
                apps.list_namespaced_deployment(
                    namespace, limit=1, _request_timeout=3, _preload_content=False
                )
            except (ApiException, urllib3.exceptions.HTTPError, OSError) as err:
                return f"kubernetes: {translate(err)}"
            return None

        def answer(start_response: Any, status: str, text: str, content_type: str) -> list[bytes]:
            start_response(status, [("Content-Type", content_type)])
            return [text.encode()]

        def application(environ: dict[str, Any], start_response: Any) -> Any:
            path = environ.get("PATH_INFO")
            if path == "/healthz":  # the process answers: nothing else is checked
                return answer(start_response, "200 OK", "ok\n", "text/plain")
            if path == "/readyz":
                reason = not_ready()
                if reason is not None:
                    return answer(
                        start_response, "503 Service Unavailable", reason + "\n", "text/plain"
                    )
                return answer(start_response, "200 OK", "ok\n", "text/plain")
            if path == "/metrics":
                try:
                    records: list[RollbackRecord] | None = self.store.recent(metrics.WINDOW)
                except StoreUnavailable:
                    records = None
                return answer(
                    start_response, "200 OK", metrics.render(records), metrics.CONTENT_TYPE
                )
            if not self.http_events:
                return answer(
                    start_response,
                    "404 Not Found",
                    "Socket Mode: Slack's events arrive over the WebSocket, not here\n",
                    "text/plain",
                )
            return bolt(environ, start_response)

        return application

    def start_http(self, port: int = 3000, host: str = "127.0.0.1") -> None:
        self.http = make_server(
            host, port, self._wsgi(), server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
        )
        if self.http_processes > 1:
            self.http.socket.setblocking(False)
        for _ in range(self.http_processes - 1):
            pid = os.fork()
            if pid == 0:
                self._serve_as_child(self.http)  # never returns
            self.children.append(pid)
        self._spawn("http", self.http.serve_forever)

    def _serve_as_child(self, http: WSGIServer) -> None:
        """A forked process that only answers HTTP: the parent's workers, scheduler and
        connections stay the parent's (redis-py reconnects after a fork by itself)."""
        status = 0
        try:
            signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
            parent = os.getppid()

            def orphaned() -> None:  # the parent died without stopping us: stop too
                while os.getppid() == parent:
                    time.sleep(1)
                os._exit(0)

            threading.Thread(target=orphaned, daemon=True).start()
            http.serve_forever()
        except BaseException:
            log.exception("HTTP child process failed")
            status = 1
        finally:
            os._exit(status)  # no atexit, no destructors of the parent's objects

    def start_workers(self) -> None:
        for n in range(self.workers):
            worker = Worker(
                self.store,
                JobQueue(self.store.redis),
                self.kube,
                self.config,
                self.sink,
                helm=self.helm,
            )
            self._spawn(f"worker-{n}", lambda w=worker: w.run(self.stop_event))

    def _spawn(self, name: str, target: Any) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def stop(self) -> None:
        self.stop_event.set()
        for pid in self.children:
            try:
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        self.children.clear()
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()
            self.http = None
        for thread in self.threads:
            thread.join(timeout=5)
        self.threads.clear()


def helm_from_environment(kubeconfig: str | None) -> HelmSettings:
    """The helm binary ($ROLLBOT_HELM or helm on PATH) with rollbot's own kubeconfig
    (none in a pod: helm then uses the service account, as rollbot does)."""
    return HelmSettings(
        binary=os.environ.get("ROLLBOT_HELM", "helm"),
        kubeconfig=kubeconfig or os.environ.get("KUBECONFIG") or None,
    )


def work_from_environment(kubeconfig: str | None, port: int = 0) -> None:
    """`rollbot worker`: jobs only; with a port, also the probes and /metrics (no Slack
    events arrive there), so a worker-only pod can be probed like the bot's."""
    from bot.config import load_config
    from bot.kube import Kube
    from bot.store import connect

    server = RollbotServer(
        load_config(),
        RollbackStore(connect()),
        Kube.from_kubeconfig(kubeconfig),
        os.environ.get("SLACK_BOT_TOKEN", ""),
        "unused",
        slack_api_url=os.environ.get("SLACK_API_URL"),
        helm=helm_from_environment(kubeconfig),
        http_events=False,
    )
    if port:
        server.start_http(port, host=os.environ.get("ROLLBOT_BIND", "0.0.0.0"))
        print(f"rollbot worker; /healthz, /readyz, /metrics on :{port}", flush=True)
    server.start_workers()
    server.stop_event.wait()


def serve_from_environment(
    port: int, with_worker: bool, kubeconfig: str | None, http_processes: int = 1
) -> None:
    """`rollbot serve`: settings from the environment, as DESIGN.md lists them."""
    from bot.config import load_config
    from bot.kube import Kube
    from bot.store import connect

    token = os.environ.get("SLACK_BOT_TOKEN", "")
    secret = os.environ.get("SLACK_SIGNING_SECRET", "")
    app_token = os.environ.get("SLACK_APP_TOKEN", "")
    if not token or not (secret or app_token):
        raise SystemExit(
            "rollbot serve needs SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET "
            "(HTTP mode) or SLACK_APP_TOKEN (Socket Mode)"
        )
    server = RollbotServer(
        load_config(),
        RollbackStore(connect()),
        Kube.from_kubeconfig(kubeconfig),
        token,
        secret or "unused",
        slack_api_url=os.environ.get("SLACK_API_URL"),
        helm=helm_from_environment(kubeconfig),
        http_events=not app_token,
        http_processes=http_processes,
    )
    # HTTP first: its extra processes are forked before any worker thread exists.
    # Socket Mode too: the probes and /metrics are served over HTTP either way.
    server.start_http(port, host=os.environ.get("ROLLBOT_BIND", "0.0.0.0"))
    if with_worker:
        server.start_workers()
    if app_token:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        print(f"rollbot in Socket Mode; /healthz, /readyz, /metrics on :{port}", flush=True)
        SocketModeHandler(server.app, app_token).start()  # type: ignore[no-untyped-call]
    else:
        print(f"rollbot listening on :{port} (/slack/events, /healthz)", flush=True)
        server.stop_event.wait()
