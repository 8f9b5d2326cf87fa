"""Fixtures over the real control plane: one per test session, a namespace per test."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator

import pytest
import redis
from kubernetes import client

from bot.config import RollbotConfig
from bot.kube import Kube
from bot.store import RollbackStore, connect
from bot.strategies import HelmSettings
from handlers.server import RollbotServer
from testbed.argo_rollouts import ArgoRollouts
from testbed.argocd import ArgoCd
from testbed.binaries import BuildError
from testbed.controlplane import ControlPlane, ControlPlaneError
from testbed.flux import Flux, FluxError
from testbed.git_http import GitServerError
from testbed.postgres import PostgresError, PostgresServer
from testbed.redis_server import RedisServer, RedisServerError
from testbed.slack_api import FakeSlackApi
from tests.conftest import unavailable
from tests.integration.rollouts import Rollouts
from tests.integration.slack_helpers import SECRET
from tests.integration.workloads import Workloads

#: The password the `flux` fixture's Git server takes for a push (any user name).
FLUX_GIT_TOKEN = "testbed-git-token"  # noqa: S105 - a test server's, on loopback


def running_control_plane() -> Iterator[ControlPlane]:
    """A started control plane, stopped after; a fixture's body (`yield from`)."""
    plane = ControlPlane()
    try:
        plane.start()
    except (ControlPlaneError, BuildError, OSError) as err:
        unavailable(f"the Kubernetes control plane could not start: {err}")
    yield plane
    plane.stop()


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    yield from running_control_plane()


@pytest.fixture(scope="session")
def flux(control_plane: ControlPlane) -> Iterator[Flux]:
    """Flux's source- and kustomize-controller on the control plane, with a Git server
    (pushes need basic auth with FLUX_GIT_TOKEN as the password); see testbed/flux.py."""
    assert control_plane.bin_dir is not None
    handle = Flux(
        control_plane.kubeconfig, control_plane.bin_dir / "kubectl", git_push_token=FLUX_GIT_TOKEN
    )
    try:
        handle.start()
    except (FluxError, GitServerError, BuildError, OSError) as err:
        unavailable(f"Flux could not start: {err}")
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def argocd(control_plane: ControlPlane) -> ArgoCd:
    """Argo CD's Application CRD installed (no controller); see testbed/argocd.py."""
    assert control_plane.bin_dir is not None
    handle = ArgoCd(control_plane.kubeconfig, control_plane.bin_dir / "kubectl")
    try:
        return handle.start()
    except (FluxError, BuildError, OSError) as err:
        unavailable(f"Argo CD's CRDs could not be installed: {err}")
        raise


@pytest.fixture(scope="session")
def kube(control_plane: ControlPlane) -> Kube:
    return Kube.from_kubeconfig(str(control_plane.kubeconfig))


def _new_namespace(kube: Kube, hint: str) -> str:
    base = re.sub(r"[^a-z0-9-]+", "-", hint.lower()).strip("-")[:40].strip("-")
    name = f"{base}-{secrets.token_hex(3)}"
    kube.core.create_namespace({"metadata": {"name": name}})
    return name


@pytest.fixture
def namespace(kube: Kube, request: pytest.FixtureRequest) -> Iterator[str]:
    name = _new_namespace(kube, request.node.name.removeprefix("test_"))
    yield name
    kube.core.delete_namespace(name)


@pytest.fixture
def other_namespace(kube: Kube, request: pytest.FixtureRequest) -> Iterator[str]:
    name = _new_namespace(kube, "twin-" + request.node.name.removeprefix("test_"))
    yield name
    kube.core.delete_namespace(name)


@pytest.fixture
def workloads(kube: Kube, namespace: str) -> Workloads:
    return Workloads(kube.api_client, namespace)


@pytest.fixture
def api_client(kube: Kube) -> client.ApiClient:
    return kube.api_client


@pytest.fixture(scope="session")
def argo_rollouts(control_plane: ControlPlane) -> Iterator[ArgoRollouts]:
    """The real Argo Rollouts controller (built on first use), its CRDs and plugin,
    and the `web` metric endpoint its analyses ask; one per session."""
    argo = ArgoRollouts(control_plane)
    try:
        argo.start()
    except (ControlPlaneError, BuildError, OSError) as err:
        unavailable(f"the Argo Rollouts controller could not start: {err}")
    yield argo
    argo.stop()


@pytest.fixture
def rollouts(argo_rollouts: ArgoRollouts, kube: Kube, namespace: str) -> Rollouts:
    return Rollouts(kube.api_client, namespace, argo_rollouts)


@pytest.fixture
def twin_rollouts(argo_rollouts: ArgoRollouts, kube: Kube, other_namespace: str) -> Rollouts:
    """Rollouts in a second namespace: the twin a parity test hands to the plugin."""
    return Rollouts(kube.api_client, other_namespace, argo_rollouts)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        server.start()
    except (RedisServerError, OSError) as err:
        unavailable(f"redis-server could not start: {err}")
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server: RedisServer) -> redis.Redis:
    client = connect(redis_server.url)
    client.flushdb()
    return client


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL for the session: `.dsn`, `.create_database(name)`, `.tool("pg_dump")`."""
    server = PostgresServer()
    try:
        server.start()
    except (PostgresError, OSError) as err:
        unavailable(f"PostgreSQL could not start: {err}")
    yield server
    server.stop()


@pytest.fixture
def postgres_dsn(postgres: PostgresServer, request: pytest.FixtureRequest) -> str:
    """A fresh, empty database of its own for one test: its DSN (libpq URI)."""
    hint = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")[:40]
    return postgres.create_database(f"t_{hint}_{secrets.token_hex(3)}")


@pytest.fixture
def slack() -> Iterator[FakeSlackApi]:
    with FakeSlackApi() as api:
        yield api


@pytest.fixture
def make_bot(slack, redis_client, kube) -> Iterator[Callable[..., RollbotServer]]:
    servers: list[RollbotServer] = []

    def start(
        config: RollbotConfig | None = None, workers: int = 1, helm: HelmSettings | None = None
    ) -> RollbotServer:
        server = RollbotServer(
            config or RollbotConfig(),
            RollbackStore(redis_client),
            kube,
            token="xoxb-test",
            signing_secret=SECRET,
            slack_api_url=slack.base_url,
            workers=workers,
            helm=helm,
        )
        server.start_http(port=0)
        server.start_workers()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
