"""Plays kubelet for the test control plane: no containers run, but pods get the
status a kubelet would give them.

A pod whose images all look healthy becomes Running and Ready, so ReplicaSets
count it available and Deployments really roll out. A pod with an image whose
tag matches `--broken-pattern` is left crash-looping (Running, not Ready, a
container waiting in CrashLoopBackOff with a rising restart count), so its
Deployment misses its progress deadline exactly as a broken release would.

No pod is ever scheduled to a node, so the apiserver deletes pods at once when a
ReplicaSet scales down.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import threading
import time
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("testbed.kubelet")
Body = dict[str, Any]
RESTART_EVERY = 5.0  # seconds between the crash-looping containers' "restarts"


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
        "hostIP": "10.0.0.10",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "containerStatuses": statuses,
        "initContainerStatuses": init_statuses,
    }


def _raw_data(response: Any) -> Any:
    return response.data


class FakeKubelet:
    def __init__(self, api: client.CoreV1Api, broken: re.Pattern[str]) -> None:
        self.api = api
        self.broken = broken
        self.crashing: dict[tuple[str, str], Body] = {}
        self.lock = threading.Lock()

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

    def handle(self, event_type: str, pod: Body) -> None:
        meta = pod["metadata"]
        key = (meta["namespace"], meta["name"])
        if event_type == "DELETED" or meta.get("deletionTimestamp"):
            with self.lock:
                self.crashing.pop(key, None)
            return
        if pod.get("status", {}).get("containerStatuses"):
            return  # already reported
        broken = is_broken(pod, self.broken)
        self._patch(pod, pod_status(pod, broken, restarts=1 if broken else 0))
        if broken:
            with self.lock:
                self.crashing[key] = {"pod": pod, "restarts": 1}

    def restart_crashing(self, stop: threading.Event) -> None:
        """Crash-looping containers keep restarting, as the restart counts show."""
        while not stop.wait(RESTART_EVERY):
            with self.lock:
                entries = list(self.crashing.values())
            for entry in entries:
                entry["restarts"] += 1
                self._patch(entry["pod"], pod_status(entry["pod"], True, entry["restarts"]))

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument(
        "--broken-pattern", default="broken", help="regex on image tags whose containers crash-loop"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s kubelet %(message)s")
    api_client = config.new_client_from_config(config_file=args.kubeconfig)
    FakeKubelet(client.CoreV1Api(api_client), re.compile(args.broken_pattern)).run()


if __name__ == "__main__":
    main()
