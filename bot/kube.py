"""Kubernetes access through the official client, always as raw JSON dicts.

The client's model classes drop fields they do not know, and a template written
back through them can lose parts of itself; so every read here asks for the raw
response (`_preload_content=False`) and every object crosses this boundary as a
plain dict. API failures are translated into rollbot's typed errors.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import cached_property
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

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

Body = dict[str, Any]
T = TypeVar("T")


def load_api_client(kubeconfig: str | None = None, context: str | None = None) -> client.ApiClient:
    """An ApiClient from a kubeconfig file, or from the pod's service account."""
    if kubeconfig is None:
        try:
            config.load_incluster_config()
            return client.ApiClient()
        except config.ConfigException:
            pass
    try:
        cfg = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg)
    except (config.ConfigException, OSError) as err:
        raise ApiUnavailable(f"no usable kubeconfig ({err})") from err
    return client.ApiClient(configuration=cfg)


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


def _call(
    fn: Callable[..., Any],
    *args: Any,
    kind: str = "",
    namespace: str = "",
    name: str = "",
    **kwargs: Any,
) -> Any:
    kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
    try:
        return fn(*args, **kwargs)
    except (ApiException, urllib3.exceptions.HTTPError, OSError) as err:
        raise translate(err, kind=kind, namespace=namespace, name=name) from err


def _items(list_call: Callable[..., Any], namespace: str, label_selector: str = "") -> list[Body]:
    """The items of a namespaced list call, as raw dicts."""
    selector = {"label_selector": label_selector} if label_selector else {}
    response = _call(list_call, namespace, _preload_content=False, **selector)
    items: list[Body] = _raw(response).get("items", [])
    return items


def _raw(response: Any) -> Body:
    data = json.loads(response.data)
    if not isinstance(data, dict):
        raise ApiUnavailable("unexpected response body from the API")
    return data


class Kube:
    """The Kubernetes calls rollbot makes, with raw bodies and typed errors."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.api_client = api_client

    # Built on first use: each API class loads the client's models for its group
    # (~0.3 s for core/v1), which `rollbot rollback` of a Deployment never needs.
    @cached_property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api_client)

    @cached_property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api_client)

    @classmethod
    def from_kubeconfig(cls, kubeconfig: str | None = None, context: str | None = None) -> Kube:
        return cls(load_api_client(kubeconfig, context))

    # -- Deployments ---------------------------------------------------------

    def get_deployment(self, namespace: str, name: str) -> Body:
        response = _call(
            self.apps.read_namespaced_deployment,
            name,
            namespace,
            _preload_content=False,
            kind="deployment",
            namespace=namespace,
            name=name,
        )
        return _raw(response)

    def list_deployments(self, namespace: str, label_selector: str = "") -> list[Body]:
        return _items(self.apps.list_namespaced_deployment, namespace, label_selector)

    def list_replica_sets(self, namespace: str, label_selector: str) -> list[Body]:
        return _items(self.apps.list_namespaced_replica_set, namespace, label_selector)

    def json_patch_deployment(self, namespace: str, name: str, ops: list[Body]) -> Body:
        """Apply a JSON patch (a list body is sent as application/json-patch+json).

        A failed `test` op comes back as a bare 422 "Invalid"; when a tested
        value is no longer what the object holds, that is reported as a Conflict.
        """
        try:
            response = self.apps.patch_namespaced_deployment(
                name, namespace, ops, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
            )
        except ApiException as err:
            tests = [op for op in ops if op.get("op") == "test"]
            if err.status == 422 and tests:
                current = self.get_deployment(namespace, name)
                changed = [
                    op["path"] for op in tests if pointer_value(current, op["path"]) != op["value"]
                ]
                if changed:
                    raise Conflict(f"{', '.join(changed)} changed meanwhile") from err
            raise translate(err, kind="deployment", namespace=namespace, name=name) from err
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise translate(err) from err
        return _raw(response)

    def watch_deployment(
        self, namespace: str, name: str, resource_version: str, timeout_seconds: int
    ) -> Iterator[tuple[str, Body]]:
        """(event type, raw Deployment) for each change after `resource_version`."""
        w = watch.Watch()
        try:
            stream = w.stream(
                self.apps.list_namespaced_deployment,
                namespace,
                field_selector=f"metadata.name={name}",
                resource_version=resource_version,
                timeout_seconds=max(1, timeout_seconds),
                allow_watch_bookmarks=False,
                # The server ends the watch at timeout_seconds; a connection that went
                # silent (half-open) is given up a little after that.
                _request_timeout=(REQUEST_TIMEOUT[0], max(1, timeout_seconds) + 15),
            )
            for event in stream:
                yield str(event["type"]), dict(event["raw_object"])
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as err:
            raise translate(err, kind="deployment", namespace=namespace, name=name) from err
        finally:
            w.stop()

    # -- Pods ----------------------------------------------------------------

    def list_pods(self, namespace: str, label_selector: str) -> list[Body]:
        return _items(self.core.list_namespaced_pod, namespace, label_selector)

    def list_warning_events(self, namespace: str) -> list[Body]:
        response = _call(
            self.core.list_namespaced_event,
            namespace,
            field_selector="type=Warning",
            _preload_content=False,
        )
        items: list[Body] = _raw(response).get("items", [])
        return items

    def pod_log(
        self, namespace: str, pod: str, since_seconds: int, tail: int, container: str | None = None
    ) -> str:
        """A container's recent log (the only one's when `container` is None)."""
        extra = {"container": container} if container else {}
        response = _call(
            self.core.read_namespaced_pod_log,
            pod,
            namespace,
            since_seconds=since_seconds,
            tail_lines=tail,
            _preload_content=False,
            **extra,
        )
        return bytes(response.data).decode(errors="replace")

    def list_services(self, namespace: str) -> list[Body]:
        return _items(self.core.list_namespaced_service, namespace)

    def list_secrets(self, namespace: str, label_selector: str) -> list[Body]:
        return _items(self.core.list_namespaced_secret, namespace, label_selector)

    def get_config_map(self, namespace: str, name: str) -> Body:
        response = _call(
            self.core.read_namespaced_config_map, name, namespace, _preload_content=False
        )
        return _raw(response)

    def list_autoscalers(self, namespace: str) -> list[Body]:
        autoscaling = client.AutoscalingV2Api(self.api_client)
        return _items(autoscaling.list_namespaced_horizontal_pod_autoscaler, namespace)

    # -- Services, Endpoints, ConfigMaps and pod labels: the other strategies -----------

    def get_service(self, namespace: str, name: str) -> Body:
        response = _call(self.core.read_namespaced_service, name, namespace, _preload_content=False)
        return _raw(response)

    def json_patch_service(self, namespace: str, name: str, ops: list[Body]) -> Body:
        """A JSON patch of a Service; a failed `test` op is a Conflict (see Deployments)."""
        return self._guarded_json_patch(
            self.core.patch_namespaced_service, self.get_service, namespace, name, ops
        )

    def get_endpoints(self, namespace: str, name: str) -> Body:
        response = _call(
            self.core.read_namespaced_endpoints, name, namespace, _preload_content=False
        )
        return _raw(response)

    def json_patch_config_map(self, namespace: str, name: str, ops: list[Body]) -> Body:
        """A JSON patch of a ConfigMap; a failed `test` op is a Conflict."""
        return self._guarded_json_patch(
            self.core.patch_namespaced_config_map, self.get_config_map, namespace, name, ops
        )

    def merge_patch_pod(self, namespace: str, name: str, patch: Body) -> Body:
        """A JSON merge patch of a pod (labels: `kubectl label --overwrite`)."""
        response = _call(
            self.core.patch_namespaced_pod,
            name,
            namespace,
            patch,
            _content_type="application/merge-patch+json",
            _preload_content=False,
        )
        return _raw(response)

    def _guarded_json_patch(
        self,
        patch: Callable[..., Any],
        read: Callable[[str, str], Body],
        namespace: str,
        name: str,
        ops: list[Body],
    ) -> Body:
        try:
            response = patch(name, namespace, ops, _preload_content=False)
        except ApiException as err:
            tests = [op for op in ops if op.get("op") == "test"]
            if err.status == 422 and tests:
                current = read(namespace, name)
                changed = [
                    op["path"] for op in tests if pointer_value(current, op["path"]) != op["value"]
                ]
                if changed:
                    raise Conflict(f"{name}: {', '.join(changed)} changed meanwhile") from err
            raise translate(err, namespace=namespace, name=name) from err
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise translate(err) from err
        return _raw(response)


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
