"""What `rollbot serve` and `rollbot worker` run on, built from the environment
(DESIGN.md's table: `ROLLBOT_CONFIG`, `REDIS_URL`, `KUBECONFIG`, `ROLLBOT_HELM`):
the config, the store, the Kubernetes client and the helm settings.

The clients themselves (kubernetes, urllib3, redis) stay behind this module, so the
Slack side builds a runtime, asks it whether it is ready, and never imports them.
Anything that keeps it from starting is a `StartupError` with one line to print.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import redis
import urllib3
from kubernetes.client.exceptions import ApiException

from bot.config import RollbotConfig, load_config
from bot.errors import PermanentError, RollbotError, TemporaryError
from bot.kube import Kube, translate
from bot.notify.destinations import missing_secrets
from bot.store import RollbackStore, connect
from bot.strategies import HelmSettings


class StartupError(RollbotError):
    """rollbot cannot start: `str()` is one line that says why, `exit_code` how it ends."""

    code = "startup"

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(" ".join(message.split()))  # one line, whatever the cause wrote
        self.exit_code = exit_code


@dataclass(frozen=True)
class Runtime:
    config: RollbotConfig
    store: RollbackStore
    kube: Kube
    helm: HelmSettings


def helm_from_environment(kubeconfig: str | None) -> HelmSettings:
    """The helm binary ($ROLLBOT_HELM or helm on PATH) with rollbot's own kubeconfig
    (none in a pod: helm then uses the service account, as rollbot does)."""
    return HelmSettings(
        binary=os.environ.get("ROLLBOT_HELM", "helm"),
        kubeconfig=kubeconfig or os.environ.get("KUBECONFIG") or None,
    )


def runtime_from_environment(
    kubeconfig: str | None = None, config_file: str | None = None
) -> Runtime:
    """The config, a store whose Redis answers and a Kubernetes client, or a StartupError.

    Kubernetes is not called here: an apiserver that is down at start is what
    /readyz reports, not a reason to crash-loop."""
    try:
        config = load_config(config_file)
        kube = Kube.from_kubeconfig(kubeconfig)
    except PermanentError as err:
        raise StartupError(str(err)) from err
    except TemporaryError as err:  # no kubeconfig, no service account
        raise StartupError(str(err), exit_code=3) from err
    if problem := missing_secrets(config.notify, os.environ):
        raise StartupError(problem)
    where = os.environ.get("REDIS_URL") or "the embedded Redis"
    try:
        client = connect()
        client.ping()
    except (redis.RedisError, OSError) as err:
        raise StartupError(f"Redis ({where}) cannot be reached: {err}", exit_code=3) from err
    store = RollbackStore(client, tell_drills=config.notify.include_drills)
    return Runtime(config, store, kube, helm_from_environment(kubeconfig))


def not_ready(store: RollbackStore, kube: object, config: RollbotConfig) -> str | None:
    """Why this replica cannot do its work, if it cannot: Redis or Kubernetes down."""
    try:
        store.redis.ping()
    except redis.RedisError as err:
        return f"redis: {err}"
    # The cheapest call the chart's Role allows; fakes without the API are not checked.
    if not isinstance(kube, Kube):
        return None
    namespace = (config.allowed_namespaces or [config.default_namespace])[0]
    try:
        kube.probe(namespace)
    except (ApiException, urllib3.exceptions.HTTPError, OSError) as err:
        return f"kubernetes: {translate(err)}"
    return None


def forget_inherited_connections(kube: object) -> None:
    """In a forked process: drop the parent's pooled connections to the apiserver.

    The pool's sockets are the parent's too; a request on one would interleave with
    the parent's. Closing our copies leaves the parent's connections up (redis-py
    notices a fork by itself)."""
    if isinstance(kube, Kube):
        pool: urllib3.PoolManager = kube.api_client.rest_client.pool_manager
        pool.clear()
