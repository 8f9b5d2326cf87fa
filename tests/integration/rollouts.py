"""Argo Rollouts taken through real revisions by the real controller.

Like `workloads.py` for Deployments: these helpers create, change, read and
wait with plain API calls of their own, never with the rollbot code under test.

Every Rollout made here runs pods labelled `app: NAME` with one container
`app`; a canary's analysis is an AnalysisTemplate `NAME-analysis` whose `web`
metric asks the session's `WebMetric` under the key `NAMESPACE/NAME`
(`metric_key`), so `rollouts.metric.set(rollouts.metric_key(NAME), 0.5)`
makes that Rollout's next analysis fail.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client

from testbed.argo_rollouts import ArgoRollouts, WebMetric

Body = dict[str, Any]
GROUP, VERSION = "argoproj.io", "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
REVISION = "rollout.argoproj.io/revision"
PLURALS = {"Rollout": "rollouts", "AnalysisTemplate": "analysistemplates"}


def analysis_template(
    name: str,
    url: str,
    *,
    success: str = "result >= 0.95",
    interval: str = "2s",
    count: int = 2,
    failure_limit: int = 0,
    error_limit: int = 4,
) -> Body:
    """One `web` metric, `success-rate`: `count` measurements `interval` apart of
    the endpoint's `value`; more than `failure_limit` failures fail the run, more
    than `error_limit` errors in a row (the endpoint failing) end it in Error."""
    metric = {
        "name": "success-rate",
        "interval": interval,
        "count": count,
        "failureLimit": failure_limit,
        "consecutiveErrorLimit": error_limit,
        "successCondition": success,
        "provider": {"web": {"url": url, "jsonPath": "{$.value}", "timeoutSeconds": 5}},
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "AnalysisTemplate",
        "metadata": {"name": name},
        "spec": {"metrics": [metric]},
    }


def canary_steps(analysis: str | None, weight: int = 50, pause: str | None = "1s") -> list[Body]:
    """setWeight, then a pause (`None`: none; `""`: until promoted), then the analysis."""
    steps: list[Body] = [{"setWeight": weight}]
    if pause is not None:
        steps.append({"pause": {"duration": pause} if pause else {}})
    if analysis is not None:
        steps.append({"analysis": {"templates": [{"templateName": analysis}]}})
    return steps


def rollout(
    name: str,
    image: str,
    strategy: Body,
    *,
    replicas: int = 2,
    rollback_window: int | None = None,
    progress_deadline: int = 600,
    progress_deadline_abort: bool = False,
) -> Body:
    """A Rollout whose pods run `image`; `progress_deadline_abort` aborts the update
    (back to stable) when it misses the deadline, not only marks it Degraded."""
    spec: Body = {
        "replicas": replicas,
        "revisionHistoryLimit": 10,
        "progressDeadlineSeconds": progress_deadline,
        "progressDeadlineAbort": progress_deadline_abort,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "app", "image": image}]},
        },
        "strategy": strategy,
    }
    if rollback_window is not None:
        spec["rollbackWindow"] = {"revisions": rollback_window}
    return {"apiVersion": API_VERSION, "kind": "Rollout", "metadata": {"name": name}, "spec": spec}


def service(name: str, app: str) -> Body:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


class Rollouts:
    """Rollouts in one namespace, driven through the API and the real plugin."""

    def __init__(self, api_client: client.ApiClient, namespace: str, argo: ArgoRollouts) -> None:
        self.custom = client.CustomObjectsApi(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.namespace = namespace
        self.argo = argo

    @property
    def metric(self) -> WebMetric:
        return self.argo.metric

    def metric_key(self, name: str) -> str:
        return f"{self.namespace}/{name}"

    # -- creating ----------------------------------------------------------------

    def create(self, body: Body) -> Body:
        plural = PLURALS[body["kind"]]
        created = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, body
        )
        return dict(created)

    def create_analysis(self, name: str, **metric: Any) -> str:
        """The AnalysisTemplate `NAME-analysis`, asking the web metric under
        `metric_key(NAME)`; `metric` goes to `analysis_template()`. Its name."""
        template = f"{name}-analysis"
        url = self.metric.url_for(self.metric_key(name))
        self.create(analysis_template(template, url, **metric))
        return template

    def create_canary(
        self,
        name: str,
        image: str,
        *,
        steps: list[Body] | None = None,
        analysis: bool = True,
        extra: Body | None = None,
        wait: bool = True,
        **options: Any,
    ) -> Body:
        """A canary Rollout (by default: 50%, a 1s pause, the analysis) at its first,
        stable revision; with `analysis`, its AnalysisTemplate `NAME-analysis` too.
        `extra` goes into `strategy.canary` (e.g. a background `analysis`); `options`
        to `rollout()` (replicas, rollback_window, progress_deadline...)."""
        template = self.create_analysis(name) if analysis else None
        canary = {"steps": canary_steps(template) if steps is None else steps, **(extra or {})}
        self.create(rollout(name, image, {"canary": canary}, **options))
        return self.wait_healthy(name) if wait else self.get(name)

    def create_bluegreen(
        self,
        name: str,
        image: str,
        *,
        auto_promote: bool = False,
        extra: Body | None = None,
        wait: bool = True,
        **options: Any,
    ) -> Body:
        """A blue-green Rollout with Services `NAME-active` and `NAME-preview`, at its
        first revision. `extra` goes into `strategy.blueGreen` (e.g.
        `scaleDownDelaySeconds`, a `prePromotionAnalysis`)."""
        for svc in (f"{name}-active", f"{name}-preview"):
            self.core.create_namespaced_service(self.namespace, service(svc, name))
        blue_green = {
            "activeService": f"{name}-active",
            "previewService": f"{name}-preview",
            "autoPromotionEnabled": auto_promote,
            **(extra or {}),
        }
        self.create(rollout(name, image, {"blueGreen": blue_green}, **options))
        return self.wait_healthy(name) if wait else self.get(name)

    # -- changing ------------------------------------------------------------------

    def set_image(self, name: str, image: str) -> None:
        """A new revision, as `kubectl argo rollouts set image NAME app=IMAGE` makes,
        never within the second its last ReplicaSet was made (see `_after_last_revision`)."""
        self._after_last_revision(name)
        patch = [
            {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": image}
        ]
        self.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            "rollouts",
            name,
            patch,
            _content_type="application/json-patch+json",
        )

    def _after_last_revision(self, name: str) -> None:
        """Wait out the second the newest ReplicaSet was created in. The controller
        tells a rollback (and one within `rollbackWindow`) by which ReplicaSet is
        older, and creationTimestamp has one-second precision: two revisions made in
        the same second, as a fast test makes them, are neither older, and a fast
        rollback between them would be a slow one, now and then."""
        stamps = [rs["metadata"]["creationTimestamp"] for rs in self.replica_sets(name)]
        if stamps:
            newest = max(datetime.fromisoformat(stamp) for stamp in stamps)
            wait = (newest + timedelta(seconds=1) - datetime.now(UTC)).total_seconds()
            time.sleep(max(wait, 0))

    def plugin(self, *args: str, user: str | None = None) -> str:
        """`kubectl argo rollouts ARGS -n NAMESPACE`; its output, or AssertionError."""
        result = self.argo.run_plugin(*args, namespace=self.namespace, user=user)
        assert result.returncode == 0, f"plugin {' '.join(args)} failed: {result.stderr}"
        return result.stdout

    # -- reading -------------------------------------------------------------------

    def get(self, name: str) -> Body:
        return dict(
            self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "rollouts", name
            )
        )

    def images_of(self, name: str) -> list[str]:
        return [c["image"] for c in self.get(name)["spec"]["template"]["spec"]["containers"]]

    def _owned(self, items: list[Body], owner: Body) -> list[Body]:
        uid = owner["metadata"]["uid"]
        return [
            item
            for item in items
            if any(ref["uid"] == uid for ref in item["metadata"].get("ownerReferences", []))
        ]

    def replica_sets(self, name: str) -> list[Body]:
        raw = self.apps.list_namespaced_replica_set(self.namespace, _preload_content=False)
        return self._owned(json.loads(raw.data)["items"], self.get(name))

    def revisions(self, name: str) -> dict[int, Body]:
        """Revision number → ReplicaSet, from the controller's annotations."""
        return {int(rs["metadata"]["annotations"][REVISION]): rs for rs in self.replica_sets(name)}

    def analysis_runs(self, name: str) -> list[Body]:
        """The Rollout's AnalysisRuns, oldest first."""
        runs = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "analysisruns"
        )["items"]
        owned = self._owned(runs, self.get(name))
        return sorted(owned, key=lambda run: run["metadata"]["creationTimestamp"])

    # -- waiting -------------------------------------------------------------------

    def wait(self, name: str, done: Callable[[Body], bool], what: str, timeout: float = 60) -> Body:
        """The Rollout once `done(rollout)`; AssertionError with its status after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            body = self.get(name)
            if done(body):
                return body
            if time.monotonic() > deadline:
                self.argo.check_alive()
                status = json.dumps(body.get("status", {}), indent=1)[:3000]
                raise AssertionError(f"rollout {name} not {what} within {timeout:g}s: {status}")
            time.sleep(0.3)

    def wait_phase(self, name: str, phase: str, timeout: float = 60) -> Body:
        return self.wait(name, lambda r: phase_of(r) == phase, f"phase {phase}", timeout)

    def wait_healthy(self, name: str, timeout: float = 60) -> Body:
        """Healthy at its current spec: every step done, the new revision stable."""
        return self.wait(name, is_healthy, "Healthy", timeout)


def phase_of(body: Body) -> str:
    status = body.get("status", {})
    if str(status.get("observedGeneration", "")) != str(body["metadata"]["generation"]):
        return "Progressing"  # the controller has not seen the last change yet
    return str(status.get("phase", ""))


def is_healthy(body: Body) -> bool:
    status = body.get("status", {})
    return (
        phase_of(body) == "Healthy"
        and bool(status.get("stableRS"))
        and status.get("stableRS") == status.get("currentPodHash")
    )
