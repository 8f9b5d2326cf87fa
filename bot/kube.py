"""Kubernetes access through the official client, always as raw JSON dicts.

The client's model classes drop fields they do not know, and a template written
back through them can lose parts of itself; so every call here sends its request
through `ApiClient.call_api` (the client's configuration, authentication, TLS and
connection pool, but none of its generated API classes) and decodes the answer's
JSON itself: every object crosses this boundary as a plain dict. Loading a
generated class builds the pydantic models of its whole API group (~0.4 s for
apps/v1, twice that for core/v1), which `rollbot rollback` in a new process pays
before it does anything (bench/rollback_vs_kubectl.py). API failures are
translated into rollbot's typed errors.

It is over 400 lines because it is the one place a cluster call is made: each
call (Argo Rollouts' custom objects and GitOps owners included) is a few lines over `_send`, and
splitting them by kind would spread the translation of failures over modules.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import quote

import urllib3
from kubernetes import config
from kubernetes.client.api_client import ApiClient
from kubernetes.client.configuration import Configuration
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from bot.deployments import pointer_value
from bot.errors import (
    ApiUnavailable,
    Conflict,
    DeploymentNotFound,
    Forbidden,
    InvalidInput,
    PermanentError,
    RollbotError,
    WatchExpired,
)

if TYPE_CHECKING:
    from types import TracebackType

    from kubernetes.client import AppsV1Api, CoreV1Api
    from urllib3.connectionpool import ConnectionPool

Body = dict[str, Any]


class RetryUnlessTimedOut(urllib3.Retry):
    """urllib3's three retries for a connection found dead (a pooled one the API
    server closed), but none after a time-out: a request that timed out would only
    time out again, and four of them held a worker for four times its time-out (two
    minutes on a half-open connection). rollbot's own retries back off between tries."""

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: urllib3.BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        if isinstance(error, urllib3.exceptions.TimeoutError):
            raise error
        return super().increment(method, url, response, error, _pool, _stacktrace)


def load_api_client(kubeconfig: str | None = None, context: str | None = None) -> ApiClient:
    """An ApiClient from a kubeconfig file, or from the pod's service account."""
    cfg = Configuration()
    try:
        if kubeconfig is not None:
            raise config.ConfigException("a kubeconfig was given")
        config.load_incluster_config(client_configuration=cfg)
    except config.ConfigException:
        try:
            config.load_kube_config(
                config_file=kubeconfig, context=context, client_configuration=cfg
            )
        except (config.ConfigException, OSError) as err:
            raise ApiUnavailable(f"no usable kubeconfig ({err})") from err
    cfg.retries = RetryUnlessTimedOut(3)
    return ApiClient(configuration=cfg)


def _message_of(err: ApiException) -> str:
    try:
        body = json.loads(err.body or "{}")
        return str(body.get("message") or err.reason)
    except (ValueError, TypeError):
        return str(err.reason)


def translate(
    err: Exception, *, kind: str = "", namespace: str = "", name: str = ""
) -> RollbotError:
    """The rollbot error a failed API call stands for."""
    if isinstance(err, ApiException):
        message = _message_of(err)
        if err.status == 404 and kind == "deployment":
            return DeploymentNotFound(namespace, name)
        if err.status in (401, 403):
            return Forbidden(message)
        if err.status == 409:
            return Conflict(message)
        if err.status == 410:
            return WatchExpired(message)
        if err.status in (400, 404, 422):
            return PermanentError(f"Kubernetes rejected the request: {message}")
        return ApiUnavailable(f"HTTP {err.status}: {message}")
    if isinstance(err, (urllib3.exceptions.HTTPError, OSError)):
        return ApiUnavailable(str(err))
    raise err


#: (connect, read) seconds for one API call: a half-open connection fails the call
#: (a temporary error, retried) instead of hanging a worker for good.
REQUEST_TIMEOUT = (5.0, 30.0)

#: What a failed call raises before `translate` turns it into a rollbot error.
_FAILURES = (ApiException, urllib3.exceptions.HTTPError, OSError)

JSON_PATCH = "application/json-patch+json"
ARGO = "apis/argoproj.io/v1alpha1"
MERGE_PATCH = "application/merge-patch+json"


def _namespaced(group: str, namespace: str, plural: str, name: str = "") -> str:
    """The path of a namespaced collection, or of one object in it (`group` is
    `api/v1` for the core group, `apis/GROUP/VERSION` for the others)."""
    path = f"/{group}/namespaces/{quote(namespace, safe='')}/{plural}"
    return f"{path}/{quote(name, safe='')}" if name else path


def _raw(response: urllib3.BaseHTTPResponse) -> Body:
    try:
        data = json.loads(response.data)
    except ValueError as err:
        raise ApiUnavailable(f"unexpected response body from the API ({err})") from err
    if not isinstance(data, dict):
        raise ApiUnavailable("unexpected response body from the API")
    return data


class Kube:
    """The Kubernetes calls rollbot makes, with raw bodies and typed errors."""

    def __init__(self, api_client: ApiClient) -> None:
        self.api_client = api_client

    @classmethod
    def from_kubeconfig(cls, kubeconfig: str | None = None, context: str | None = None) -> Kube:
        return cls(load_api_client(kubeconfig, context))

    # The generated classes, for callers that need more than the calls below (the
    # readiness check, tests creating namespaces); built on first use, see above.
    @cached_property
    def apps(self) -> AppsV1Api:
        from kubernetes.client import AppsV1Api

        return AppsV1Api(self.api_client)

    @cached_property
    def core(self) -> CoreV1Api:
        from kubernetes.client import CoreV1Api

        return CoreV1Api(self.api_client)

    # -- the one way a call is made ------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: object = None,
        content_type: str | None = None,
        timeout: tuple[float, float] = REQUEST_TIMEOUT,
    ) -> urllib3.BaseHTTPResponse:
        """The raw answer to one request; ApiException for any status but 2xx.

        `param_serialize` adds the credentials (a refreshed token for exec and
        OIDC users), the client's headers and the encoded query; `call_api` sends
        it through the client's pool, never reading more than the status line."""
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        request = self.api_client.param_serialize(
            method=method,
            resource_path=path,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        answer = self.api_client.call_api(*request, _request_timeout=timeout)
        if not 200 <= answer.status <= 299:
            answer.read()
            raise ApiException.from_response(http_resp=answer, body=None, data=None)
        response: urllib3.BaseHTTPResponse = answer.response
        return response

    def _json(
        self,
        method: str,
        path: str,
        *,
        kind: str = "",
        namespace: str = "",
        name: str = "",
        **request: Any,
    ) -> Body:
        """The JSON object one request answers, or the rollbot error its failure is."""
        try:
            return _raw(self._send(method, path, **request))
        except _FAILURES as err:
            raise translate(err, kind=kind, namespace=namespace, name=name) from err

    def _items(self, path: str, query: Mapping[str, str] | None = None) -> list[Body]:
        """The items of a list call, as raw dicts."""
        items: list[Body] = self._json("GET", path, query=query).get("items", [])
        return items

    def _guarded_json_patch(
        self,
        path: str,
        read: Callable[[str, str], Body],
        namespace: str,
        name: str,
        ops: list[Body],
        *,
        kind: str = "",
        subject: str = "",
    ) -> Body:
        """A JSON patch whose failed `test` op is a Conflict: the API answers a bare
        422 "Invalid", so the object is read again to say which value changed."""
        try:
            return _raw(self._send("PATCH", path, body=ops, content_type=JSON_PATCH))
        except ApiException as err:
            tests = [op for op in ops if op.get("op") == "test"]
            if err.status == 422 and tests:
                current = read(namespace, name)
                changed = [
                    op["path"] for op in tests if pointer_value(current, op["path"]) != op["value"]
                ]
                if changed:
                    raise Conflict(f"{subject}{', '.join(changed)} changed meanwhile") from err
            raise translate(err, kind=kind, namespace=namespace, name=name) from err
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise translate(err) from err

    def probe(self, namespace: str) -> None:
        """Readiness: a one-item Deployment list (the call the chart's Role allows),
        answered within 3 s; raises what the call raised."""
        path = _namespaced("apis/apps/v1", namespace, "deployments")
        method, url, headers, _, _ = self.api_client.param_serialize(
            method="GET",
            resource_path=path,
            query_params=[("limit", "1")],
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        # Once, not urllib3's three retries: a probe that hangs must fail in its 3 s.
        pool: urllib3.PoolManager = self.api_client.rest_client.pool_manager
        answer = pool.request(
            method, url, headers=headers, timeout=urllib3.Timeout(3, 3), retries=False
        )
        if not 200 <= answer.status <= 299:
            refused = ApiException(status=answer.status, reason=answer.reason)
            refused.body = answer.data.decode("utf-8", "replace")  # the API's own message
            raise refused

    # -- Deployments ---------------------------------------------------------

    def get_deployment(self, namespace: str, name: str) -> Body:
        path = _namespaced("apis/apps/v1", namespace, "deployments", name)
        return self._json("GET", path, kind="deployment", namespace=namespace, name=name)

    def list_deployments(self, namespace: str, label_selector: str = "") -> list[Body]:
        query = {"labelSelector": label_selector} if label_selector else None
        return self._items(_namespaced("apis/apps/v1", namespace, "deployments"), query)

    def list_replica_sets(self, namespace: str, label_selector: str) -> list[Body]:
        query = {"labelSelector": label_selector} if label_selector else None
        return self._items(_namespaced("apis/apps/v1", namespace, "replicasets"), query)

    def json_patch_deployment(self, namespace: str, name: str, ops: list[Body]) -> Body:
        """Apply a JSON patch; a failed `test` op whose value is no longer what the
        object holds is a Conflict."""
        path = _namespaced("apis/apps/v1", namespace, "deployments", name)
        return self._guarded_json_patch(
            path, self.get_deployment, namespace, name, ops, kind="deployment"
        )

    def watch_deployment(
        self, namespace: str, name: str, resource_version: str, timeout_seconds: int
    ) -> Iterator[tuple[str, Body]]:
        """(event type, raw Deployment) for each change after `resource_version`.

        One watch request, no resuming of its own: when it ends (the server's
        `timeout_seconds`, an apiserver gone, a resourceVersion too old for it:
        WatchExpired) the caller reads afresh and watches again from there."""
        wait = max(1, timeout_seconds)
        query = {
            "watch": "true",
            "fieldSelector": f"metadata.name={name}",
            "timeoutSeconds": str(wait),
            "allowWatchBookmarks": "false",
        }
        if resource_version:
            query["resourceVersion"] = resource_version
        path = _namespaced("apis/apps/v1", namespace, "deployments")
        try:
            # The server ends the watch at timeout_seconds; a connection that went
            # silent (half-open) is given up a little after that.
            response = self._send("GET", path, query=query, timeout=(REQUEST_TIMEOUT[0], wait + 15))
            try:
                for line in iter_resp_lines(response):
                    if line.strip():
                        yield _event(line)
            finally:
                # Closed, not drained: the socket of a watch left early goes too.
                response.close()
                response.release_conn()
        except _FAILURES as err:
            raise translate(err, kind="deployment", namespace=namespace, name=name) from err

    # -- Pods, events, autoscalers: the assessment ---------------------------

    def list_pods(self, namespace: str, label_selector: str) -> list[Body]:
        query = {"labelSelector": label_selector} if label_selector else None
        return self._items(_namespaced("api/v1", namespace, "pods"), query)

    def list_warning_events(self, namespace: str) -> list[Body]:
        path = _namespaced("api/v1", namespace, "events")
        return self._items(path, {"fieldSelector": "type=Warning"})

    def pod_log(
        self, namespace: str, pod: str, since_seconds: int, tail: int, container: str | None = None
    ) -> str:
        """A container's recent log (the only one's when `container` is None)."""
        query = {"sinceSeconds": str(since_seconds), "tailLines": str(tail)}
        if container:
            query["container"] = container
        path = _namespaced("api/v1", namespace, "pods", pod) + "/log"
        try:
            return self._send("GET", path, query=query).data.decode(errors="replace")
        except _FAILURES as err:
            raise translate(err) from err

    def list_services(self, namespace: str) -> list[Body]:
        return self._items(_namespaced("api/v1", namespace, "services"))

    def list_secrets(self, namespace: str, label_selector: str) -> list[Body]:
        query = {"labelSelector": label_selector} if label_selector else None
        return self._items(_namespaced("api/v1", namespace, "secrets"), query)

    def list_autoscalers(self, namespace: str) -> list[Body]:
        path = _namespaced("apis/autoscaling/v2", namespace, "horizontalpodautoscalers")
        return self._items(path)

    # -- Services, Endpoints, ConfigMaps and pod labels: the other strategies --

    def get_config_map(self, namespace: str, name: str) -> Body:
        return self._json("GET", _namespaced("api/v1", namespace, "configmaps", name))

    def get_service(self, namespace: str, name: str) -> Body:
        return self._json("GET", _namespaced("api/v1", namespace, "services", name))

    def get_endpoints(self, namespace: str, name: str) -> Body:
        return self._json("GET", _namespaced("api/v1", namespace, "endpoints", name))

    def json_patch_service(self, namespace: str, name: str, ops: list[Body]) -> Body:
        """A JSON patch of a Service; a failed `test` op is a Conflict (see Deployments)."""
        path = _namespaced("api/v1", namespace, "services", name)
        return self._guarded_json_patch(
            path, self.get_service, namespace, name, ops, subject=f"{name}: "
        )

    def json_patch_config_map(self, namespace: str, name: str, ops: list[Body]) -> Body:
        """A JSON patch of a ConfigMap; a failed `test` op is a Conflict."""
        path = _namespaced("api/v1", namespace, "configmaps", name)
        return self._guarded_json_patch(
            path, self.get_config_map, namespace, name, ops, subject=f"{name}: "
        )

    # -- GitOps owners (Flux, Argo CD): any namespaced custom object --------------

    def get_custom(self, api: str, namespace: str, plural: str, name: str) -> Body | None:
        """A custom object (`api`: `apis/GROUP/VERSION`); None when it, or its kind,
        does not exist here."""
        try:
            return _raw(self._send("GET", _namespaced(api, namespace, plural, name)))
        except ApiException as err:
            if err.status == 404:
                return None
            raise translate(err) from err
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise translate(err) from err

    def json_patch_custom(
        self, api: str, namespace: str, plural: str, name: str, ops: list[Body], dry_run: bool
    ) -> Body:
        """A JSON patch of a custom object; `dry_run`: checked and authorized by the
        API server, never stored (whether rollbot may make it)."""
        query = {"dryRun": "All"} if dry_run else None
        path = _namespaced(api, namespace, plural, name)
        return self._json("PATCH", path, query=query, body=ops, content_type=JSON_PATCH)

    # -- Jobs: a schema step's backup, downgrade and check ----------------------

    def create_job(self, namespace: str, body: Body) -> Body:
        """Create a Job; one of that name already there is a Conflict."""
        path = _namespaced("apis/batch/v1", namespace, "jobs")
        return self._json("POST", path, body=body)

    def get_job(self, namespace: str, name: str) -> Body:
        return self._json("GET", _namespaced("apis/batch/v1", namespace, "jobs", name))

    def delete_job(self, namespace: str, name: str) -> None:
        """Delete a Job and its pods (background propagation, as kubectl does)."""
        path = _namespaced("apis/batch/v1", namespace, "jobs", name)
        self._json("DELETE", path, body={"propagationPolicy": "Background"})

    def merge_patch_pod(self, namespace: str, name: str, patch: Body) -> Body:
        """A JSON merge patch of a pod (labels: `kubectl label --overwrite`)."""
        path = _namespaced("api/v1", namespace, "pods", name)
        return self._json("PATCH", path, body=patch, content_type=MERGE_PATCH)

    # -- Argo Rollouts: the custom objects of argoproj.io ----------------------

    def get_rollout(self, namespace: str, name: str) -> Body:
        path = _namespaced(ARGO, namespace, "rollouts", name)
        return self._json("GET", path)

    def json_patch_rollout(self, namespace: str, name: str, ops: list[Body]) -> Body:
        """A JSON patch of a Rollout's spec (an undo); a failed `test` op is a Conflict."""
        path = _namespaced(ARGO, namespace, "rollouts", name)
        return self._guarded_json_patch(
            path, self.get_rollout, namespace, name, ops, subject=f"rollout {name}: "
        )

    def merge_patch_rollout_status(self, namespace: str, name: str, patch: Body) -> Body:
        """A merge patch of a Rollout's status subresource (`{"status": {"abort": true}}`)."""
        path = _namespaced(ARGO, namespace, "rollouts", name) + "/status"
        return self._json("PATCH", path, body=patch, content_type=MERGE_PATCH)

    def list_analysis_runs(self, namespace: str, label_selector: str = "") -> list[Body]:
        query = {"labelSelector": label_selector} if label_selector else None
        return self._items(_namespaced(ARGO, namespace, "analysisruns"), query)


def _event(line: str) -> tuple[str, Body]:
    """One line of a watch: (type, object); an ERROR event raises the ApiException
    its Status stands for (410 Gone: the resourceVersion is too old)."""
    try:
        event = json.loads(line)
    except ValueError as err:
        raise ApiUnavailable(f"unexpected watch event from the API ({err})") from err
    obj = event.get("object") if isinstance(event, dict) else None
    if not isinstance(obj, dict):
        raise ApiUnavailable("unexpected watch event from the API")
    if event.get("type") == "ERROR":
        reason = f"{obj.get('reason')}: {obj.get('message')}"
        raise ApiException(status=obj.get("code"), reason=reason)
    return str(event.get("type")), obj


def selector_string(selector: Body) -> str:
    """A label selector (matchLabels + matchExpressions) as the API's query string."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            raise InvalidInput(f"unsupported selector operator {op!r}")
    return ",".join(parts)
