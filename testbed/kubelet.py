"""Plays kubelet (and scheduler) for the test control plane: no containers run,
but pods get the node, the status and the logs a kubelet would give them.

It registers one Node, `testbed-node`, whose InternalIP is 127.0.0.1 and whose
`daemonEndpoints.kubeletEndpoint.Port` is the HTTPS port it serves (with a
self-signed certificate: the apiserver, given no `--kubelet-certificate-authority`,
does not verify it). Every new pod is bound to that node.

A pod whose images all look healthy becomes Running and Ready, so ReplicaSets
count it available and Deployments really roll out. A pod with an image whose
tag matches `--broken-pattern` is left crash-looping (Running, not Ready, a
container waiting in CrashLoopBackOff with a rising restart count), so its
Deployment misses its progress deadline exactly as a broken release would.

A pod that runs to completion (restartPolicy Never or OnFailure: every Job's
pods) runs its containers to an exit code and becomes Succeeded or Failed
(`testbed.pod_runs`), so the real job controller judges the Job; one annotated
`testbed.rollbot.dev/run-local: "true"` runs its containers' commands as real
local processes (`testbed.local_containers`), whose output is its log.

A pod being deleted is removed at once (grace period 0), as a kubelet does once
its containers have stopped (a local process is killed first), so ReplicaSets
still scale down in moments.

Logs: `GET /containerLogs/{namespace}/{pod}/{container}` answers with the lines
`testbed.container_logs` makes up from the pod, honouring `tailLines`,
`sinceSeconds`, `sinceTime`, `timestamps`, `previous` and `limitBytes` (`follow`
returns what is there and ends). So `kubectl logs` and rollbot's `Kube.pod_log`
get real text through the apiserver's `pods/log`:

* a serving container: a start-up preamble, then access-log lines, INFO for
  2xx, an occasional WARN 404, ERROR for 5xx;
* a crash-looping container: its last attempt's start, `ERROR startup failed`
  and a Python traceback (`previous=true`: the attempt before).

What a pod logs is set in its template, so a rollback changes it too:

* annotation `testbed.rollbot.dev/log-errors: "0.3"`, or env var
  `TESTBED_LOG_ERRORS` on a container (wins over the annotation): the fraction
  of request lines that are ERROR 5xx lines (default 0, evenly spread: 0.3 is 3
  of every 10 requests);
* annotation `testbed.rollbot.dev/log-rate`, or env `TESTBED_LOG_RATE`:
  request lines per second (default 2).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from testbed.container_logs import (
    SECOND,
    LogQuery,
    NoLog,
    nanos,
    read_log,
    render_log,
    runs_to_completion,
)
from testbed.local_containers import container_env
from testbed.pod_runs import PodRun
from testbed.service import ThreadedHttpService

log = logging.getLogger("testbed.kubelet")
Body = dict[str, Any]
RESTART_EVERY = 5.0  # seconds between the crash-looping containers' "restarts"
NODE_NAME = "testbed-node"
NODE_IP = "127.0.0.1"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _tag(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


def is_broken(pod: Body, pattern: re.Pattern[str]) -> bool:
    spec = pod.get("spec", {})
    return any(pattern.search(_tag(c.get("image", ""))) for c in spec.get("containers") or [])


def _pod_ip(pod: Body) -> str:
    digest = int(pod["metadata"]["uid"].replace("-", ""), 16)
    return f"10.244.{digest % 250 + 1}.{digest // 250 % 250 + 1}"


def pod_status(pod: Body, broken: bool, restarts: int = 0) -> Body:
    """The status subresource a kubelet would report for this pod."""
    stamp = now()
    started = pod.get("status", {}).get("startTime") or stamp
    spec = pod.get("spec", {})
    ready = "False" if broken else "True"
    conditions = [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": started},
        {"type": "Initialized", "status": "True", "lastTransitionTime": started},
        {"type": "ContainersReady", "status": ready, "lastTransitionTime": stamp},
        {"type": "Ready", "status": ready, "lastTransitionTime": stamp},
    ]
    if broken:
        for condition in conditions[2:]:
            condition["reason"] = "ContainersNotReady"
    statuses = []
    for container in spec.get("containers") or []:
        status: Body = {
            "name": container["name"],
            "image": container.get("image", ""),
            "imageID": "docker-pullable://" + container.get("image", ""),
            "containerID": f"containerd://{pod['metadata']['uid']}-{container['name']}",
            "ready": not broken,
            "started": not broken,
            "restartCount": restarts if broken else 0,
        }
        if broken:
            status["state"] = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off restarting failed container {container['name']}",
                }
            }
            status["lastState"] = {
                "terminated": {
                    "exitCode": 1,
                    "reason": "Error",
                    "startedAt": started,
                    "finishedAt": stamp,
                }
            }
        else:
            status["state"] = {"running": {"startedAt": started}}
        statuses.append(status)
    init_statuses = [
        {
            "name": c["name"],
            "image": c.get("image", ""),
            "imageID": "",
            "ready": True,
            "restartCount": 0,
            "state": {
                "terminated": {
                    "exitCode": 0,
                    "reason": "Completed",
                    "startedAt": started,
                    "finishedAt": started,
                }
            },
        }
        for c in spec.get("initContainers") or []
    ]
    ip = _pod_ip(pod)
    return {
        "phase": "Running",
        "conditions": conditions,
        "startTime": started,
        "hostIP": NODE_IP,
        "hostIPs": [{"ip": NODE_IP}],
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "containerStatuses": statuses,
        "initContainerStatuses": init_statuses,
    }


def _raw_data(response: Any) -> Any:
    return response.data


def node_body(name: str) -> Body:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            },
        },
    }


def node_status(name: str, port: int) -> Body:
    """What a kubelet reports about its node: where the apiserver finds its API."""
    stamp = now()
    capacity = {"cpu": "8", "memory": "32Gi", "pods": "250", "ephemeral-storage": "100Gi"}
    healthy = [
        ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID"),
        ("Ready", "True", "KubeletReady"),
    ]
    return {
        "addresses": [
            {"type": "InternalIP", "address": NODE_IP},
            {"type": "Hostname", "address": name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        "capacity": capacity,
        "allocatable": capacity,
        "conditions": [
            {
                "type": kind,
                "status": value,
                "reason": reason,
                "lastHeartbeatTime": stamp,
                "lastTransitionTime": stamp,
            }
            for kind, value, reason in healthy
        ],
        "nodeInfo": {
            "machineID": "testbed",
            "systemUUID": "testbed",
            "bootID": "testbed",
            "kernelVersion": "testbed",
            "osImage": "rollbot test bed",
            "containerRuntimeVersion": "testbed://1",
            "kubeletVersion": "testbed",
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": "amd64",
        },
    }


def self_signed_certificate(cert_dir: Path, name: str) -> tuple[Path, Path]:
    """The kubelet's serving certificate (made once per folder, like controlplane.py's)."""
    cert, key = cert_dir / "kubelet.crt", cert_dir / "kubelet.key"
    if not (cert.exists() and key.exists()):
        cert_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "openssl", "req", "-x509", "-nodes", "-days", "365",
                "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-keyout", str(key), "-out", str(cert),
                "-subj", f"/CN={name}",
                "-addext", f"subjectAltName=IP:{NODE_IP},DNS:{name}",
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
    return cert, key


class FakeKubelet:
    def __init__(
        self, api: client.CoreV1Api, broken: re.Pattern[str], node_name: str = NODE_NAME
    ) -> None:
        self.api: Any = api  # raw dict bodies in and out: the client's models are not used
        self.broken = broken
        self.node_name = node_name
        self.crashing: dict[tuple[str, str], Body] = {}
        #: The pods as last seen on the watch: what the log server reads.
        self.pods: dict[tuple[str, str], Body] = {}
        self.reported: set[str] = set()  # uids whose status was patched
        #: Pods that run to completion (Jobs'), by uid: their containers at work.
        self.runs: dict[str, PodRun] = {}
        self.lock = threading.Lock()

    # -- the node ---------------------------------------------------------------

    def register_node(self, port: int) -> None:
        try:
            self.api.create_node(node_body(self.node_name), _preload_content=False)
        except ApiException as err:
            if err.status != 409:  # already registered by an earlier run: update it
                raise
        # The TaintNodesByCondition admission taints a new node not-ready; the node
        # lifecycle controller would lift it, but none runs here.
        raw = json.loads(_raw_data(self.api.read_node(self.node_name, _preload_content=False)))
        if raw.get("spec", {}).get("taints"):
            self.api.patch_node(
                self.node_name, [{"op": "remove", "path": "/spec/taints"}], _preload_content=False
            )
        self.api.patch_node_status(
            self.node_name, {"status": node_status(self.node_name, port)}, _preload_content=False
        )

    # -- pods -------------------------------------------------------------------

    def _patch(self, pod: Body, status: Body) -> None:
        meta = pod["metadata"]
        try:
            self.api.patch_namespaced_pod_status(
                meta["name"], meta["namespace"], {"status": status}, _preload_content=False
            )
        except ApiException as err:
            if err.status not in (404, 409):  # gone meanwhile: nothing to report
                log.warning(
                    "status patch of %s/%s failed: %s", meta["namespace"], meta["name"], err.reason
                )

    def _patch_persistently(self, pod: Body, status: Body, patience: float = 60) -> None:
        """A run's status report: retried while the apiserver cannot be reached (a
        restart), or the Job would never learn how its pod ended."""
        meta = pod["metadata"]
        deadline = time.monotonic() + patience
        while True:
            try:
                self.api.patch_namespaced_pod_status(
                    meta["name"], meta["namespace"], {"status": status}, _preload_content=False
                )
                return
            except ApiException as err:
                if err.status == 404:
                    return  # gone meanwhile: nothing to report
                failure: object = err.reason
                if err.status < 500 and err.status != 429:
                    log.warning("status of %s refused: %s", meta["name"], failure)
                    return
            except Exception as err:  # urllib3's connection errors: the apiserver is away
                failure = err
            if time.monotonic() > deadline:
                log.warning("gave up reporting the status of %s: %s", meta["name"], failure)
                return
            time.sleep(0.5)

    def _bind(self, pod: Body) -> bool:
        """Schedule the pod here, as the scheduler would: through its binding."""
        meta = pod["metadata"]
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"], "uid": meta["uid"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.node_name},
        }
        try:
            self.api.create_namespaced_pod_binding(
                meta["name"], meta["namespace"], binding, _preload_content=False
            )
        except ApiException as err:
            if err.status not in (404, 409):  # gone, or bound meanwhile
                log.warning("binding %s/%s failed: %s", meta["namespace"], meta["name"], err.reason)
            return False
        return True

    def _remove(self, pod: Body) -> None:
        """A pod being deleted: its containers "stopped", so it goes now."""
        meta = pod["metadata"]
        try:
            self.api.delete_namespaced_pod(
                meta["name"],
                meta["namespace"],
                body={"gracePeriodSeconds": 0, "preconditions": {"uid": meta["uid"]}},
                _preload_content=False,
            )
        except ApiException as err:
            if err.status not in (404, 409):
                log.warning(
                    "removing %s/%s failed: %s", meta["namespace"], meta["name"], err.reason
                )

    def handle(self, event_type: str, pod: Body) -> None:
        meta = pod["metadata"]
        key = (meta["namespace"], meta["name"])
        node = pod.get("spec", {}).get("nodeName")
        if event_type == "DELETED":
            with self.lock:
                self.crashing.pop(key, None)
                self.pods.pop(key, None)
                self.reported.discard(meta["uid"])
                run = self.runs.pop(meta["uid"], None)
            if run is not None:
                run.stop()
            return
        with self.lock:
            self.pods[key] = pod
        if node and node != self.node_name:
            return  # another node's pod
        if meta.get("deletionTimestamp"):
            with self.lock:
                self.crashing.pop(key, None)
                run = self.runs.pop(meta["uid"], None)
            if run is not None:
                run.stop()  # its processes end with the pod
            if node:
                self._remove(pod)
            return
        if not node and not self._bind(pod):
            return
        if meta["uid"] in self.reported or pod.get("status", {}).get("containerStatuses"):
            return  # already reported
        broken = is_broken(pod, self.broken)
        if runs_to_completion(pod):
            self._start_run(pod, broken)
            return
        self._patch(pod, pod_status(pod, broken, restarts=1 if broken else 0))
        with self.lock:
            self.reported.add(meta["uid"])
            if broken:
                self.crashing[key] = {"pod": pod, "restarts": 1}

    def _start_run(self, pod: Body, broken: bool) -> None:
        base = pod_status(pod, False)  # the node, IPs and start time stay as first reported
        run = PodRun(
            pod,
            broken=broken,
            report=lambda fields: self._patch_persistently(pod, {**base, **fields}),
            env_of=lambda pod, container: container_env(self.api, pod, container),
        )
        with self.lock:
            self.reported.add(pod["metadata"]["uid"])
            self.runs[pod["metadata"]["uid"]] = run
        run.start()

    def stop_runs(self) -> None:
        """The kubelet stops: every local process ends with it."""
        with self.lock:
            runs = list(self.runs.values())
            self.runs.clear()
        for run in runs:
            run.stop()

    def restart_crashing(self, stop: threading.Event) -> None:
        """Crash-looping containers keep restarting, as the restart counts show."""
        while not stop.wait(RESTART_EVERY):
            with self.lock:
                entries = list(self.crashing.values())
            for entry in entries:
                entry["restarts"] += 1
                self._patch(entry["pod"], pod_status(entry["pod"], True, entry["restarts"]))

    # -- logs -------------------------------------------------------------------

    def pod(self, namespace: str, name: str) -> Body | None:
        with self.lock:
            pod = self.pods.get((namespace, name))
        if pod is not None and pod.get("status", {}).get("containerStatuses"):
            return pod
        # Not on the watch yet (the apiserver may ask the moment a status lands).
        try:
            raw = self.api.read_namespaced_pod(name, namespace, _preload_content=False)
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        fresh: Body = json.loads(_raw_data(raw))
        return fresh

    def container_log(
        self, namespace: str, pod_name: str, container: str, query: LogQuery
    ) -> bytes:
        pod = self.pod(namespace, pod_name)
        if pod is None:
            raise LookupError(f'pod "{pod_name}" not found in namespace "{namespace}"')
        with self.lock:
            run = self.runs.get(pod["metadata"]["uid"])
        captured = run.log(container, query.previous) if run is not None else None
        if captured is not None:
            return render_log(captured, query)
        return read_log(pod, container, query, time.time_ns(), RESTART_EVERY)

    def run(self) -> None:
        stop = threading.Event()
        threading.Thread(target=self.restart_crashing, args=(stop,), daemon=True).start()
        resource_version = ""
        while True:
            try:
                if not resource_version:
                    listing = json.loads(
                        _raw_data(self.api.list_pod_for_all_namespaces(_preload_content=False))
                    )
                    resource_version = listing["metadata"]["resourceVersion"]
                    for pod in listing["items"]:
                        self.handle("ADDED", pod)
                w = watch.Watch()
                for event in w.stream(
                    self.api.list_pod_for_all_namespaces,
                    resource_version=resource_version,
                    timeout_seconds=300,
                ):
                    raw = event["raw_object"]
                    if event["type"] == "ERROR":
                        resource_version = ""
                        break
                    resource_version = raw["metadata"]["resourceVersion"]
                    self.handle(str(event["type"]), raw)
            except ApiException as err:
                if err.status == 410:
                    resource_version = ""
                    continue
                log.warning("watch failed: %s", err.reason)
                time.sleep(0.5)
            except Exception as err:  # keep playing kubelet through API hiccups
                log.warning("watch broke: %s", err)
                time.sleep(0.5)


def log_query(query: str) -> LogQuery:
    """The kubelet's `/containerLogs` query parameters, as the apiserver passes them on."""
    params = {k: v[-1] for k, v in parse_qs(query).items()}

    def number(key: str) -> int | None:
        return int(params[key]) if key in params else None

    since = None
    if "sinceSeconds" in params:
        since = time.time_ns() - int(params["sinceSeconds"]) * SECOND
    elif "sinceTime" in params:
        since = nanos(params["sinceTime"])
    return LogQuery(
        tail_lines=number("tailLines"),
        since=since,
        previous=params.get("previous") in ("true", "1"),
        timestamps=params.get("timestamps") in ("true", "1"),
        limit_bytes=number("limitBytes"),
    )


class KubeletServer(ThreadedHttpService):
    """The kubelet's HTTPS API, as far as the apiserver needs it: container logs."""

    def __init__(self, kubelet: FakeKubelet, cert: Path, key: Path, port: int = 0) -> None:
        self.kubelet = kubelet
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(cert, key)
        self.tls.set_alpn_protocols(["http/1.1"])
        self.wanted_port = port

    def _make_server(self) -> ThreadingHTTPServer:
        kubelet, tls = self.kubelet, self.tls

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the apiserver reuses connections
            # Headers and body go out as two writes; with Nagle on, the second waits
            # for the apiserver's delayed ACK (40 ms a request).
            disable_nagle_algorithm = True

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                parts = [unquote(p) for p in url.path.strip("/").split("/")]
                if parts == ["healthz"]:
                    self._answer(200, b"ok")
                    return
                if len(parts) != 4 or parts[0] != "containerLogs":
                    self._answer(404, b"404 page not found\n")
                    return
                _, namespace, pod, container = parts
                try:
                    body = kubelet.container_log(namespace, pod, container, log_query(url.query))
                except NoLog as err:
                    self._answer(400, str(err).encode())
                except LookupError as err:
                    self._answer(404, str(err).encode())
                except ValueError as err:
                    self._answer(400, f"bad query: {err}".encode())
                else:
                    self._answer(200, body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                log.debug("%s " + format, self.address_string(), *args)

        class TlsServer(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> tuple[Any, Any]:
                sock, address = super().get_request()
                # The handshake happens in the request's thread, not in the accept loop.
                return tls.wrap_socket(
                    sock, server_side=True, do_handshake_on_connect=False
                ), address

            def finish_request(self, request: Any, client_address: Any) -> None:
                try:
                    request.do_handshake()
                except (ssl.SSLError, OSError) as err:
                    log.debug("TLS handshake with %s failed: %s", client_address, err)
                    return
                super().finish_request(request, client_address)

        return TlsServer((NODE_IP, self.wanted_port), Handler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument(
        "--broken-pattern", default="broken", help="regex on image tags whose containers crash-loop"
    )
    parser.add_argument("--node-name", default=NODE_NAME)
    parser.add_argument(
        "--cert-dir", type=Path, help="where the serving certificate is kept (default: a temp dir)"
    )
    parser.add_argument("--port", type=int, default=0, help="HTTPS port (default: a free one)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s kubelet %(message)s")
    api_client = config.new_client_from_config(config_file=args.kubeconfig)
    kubelet = FakeKubelet(
        client.CoreV1Api(api_client), re.compile(args.broken_pattern), args.node_name
    )
    cert_dir = args.cert_dir or Path(tempfile.mkdtemp(prefix="rollbot-kubelet-"))
    cert, key = self_signed_certificate(cert_dir, args.node_name)
    server = KubeletServer(kubelet, cert, key, args.port).start()

    def stop(signum: int, frame: object) -> None:
        kubelet.stop_runs()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    kubelet.register_node(server.port)
    log.info(
        "node %s registered, kubelet API on https://%s:%d", args.node_name, NODE_IP, server.port
    )
    kubelet.run()


if __name__ == "__main__":
    main()
