"""The Helm chart: it lints, renders objects the real apiserver accepts, installs,
and gives its ServiceAccount what rollbot does in the cluster and nothing more.

Everything is checked against the test control plane: rendered objects with a
server-side dry run, RBAC with `kubectl auth can-i` as the ServiceAccount, and
rollbot's own calls (a whole rollback included) with a token of that
ServiceAccount.
"""

from __future__ import annotations

import base64
import inspect
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from kubernetes.client.rest import ApiException

from bot.config import RollbotConfig, load_config
from bot.errors import Forbidden, RollbotError
from bot.kube import Kube, translate
from bot.records import RollbackState, requested
from bot.store import RollbackStore, connect
from bot.strategies import Context, HelmSettings, Request
from bot.strategies import get as get_strategy
from handlers.server import RollbotServer
from testbed.controlplane import free_port
from testbed.redis_server import RedisServer
from tests.integration.strategy_helpers import Recorder, rollback
from tests.integration.workloads import Workloads

pytestmark = pytest.mark.cluster

CHART = Path(__file__).resolve().parents[2] / "helm" / "rollbot"
RELEASE = "rb"
SERVICE_ACCOUNT = "rb-rollbot"

#: What rollbot does in the cluster (bot/kube.py): (API group, resource, verb).
ROLLBOT_NEEDS = {
    ("apps", "deployments", "get"),
    ("apps", "deployments", "list"),
    ("apps", "deployments", "watch"),
    ("apps", "deployments", "patch"),
    ("apps", "replicasets", "list"),
    ("", "pods", "list"),
    ("", "pods/log", "get"),
    ("", "events", "list"),
    ("", "services", "list"),
    ("", "configmaps", "get"),
    ("autoscaling", "horizontalpodautoscalers", "list"),
    # blue-green, config restore and divert
    ("", "services", "get"),
    ("", "services", "patch"),
    ("", "endpoints", "get"),
    ("", "configmaps", "patch"),
    ("", "pods", "patch"),
}
#: The schema steps' Jobs, granted only when a service declares its migrations.
MIGRATIONS_NEED = {("batch", "jobs", verb) for verb in ("create", "get", "delete")}
#: What `helm rollback` does to helm's release Secrets (pkg/storage), granted only in
#: the namespaces of the releases rollbot may roll back.
HELM_STRATEGY_NEEDS = {
    ("", "secrets", "list"),  # history: a label query, which RBAC cannot narrow
    ("", "secrets", "create"),  # the new revision's record (RBAC cannot narrow by name)
    ("", "secrets", "get"),  # the target revision ...
    ("", "secrets", "update"),  # ...the old one marked superseded, the new one deployed
    ("", "secrets", "delete"),  # revisions past --history-max (10) pruned
}
#: What a GitOps hold does (bot/gitops), granted only where the Flux and Argo CD
#: objects live, and only with rbac.gitops.enabled.
GITOPS_NEEDS = {
    ("kustomize.toolkit.fluxcd.io", "kustomizations", "get"),
    ("kustomize.toolkit.fluxcd.io", "kustomizations", "patch"),
    ("helm.toolkit.fluxcd.io", "helmreleases", "get"),
    ("helm.toolkit.fluxcd.io", "helmreleases", "patch"),
    ("argoproj.io", "applications", "get"),
    ("argoproj.io", "applications", "patch"),
    ("source.toolkit.fluxcd.io", "gitrepositories", "get"),
}
#: Of those, the verbs bound to the named releases' Secrets (resourceNames).
HELM_BY_NAME = {"get", "update", "delete"}
#: What the Argo Rollouts strategy does (bot/kube.py), with strategies.argoRollouts.enabled.
ARGO_NEEDS = {
    ("argoproj.io", "rollouts", "get"),
    ("argoproj.io", "rollouts", "patch"),  # undo: spec.template
    ("argoproj.io", "rollouts/status", "patch"),  # abort: status.abort
    ("argoproj.io", "analysisruns", "list"),
}
#: Near misses of ROLLBOT_NEEDS and classic escalations: each must be refused.
NEVER = [
    ("delete", "deployments"),
    ("create", "deployments"),
    ("update", "deployments"),
    ("patch", "deployments", "scale"),
    ("get", "replicasets"),
    ("delete", "replicasets"),
    ("get", "pods"),
    ("delete", "pods"),
    ("create", "pods", "exec"),
    ("list", "configmaps"),
    ("update", "configmaps"),
    ("delete", "configmaps"),
    ("update", "services"),
    ("delete", "services"),
    ("update", "pods"),
    ("patch", "pods", "status"),
    ("list", "endpoints"),
    ("patch", "endpoints"),
    ("create", "secrets"),
    ("patch", "horizontalpodautoscalers.autoscaling"),
    ("create", "roles.rbac.authorization.k8s.io"),
    ("create", "rolebindings.rbac.authorization.k8s.io"),
    ("escalate", "roles.rbac.authorization.k8s.io"),
    ("impersonate", "serviceaccounts"),
]
#: A record's way from requested to succeeded, for /metrics to count.
RUN_TO_SUCCESS = (
    RollbackState.ASSESSED,
    RollbackState.AWAITING_APPROVAL,
    RollbackState.APPROVED,
    RollbackState.BACKING_UP,
    RollbackState.ROLLING_BACK,
    RollbackState.VERIFYING,
    RollbackState.SUCCEEDED,
)


# -- running helm and kubectl against the test control plane ---------------------------


@pytest.fixture(scope="module")
def tools(control_plane, tmp_path_factory) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs `helm …` or `kubectl …` as the admin, with helm's state in a temporary folder."""
    home = tmp_path_factory.mktemp("helm-home")
    env = {
        **os.environ,
        "KUBECONFIG": str(control_plane.kubeconfig),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }

    def run(
        tool: str, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(control_plane.bin_dir / tool), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{tool} {' '.join(args)} failed:\n{result.stderr}")
        return result

    return run


@pytest.fixture(scope="module")
def kube_version(tools) -> str:
    return str(
        json.loads(tools("kubectl", "version", "-o", "json").stdout)["serverVersion"]["gitVersion"]
    )


def values_file(tmp_path: Path, values: dict[str, Any]) -> str:
    path = tmp_path / f"values-{len(list(tmp_path.glob('values-*')))}.yaml"
    path.write_text(yaml.safe_dump(values))
    return str(path)


def render(tools, kube_version: str, namespace: str, values_path: str | None = None) -> list[dict]:
    args = ["template", RELEASE, str(CHART), "--namespace", namespace, "--kube-version"]
    args += [kube_version] + (["--values", values_path] if values_path else [])
    return [doc for doc in yaml.safe_load_all(tools("helm", *args).stdout) if doc]


def dry_run_on_server(tools, objects: list[dict]) -> None:
    """Every object passes the apiserver's own validation, unknown fields refused."""
    manifest = yaml.safe_dump_all(objects)
    out = tools(
        "kubectl", "apply", "--dry-run=server", "--validate=strict", "-f", "-", stdin=manifest
    ).stdout
    accepted = [line for line in out.splitlines() if line.endswith("(server dry run)")]
    assert len(accepted) == len(objects), out


def of_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def granted(role: dict) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def container_of(deployment: dict) -> dict:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def env_of(deployment: dict) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container_of(deployment)["env"]}


def release_secrets(release: str, revisions: int) -> list[str]:
    return [f"sh.helm.release.v1.{release}.v{n}" for n in range(1, revisions + 1)]


def named(role: dict) -> dict[tuple[str, str, str], list[str]]:
    """The (group, resource, verb) a role grants on named objects only, with the names."""
    return {
        (group, resource, verb): rule["resourceNames"]
        for rule in role["rules"]
        if rule.get("resourceNames")
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def full_values(listed: str, also_listed: str, *, helm_strategy: bool) -> dict[str, Any]:
    return {
        "image": {"repository": "registry.example/rollbot", "tag": "1.2.3"},
        "config": {
            "namespaces": [listed],
            "default_namespace": listed,
            "approvers": ["U0123ABCD"],
            "environments": {"prod": {"namespaces": [also_listed], "approvals": 2}},
            "rollout_timeout_seconds": 120,
            # A Helm release of the catalog: the chart grants on its Secrets too.
            "services": {"shop": {"namespace": also_listed, "strategy": "helm"}},
        },
        "reportTemplates": {"slack_alert.txt.j2": "{{ service }} rolled back\n"},
        "bot": {
            "replicas": 3,
            "httpProcesses": 2,
            "extraEnv": [{"name": "ROLLBOT_ACTOR", "value": "rollbot"}],
        },
        "worker": {"enabled": True, "replicas": 2},
        "ingress": {"enabled": True, "className": "nginx", "tlsSecretName": "rollbot-tls"},
        "redis": {"existingSecret": "rollbot-redis"},
        "rbac": {"clusterRole": False},
        "strategies": {
            "argoRollouts": {"enabled": True},
            "helm": {
                "enabled": helm_strategy,
                "releases": [{"name": "todo-app", "namespace": listed}],
                "maxRevision": 20,
                "extraRules": [
                    {"apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": ["get", "patch"]}
                ],
            },
        },
    }


# -- rendering ----------------------------------------------------------------------------


def test_chart_lints_clean_with_default_and_full_values(tools, tmp_path):
    tools("helm", "lint", "--strict", str(CHART))
    full = values_file(tmp_path, full_values("shop", "prod", helm_strategy=True))
    tools("helm", "lint", "--strict", str(CHART), "--values", full)


def test_a_typo_in_values_fails_instead_of_being_ignored(tools, kube_version):
    args = ["template", str(CHART), "--kube-version", kube_version, "--set", "bot.replica=3"]
    result = tools("helm", *args, check=False)
    assert result.returncode != 0
    assert "additional properties 'replica' not allowed" in result.stderr


def test_default_values_render_objects_the_apiserver_accepts(
    tools, kube_version, namespace, tmp_path
):
    objects = render(tools, kube_version, namespace)
    dry_run_on_server(tools, objects)

    kinds = sorted(o["kind"] for o in objects)
    assert kinds == sorted(
        ["ConfigMap", "Deployment", "NetworkPolicy", "PodDisruptionBudget", "Role", "RoleBinding"]
        + ["Service", "Service", "ServiceAccount", "StatefulSet", "ConfigMap", "Secret"]
        + ["Secret"]  # the store key
        + ["ConfigMap"]  # the Grafana dashboard
    )
    (dashboard,) = [c for c in of_kind(objects, "ConfigMap") if "rollbot.json" in c["data"]]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["rollbot.json"]) == json.loads(
        (CHART / "dashboards" / "rollbot.json").read_text()
    )
    (bot,) = of_kind(objects, "Deployment")
    pod = bot["spec"]["template"]["spec"]
    container = container_of(bot)
    assert bot["spec"]["replicas"] == 2
    # The worker runs inside the bot.
    assert container["args"] == ["serve", "--port=3000", "--http-processes=2"]
    env = {e["name"]: e for e in container["env"]}
    assert env["ROLLBOT_STORE_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": f"{RELEASE}-rollbot-store-key",
        "key": "ROLLBOT_STORE_KEY",
    }
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert pod["serviceAccountName"] == SERVICE_ACCOUNT
    env = env_of(bot)
    assert env["SLACK_BOT_TOKEN"]["secretKeyRef"]["key"] == "SLACK_BOT_TOKEN"
    assert env["SLACK_SIGNING_SECRET"]["secretKeyRef"]["key"] == "SLACK_SIGNING_SECRET"
    assert "SLACK_APP_TOKEN" not in env
    # The bundled StatefulSet, with the password the chart generated.
    assert env["REDIS_PASSWORD"]["secretKeyRef"] == {
        "name": "rb-rollbot-redis",
        "key": "REDIS_PASSWORD",
    }
    assert env["REDIS_URL"] == "redis://:$(REDIS_PASSWORD)@rb-rollbot-redis:6379/0"
    (role,) = of_kind(objects, "Role")
    assert role["metadata"]["namespace"] == "default"  # what the default config lists
    assert granted(role) == ROLLBOT_NEEDS
    # The file rollbot reads is a valid config, where ROLLBOT_CONFIG says it is.
    assert env["ROLLBOT_CONFIG"] == "/etc/rollbot/config/config.yaml"
    (config_map,) = [c for c in of_kind(objects, "ConfigMap") if "config.yaml" in c["data"]]
    assert config_map["metadata"]["name"] in [v["configMap"]["name"] for v in pod["volumes"][:1]]
    config_file = tmp_path / "config.yaml"
    config_file.write_text(config_map["data"]["config.yaml"])
    assert load_config(config_file).allowed_namespaces == ["default"]


@pytest.mark.parametrize("helm_strategy", [False, True], ids=["helm-off", "helm-on"])
def test_full_values_render_objects_the_apiserver_accepts(
    tools, kube_version, namespace, other_namespace, tmp_path, helm_strategy
):
    values = full_values(namespace, other_namespace, helm_strategy=helm_strategy)
    objects = render(tools, kube_version, namespace, values_file(tmp_path, values))
    dry_run_on_server(tools, objects)

    assert not of_kind(objects, "StatefulSet")  # external Redis: nothing bundled
    bot, worker = sorted(of_kind(objects, "Deployment"), key=lambda d: d["metadata"]["name"])
    assert container_of(bot)["args"] == [
        "serve",
        "--port=3000",
        "--http-processes=2",
        "--no-worker",
    ]
    assert container_of(bot)["image"] == "registry.example/rollbot:1.2.3"
    assert container_of(worker)["args"] == ["worker", "--port=3000"]
    assert container_of(worker)["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert worker["spec"]["replicas"] == 2 and bot["spec"]["replicas"] == 3
    for deployment in (bot, worker):
        assert env_of(deployment)["REDIS_URL"]["secretKeyRef"] == {
            "name": "rollbot-redis",
            "key": "REDIS_URL",
        }
    # A Role and its binding in each namespace the config names, environments included.
    roles = [r for r in of_kind(objects, "Role") if not r["metadata"]["name"].endswith("-helm")]
    assert sorted(r["metadata"]["namespace"] for r in roles) == sorted([namespace, other_namespace])
    assert not of_kind(objects, "ClusterRole") and not of_kind(objects, "ClusterRoleBinding")
    for role in roles:
        assert granted(role) == ROLLBOT_NEEDS | ARGO_NEEDS
    # The Helm strategy's own Role, where its releases are: release Secrets (the
    # releases' revisions by name) and the extra rules.
    helm_roles = {
        r["metadata"]["namespace"]: r
        for r in of_kind(objects, "Role")
        if r["metadata"]["name"].endswith("-helm")
    }
    if not helm_strategy:
        assert helm_roles == {} and not of_kind(objects, "ValidatingAdmissionPolicy")
    else:
        assert sorted(helm_roles) == sorted([namespace, other_namespace])
        for place, release in ((namespace, "todo-app"), (other_namespace, "shop")):
            role = helm_roles[place]
            assert granted(role) == HELM_STRATEGY_NEEDS | {
                ("batch", "cronjobs", "get"),
                ("batch", "cronjobs", "patch"),
            }
            assert named(role) == {
                ("", "secrets", verb): release_secrets(release, 20) for verb in HELM_BY_NAME
            }
        (policy,) = of_kind(objects, "ValidatingAdmissionPolicy")
        (policy_binding,) = of_kind(objects, "ValidatingAdmissionPolicyBinding")
        assert policy_binding["spec"]["policyName"] == policy["metadata"]["name"]
        assert policy_binding["spec"]["validationActions"] == ["Deny"]
    for binding in of_kind(objects, "RoleBinding"):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": namespace}
        ]
    config_map = next(c for c in of_kind(objects, "ConfigMap") if "config.yaml" in c["data"])
    config = RollbotConfig.model_validate(yaml.safe_load(config_map["data"]["config.yaml"]))
    assert config.environments["prod"].approvals == 2
    assert config.templates_dir == Path("/etc/rollbot/templates")


def test_cluster_role_only_when_asked_and_secrets_only_with_the_helm_strategy(
    tools, kube_version, namespace, tmp_path
):
    values = {"rbac": {"clusterRole": True}, "config": {"namespaces": []}}
    objects = render(tools, kube_version, namespace, values_file(tmp_path, values))
    dry_run_on_server(tools, objects)
    (cluster_role,) = of_kind(objects, "ClusterRole")
    assert granted(cluster_role) == ROLLBOT_NEEDS
    assert not of_kind(objects, "Role")

    # With a ClusterRole too, release Secrets only where the releases are.
    values["strategies"] = {
        "helm": {"enabled": True, "releases": [{"name": "web", "namespace": "shop"}]}
    }
    objects = render(tools, kube_version, namespace, values_file(tmp_path, values))
    (cluster_role,) = of_kind(objects, "ClusterRole")
    assert granted(cluster_role) == ROLLBOT_NEEDS
    (helm_role,) = of_kind(objects, "Role")
    assert helm_role["metadata"]["namespace"] == "shop"
    assert granted(helm_role) == HELM_STRATEGY_NEEDS

    # The Helm strategy with no release named: refuse rather than guess.
    values["strategies"] = {"helm": {"enabled": True}}
    result = tools(
        "helm", "template", str(CHART), "--kube-version", kube_version,
        "--values", values_file(tmp_path, values), check=False,
    )  # fmt: skip
    assert result.returncode != 0 and "strategies.helm.releases" in result.stderr

    # Neither a namespace to grant in nor a ClusterRole: refuse rather than grant nothing.
    refused = tools(
        "helm",
        "template",
        str(CHART),
        "--kube-version",
        kube_version,
        "--set",
        "config.namespaces=null",
        check=False,
    )
    assert refused.returncode != 0 and "rbac.clusterRole" in refused.stderr


def test_gitops_rights_only_when_enabled_and_only_where_the_owners_live(
    tools, kube_version, namespace, tmp_path
):
    objects = render(tools, kube_version, namespace)
    assert all(not granted(role) & GITOPS_NEEDS for role in of_kind(objects, "Role"))

    values = {"rbac": {"gitops": {"enabled": True, "namespaces": ["flux-system", "argocd"]}}}
    objects = render(tools, kube_version, namespace, values_file(tmp_path, values))
    gitops = [r for r in of_kind(objects, "Role") if granted(r) & GITOPS_NEEDS]
    assert sorted(r["metadata"]["namespace"] for r in gitops) == ["argocd", "flux-system"]
    assert all(granted(role) == GITOPS_NEEDS for role in gitops)
    others = [r for r in of_kind(objects, "Role") if r not in gitops]
    assert all(granted(role) == ROLLBOT_NEEDS for role in others)

    # The git token: a Secret mounted read-only in the bot and the workers, nothing more.
    values = {"gitops": {"tokenSecret": {"name": "rollbot-git", "key": "token"}}}
    objects = render(tools, kube_version, namespace, values_file(tmp_path, values))
    dry_run_on_server(tools, objects)
    for deployment in of_kind(objects, "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        (volume,) = [v for v in pod["volumes"] if v["name"] == "git-token"]
        assert volume["secret"]["secretName"] == "rollbot-git"
        assert volume["secret"]["items"] == [{"key": "token", "path": "token"}]
        (mount,) = [m for m in container_of(deployment)["volumeMounts"] if m["name"] == "git-token"]
        assert mount == {"name": "git-token", "mountPath": "/etc/rollbot/git", "readOnly": True}
    assert all(not granted(role) & {("", "secrets", "get")} for role in of_kind(objects, "Role"))

    values = {"rbac": {"gitops": {"enabled": True}}}
    result = tools(
        "helm", "template", str(CHART), "--kube-version", kube_version,
        "--values", values_file(tmp_path, values), check=False,
    )  # fmt: skip
    assert result.returncode != 0 and "rbac.gitops.namespaces" in result.stderr


def test_jobs_are_granted_only_when_a_service_declares_its_migrations(
    tools, kube_version, namespace, tmp_path
):
    service = {"namespace": namespace, "deployment": "todo-backend"}
    values: dict[str, Any] = {"config": {"namespaces": [namespace], "services": {"todo": service}}}
    (role,) = of_kind(render(tools, kube_version, namespace, values_file(tmp_path, values)), "Role")
    assert granted(role) == ROLLBOT_NEEDS

    service["migrations"] = {"version_from": {"env": "SCHEMA_VERSION"}, "approvers": ["S0DBAS"]}
    objects = render(tools, kube_version, namespace, values_file(tmp_path, values))
    dry_run_on_server(tools, objects)
    (role,) = of_kind(objects, "Role")
    assert granted(role) == ROLLBOT_NEEDS | MIGRATIONS_NEED


def test_socket_mode_needs_the_app_token_and_no_signing_secret(tools, kube_version, namespace):
    args = ["template", RELEASE, str(CHART), "-n", namespace, "--kube-version", kube_version]
    out = tools("helm", *args, "--set", "slack.socketMode=true").stdout
    objects = [o for o in yaml.safe_load_all(out) if o]
    dry_run_on_server(tools, objects)
    (bot,) = of_kind(objects, "Deployment")
    env = env_of(bot)
    assert env["SLACK_APP_TOKEN"]["secretKeyRef"]["key"] == "SLACK_APP_TOKEN"
    assert env["SLACK_SIGNING_SECRET"]["secretKeyRef"]["optional"] is True
    # Socket Mode still serves the probes over HTTP (and nothing else there).
    assert container_of(bot)["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container_of(bot)["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_notify_secrets_reach_the_bot_and_the_workers_from_the_named_secret(
    tools, kube_version, namespace, tmp_path
):
    keys = ["PAGERDUTY_ROUTING_KEY", "ROLLBOT_WEBHOOK_SECRET"]
    values = {
        "config": {
            "namespaces": [namespace],
            "default_namespace": namespace,
            "notify": {
                "pagerduty": {},
                "webhooks": [{"url": "https://hooks.example/r", "secret_env": keys[1]}],
            },
        },
        "worker": {"enabled": True},
        "notify": {"existingSecret": "rollbot-notify", "keys": keys},
    }
    objects = render(tools, kube_version, namespace, values_file(tmp_path, values))
    dry_run_on_server(tools, objects)
    (config_map,) = [o for o in of_kind(objects, "ConfigMap") if "config.yaml" in o["data"]]
    config = RollbotConfig.model_validate(yaml.safe_load(config_map["data"]["config.yaml"]))
    assert config.notify.pagerduty is not None and len(config.notify.webhooks) == 1
    deployments = of_kind(objects, "Deployment")
    assert len(deployments) >= 2
    for deployment in deployments:
        env = env_of(deployment)
        for key in keys:
            assert env[key] == {"secretKeyRef": {"name": "rollbot-notify", "key": key}}
    args = ["template", str(CHART), "--kube-version", kube_version]
    refused = tools("helm", *args, "--set", "notify.keys={PAGERDUTY_ROUTING_KEY}", check=False)
    assert refused.returncode != 0 and "notify.keys needs notify.existingSecret" in refused.stderr


# -- the bundled Redis ---------------------------------------------------------------------


def test_the_bundled_redis_wants_a_password_and_keeps_what_it_acknowledged(
    tools, kube_version, namespace, tmp_path
):
    objects = render(tools, kube_version, namespace)
    (statefulset,) = of_kind(objects, "StatefulSet")
    (password_secret,) = [s for s in of_kind(objects, "Secret") if "REDIS_PASSWORD" in s["data"]]
    (redis_conf,) = [c for c in of_kind(objects, "ConfigMap") if "redis.conf" in c["data"]]
    password = base64.b64decode(password_secret["data"]["REDIS_PASSWORD"]).decode()
    assert len(password) == 32 and password.isalnum()
    # Redis, the bot and its probe take it from that Secret; no pod spec holds it.
    redis_container = container_of(statefulset)
    reference = {"name": password_secret["metadata"]["name"], "key": "REDIS_PASSWORD"}
    assert env_of(statefulset)["REDIS_PASSWORD"]["secretKeyRef"] == reference
    assert env_of(statefulset)["REDISCLI_AUTH"]["secretKeyRef"] == reference
    (bot,) = of_kind(objects, "Deployment")
    assert env_of(bot)["REDIS_PASSWORD"]["secretKeyRef"] == reference
    assert password not in yaml.safe_dump_all([bot, statefulset, redis_conf])
    args = redis_container["args"]
    assert args == [
        "redis-server", "/etc/redis/redis.conf", "--dir", "/data",
        "--requirepass", "$(REDIS_PASSWORD)",
    ]  # fmt: skip
    mounts = {m["mountPath"]: m["name"] for m in redis_container["volumeMounts"]}
    volumes = {v["name"]: v for v in statefulset["spec"]["template"]["spec"]["volumes"]}
    assert volumes[mounts["/etc/redis"]]["configMap"]["name"] == redis_conf["metadata"]["name"]

    # The real redis-server with that file and that password (on loopback, in a folder
    # of its own instead of /data), reached the way rollbot's pods reach it.
    conf = tmp_path / "redis.conf"
    conf.write_text(redis_conf["data"]["redis.conf"])
    data = tmp_path / "data"
    data.mkdir()
    url = env_of(bot)["REDIS_URL"].replace("$(REDIS_PASSWORD)", password)
    with RedisServer(config_file=conf, password=password, directory=data) as server:
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=server.port).set("k", "v")
        client = connect(url.replace("rb-rollbot-redis:6379", f"127.0.0.1:{server.port}"))
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert client.config_get("maxmemory") == {"maxmemory": str(200 * 1024 * 1024)}
        RollbackStore(client).create(requested(namespace, "web", "U1"))
        client.rpush("before-the-crash", *range(100))
        # Killed (a crashed pod, no shutdown) once the once-a-second fsync has run (a
        # write may wait up to two seconds for a running fsync): nothing lost.
        time.sleep(2.5)
        assert server.proc is not None
        server.proc.kill()
        server.proc.wait()
    with RedisServer(config_file=conf, password=password, directory=data) as restarted:
        client = connect(restarted.url)
        assert client.lrange("before-the-crash", 0, -1) == [str(n) for n in range(100)]
        assert [r.workload for r in RollbackStore(client).recent(10)] == ["web"]
        # Stopped as Kubernetes stops a pod (SIGTERM) right after a write: Redis
        # flushes the AOF on the way out.
        client.rpush("before-the-stop", *range(100))
    with RedisServer(config_file=conf, password=password, directory=data) as again:
        assert connect(again.url).llen("before-the-stop") == 100


def test_a_redis_password_of_your_own_replaces_the_generated_one(
    tools, kube_version, namespace, tmp_path
):
    values = {
        "redis": {"bundled": {"auth": {"existingSecret": "my-redis", "existingSecretKey": "pw"}}},
        "worker": {"enabled": True},
    }
    objects = render(tools, kube_version, namespace, values_file(tmp_path, values))
    dry_run_on_server(tools, objects)
    assert [s["metadata"]["name"] for s in of_kind(objects, "Secret")] == ["rb-rollbot-store-key"]
    (statefulset,) = of_kind(objects, "StatefulSet")
    bot, worker = of_kind(objects, "Deployment")
    for pod in (statefulset, bot, worker):
        assert env_of(pod)["REDIS_PASSWORD"]["secretKeyRef"] == {"name": "my-redis", "key": "pw"}
    for deployment in (bot, worker):
        assert (
            env_of(deployment)["REDIS_URL"] == "redis://:$(REDIS_PASSWORD)@rb-rollbot-redis:6379/0"
        )
        # Kubernetes expands $(VAR) only from variables listed before.
        names = [e["name"] for e in container_of(deployment)["env"]]
        assert names.index("REDIS_PASSWORD") < names.index("REDIS_URL")

    # Off: no password anywhere (a NetworkPolicy is then all that guards it).
    values = {"redis": {"bundled": {"auth": {"enabled": False}}}}
    objects = render(tools, kube_version, namespace, values_file(tmp_path, values))
    (statefulset,) = of_kind(objects, "StatefulSet")
    (bot,) = of_kind(objects, "Deployment")
    assert "--requirepass" not in container_of(statefulset)["args"]
    assert env_of(bot)["REDIS_URL"] == "redis://rb-rollbot-redis:6379/0"


# -- installed: what the ServiceAccount may do ------------------------------------------------


@dataclass
class Release:
    namespace: str  # where rollbot runs
    listed: str  # the one namespace it may touch

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{SERVICE_ACCOUNT}"


@pytest.fixture
def install(tools, tmp_path, namespace, other_namespace) -> Iterator[Callable[..., Release]]:
    """Installs the chart in `other_namespace`, allowed to touch `namespace` only."""

    def run(*, wait: bool = True, **extra: Any) -> Release:
        values = {
            "config": {"namespaces": [namespace], "default_namespace": namespace},
            "redis": {"url": "redis://redis.example:6379/0"},
            "worker": {"enabled": True},
            **extra,
        }
        args = ["install", RELEASE, str(CHART), "-n", other_namespace]
        args += ["--wait", "--timeout=60s"] if wait else []
        tools("helm", *args, "--values", values_file(tmp_path, values))
        return Release(other_namespace, namespace)

    yield run
    tools("helm", "uninstall", RELEASE, "-n", other_namespace, "--wait", check=False)


def can_i(tools, release: Release, namespace: str, verb: str, resource: str, sub: str = "") -> bool:
    args = ["auth", "can-i", verb, resource, "-n", namespace, f"--as={release.user}"]
    result = tools("kubectl", *args, *([f"--subresource={sub}"] if sub else []), check=False)
    assert result.stdout.strip() in ("yes", "no"), result.stderr
    return result.stdout.strip() == "yes"


def answers(tools, release: Release, asks: list[tuple[str, ...]]) -> dict[tuple[str, ...], bool]:
    with ThreadPoolExecutor(8) as pool:
        return dict(zip(asks, pool.map(lambda ask: can_i(tools, release, *ask), asks), strict=True))


def as_asks(needs: set[tuple[str, str, str]], namespace: str) -> list[tuple[str, ...]]:
    asks = []
    for group, resource, verb in sorted(needs):
        base, _, sub = resource.partition("/")
        asks.append((namespace, verb, f"{base}.{group}" if group else base, sub))
    return asks


def test_the_service_account_may_do_what_rollbot_does_where_listed_and_nothing_else(tools, install):
    release = install()
    needed = as_asks(ROLLBOT_NEEDS, release.listed)
    never = [(release.listed, *ask) for ask in NEVER]
    never += [(release.listed, "get", "secrets"), (release.listed, "list", "secrets")]
    elsewhere = as_asks(ROLLBOT_NEEDS, release.namespace) + as_asks(ROLLBOT_NEEDS, "default")
    got = answers(tools, release, needed + never + elsewhere)

    assert [ask for ask in needed if not got[ask]] == []
    assert [ask for ask in never if got[ask]] == []
    # Not even in its own namespace, nor in any other it was not given.
    assert [ask for ask in elsewhere if got[ask]] == []


def test_with_gitops_the_service_account_may_hold_owners_there_and_nowhere_else(
    tools, install, namespace
):
    """The owners' namespace here is `namespace` itself (the one listed): the
    GitOps rights go there, and not to the release's own namespace."""
    release = install(rbac={"gitops": {"enabled": True, "namespaces": [namespace]}})
    needed = [(release.listed, *need) for need in sorted(GITOPS_NEEDS)]
    never = [
        (release.listed, group, resource, verb)
        for group, resource, _ in sorted(GITOPS_NEEDS)
        for verb in ("list", "watch", "delete", "create", "update")
    ]
    elsewhere = [(release.namespace, *need) for need in sorted(GITOPS_NEEDS)]
    with ThreadPoolExecutor(8) as pool:
        asks = needed + never + elsewhere
        got = dict(zip(asks, pool.map(lambda a: reviewed(tools, release, *a), asks), strict=True))
    assert [ask for ask in needed if not got[ask]] == []
    assert [ask for ask in never + elsewhere if got[ask]] == []


def reviewed(tools, release: Release, namespace: str, group: str, resource: str, verb: str) -> bool:
    """The apiserver's answer (a SubjectAccessReview) for a kind it may not serve
    (no Flux or Argo CD CRDs here): `kubectl auth can-i` needs discovery to name it."""
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": release.user,
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{release.namespace}"],
            "resourceAttributes": {
                "namespace": namespace,
                "group": group,
                "resource": resource,
                "verb": verb,
            },
        },
    }
    out = tools("kubectl", "create", "-f", "-", "-o", "json", stdin=json.dumps(review)).stdout
    return bool(json.loads(out)["status"].get("allowed"))


def helm_strategy(release: str, namespace: str, **more: Any) -> dict[str, Any]:
    releases = [{"name": release, "namespace": namespace}]
    return {"helm": {"enabled": True, "releases": releases, **more}}


def test_the_generated_redis_password_and_store_key_are_kept_across_upgrades(
    tools, install, tmp_path
):
    # Not waited for: the test bed's kubelet runs no Redis.
    release = install(redis={"bundled": {"persistence": {"enabled": False}}}, wait=False)

    def password() -> str:
        out = tools("kubectl", "get", "secret", "rb-rollbot-redis", "-n", release.namespace,
                    "-o", "jsonpath={.data.REDIS_PASSWORD}").stdout  # fmt: skip
        return base64.b64decode(out).decode()

    def store_key() -> str:
        out = tools("kubectl", "get", "secret", "rb-rollbot-store-key", "-n", release.namespace,
                    "-o", "jsonpath={.data.ROLLBOT_STORE_KEY}").stdout  # fmt: skip
        return base64.b64decode(out).decode()

    before, key = password(), store_key()
    assert len(before) == 32 and len(key) == 48
    args = ["upgrade", RELEASE, str(CHART), "-n", release.namespace, "--reuse-values"]
    tools("helm", *args, "--set", "bot.replicas=1")
    assert password() == before
    assert store_key() == key, "records sealed before the upgrade still read"


def test_the_helm_strategy_grants_release_secrets_of_the_named_releases_only(
    tools, install, namespace
):
    release = install(strategies=helm_strategy("todo-app", namespace, maxRevision=50))
    todo = "secrets/sh.helm.release.v1.todo-app"
    asks = {
        # What `helm rollback` of todo-app does.
        (release.listed, "list", "secrets"): True,
        (release.listed, "create", "secrets"): True,
        (release.listed, "get", f"{todo}.v1"): True,
        (release.listed, "update", f"{todo}.v50"): True,
        (release.listed, "delete", f"{todo}.v7"): True,
        # Another release's, or an unrelated Secret: no get, update or delete.
        (release.listed, "get", f"{todo}.v51"): False,
        (release.listed, "get", "secrets/sh.helm.release.v1.other.v1"): False,
        (release.listed, "get", "secrets/db-credentials"): False,
        (release.listed, "update", "secrets/db-credentials"): False,
        (release.listed, "patch", f"{todo}.v1"): False,
        (release.listed, "delete", "secrets/db-credentials"): False,
        (release.listed, "get", "secrets"): False,  # any name
        (release.listed, "watch", "secrets"): False,
        (release.listed, "deletecollection", "secrets"): False,
        # Nothing where no release is.
        (release.namespace, "list", "secrets"): False,
        (release.namespace, "create", "secrets"): False,
        (release.namespace, "get", f"{todo}.v1"): False,
    }
    got = answers(tools, release, list(asks))
    assert got == asks


def access_review(kube: Kube, release: Release, namespace: str, need: tuple[str, ...]) -> bool:
    """The apiserver's own answer (a SubjectAccessReview): unlike `kubectl auth can-i`
    it needs no discovery, so it answers for kinds whose CRDs are not installed."""
    from kubernetes.client import AuthorizationV1Api

    group, resource, verb = need
    base, _, sub = resource.partition("/")
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": release.user,
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{release.namespace}"],
            "resourceAttributes": {
                "namespace": namespace,
                "verb": verb,
                "group": group,
                "resource": base,
                "subresource": sub,
            },
        },
    }
    answer = AuthorizationV1Api(kube.api_client).create_subject_access_review(review)
    return bool(answer.status.allowed)


#: Near misses of ARGO_NEEDS: each must be refused.
ARGO_NEVER = {
    ("argoproj.io", "rollouts", "list"),
    ("argoproj.io", "rollouts", "update"),
    ("argoproj.io", "rollouts", "delete"),
    ("argoproj.io", "rollouts", "create"),
    ("argoproj.io", "rollouts/scale", "patch"),
    ("argoproj.io", "rollouts/status", "update"),
    ("argoproj.io", "analysisruns", "get"),
    ("argoproj.io", "analysisruns", "create"),
    ("argoproj.io", "analysisruns", "patch"),
    ("argoproj.io", "analysistemplates", "patch"),
    ("argoproj.io", "experiments", "create"),
    ("apps", "replicasets", "patch"),
}


def test_the_argo_rollouts_strategy_grants_its_verbs_only_when_enabled(kube, install):
    release = install(strategies={"argoRollouts": {"enabled": True}})
    where = release.listed
    assert [n for n in sorted(ARGO_NEEDS) if not access_review(kube, release, where, n)] == []
    assert [n for n in sorted(ARGO_NEVER) if access_review(kube, release, where, n)] == []
    elsewhere = release.namespace
    assert [n for n in sorted(ARGO_NEEDS) if access_review(kube, release, elsewhere, n)] == []


def test_without_the_argo_rollouts_flag_no_rollout_may_be_touched(kube, install):
    release = install()
    assert [n for n in ARGO_NEEDS if access_review(kube, release, release.listed, n)] == []


# -- installed: rollbot itself, with the ServiceAccount's own token -------------------------------


def service_account_kube(tools, control_plane, release: Release, tmp_path: Path) -> Kube:
    """A Kube that authenticates with a token of the chart's ServiceAccount, as a pod would."""
    token = tools(
        "kubectl", "create", "token", SERVICE_ACCOUNT, "-n", release.namespace, "--duration=10m"
    ).stdout.strip()
    config = yaml.safe_load(control_plane.kubeconfig.read_text())
    config["users"] = [{"name": "rollbot", "user": {"token": token}}]
    for context in config["contexts"]:
        context["context"]["user"] = "rollbot"
    path = tmp_path / "kubeconfig-rollbot"
    path.write_text(yaml.safe_dump(config))
    return Kube.from_kubeconfig(str(path))


def kube_calls(pod: str) -> dict[str, Callable[[Kube, str], Any]]:
    """One call of every method rollbot's Kube has, on the Deployment "web"."""
    return {
        "get_deployment": lambda k, ns: k.get_deployment(ns, "web"),
        "list_deployments": lambda k, ns: k.list_deployments(ns),
        "list_replica_sets": lambda k, ns: k.list_replica_sets(ns, "app=web"),
        "json_patch_deployment": lambda k, ns: k.json_patch_deployment(
            ns, "web", [{"op": "test", "path": "/metadata/name", "value": "web"}]
        ),
        "watch_deployment": lambda k, ns: list(k.watch_deployment(ns, "web", "0", 1)),
        "list_pods": lambda k, ns: k.list_pods(ns, "app=web"),
        "list_warning_events": lambda k, ns: k.list_warning_events(ns),
        "pod_log": lambda k, ns: k.pod_log(ns, pod, 60, 10),
        "list_services": lambda k, ns: k.list_services(ns),
        "get_config_map": lambda k, ns: k.get_config_map(ns, "web-config"),
        "list_autoscalers": lambda k, ns: k.list_autoscalers(ns),
        "get_service": lambda k, ns: k.get_service(ns, "web"),
        "json_patch_service": lambda k, ns: k.json_patch_service(
            ns, "web", [{"op": "test", "path": "/metadata/name", "value": "web"}]
        ),
        "get_endpoints": lambda k, ns: k.get_endpoints(ns, "web"),
        "json_patch_config_map": lambda k, ns: k.json_patch_config_map(
            ns, "web-config", [{"op": "test", "path": "/metadata/name", "value": "web-config"}]
        ),
        "merge_patch_pod": lambda k, ns: k.merge_patch_pod(
            ns, pod, {"metadata": {"labels": {"app": "web"}}}
        ),
        # Only with strategies.helm.enabled (below): release history from its Secrets.
        "list_secrets": lambda k, ns: k.list_secrets(ns, "owner=helm"),
        "probe": probed,
        **ARGO_CALLS,
        **JOB_CALLS,
        **GITOPS_CALLS,
    }


#: Only with rbac.gitops.enabled, where the owners live: a GitOps hold's calls.
KUSTOMIZATIONS = ("apis/kustomize.toolkit.fluxcd.io/v1", "kustomizations")
GITOPS_CALLS: dict[str, Callable[[Kube, str], Any]] = {
    "get_custom": lambda k, ns: k.get_custom(KUSTOMIZATIONS[0], ns, KUSTOMIZATIONS[1], "web"),
    "json_patch_custom": lambda k, ns: k.json_patch_custom(
        KUSTOMIZATIONS[0], ns, KUSTOMIZATIONS[1], "web", [], dry_run=True
    ),
}

#: Only when a service declares its migrations: the schema steps' Jobs.
JOB_CALLS: dict[str, Callable[[Kube, str], Any]] = {
    "create_job": lambda k, ns: k.create_job(ns, {"metadata": {"name": "web-schema"}, "spec": {}}),
    "get_job": lambda k, ns: k.get_job(ns, "web-schema"),
    "delete_job": lambda k, ns: k.delete_job(ns, "web-schema"),
}

#: Only with strategies.argoRollouts.enabled: the Argo Rollouts strategy's calls.
ARGO_CALLS: dict[str, Callable[[Kube, str], Any]] = {
    "get_rollout": lambda k, ns: k.get_rollout(ns, "web"),
    "json_patch_rollout": lambda k, ns: k.json_patch_rollout(
        ns, "web", [{"op": "test", "path": "/metadata/name", "value": "web"}]
    ),
    "merge_patch_rollout_status": lambda k, ns: k.merge_patch_rollout_status(ns, "web", {}),
    "list_analysis_runs": lambda k, ns: k.list_analysis_runs(ns),
}


def probed(kube: Kube, namespace: str) -> None:
    """The readiness probe raises the API's own error; as rollbot reads it."""
    try:
        kube.probe(namespace)
    except ApiException as err:
        raise translate(err) from err


def outcome(call: Callable[[Kube, str], Any], kube: Kube, namespace: str) -> str:
    try:
        call(kube, namespace)
    except Forbidden:
        return "forbidden"
    except RollbotError:
        return "allowed"  # authorized, then failed for another reason (e.g. not found)
    return "allowed"


def test_rollbot_works_as_the_service_account_in_listed_namespaces_only(
    tools, control_plane, kube, install, workloads, tmp_path
):
    release = install()
    unlisted = Workloads(kube.api_client, release.namespace)
    for place in (workloads, unlisted):
        place.create("web", ["app:v1", "app:v2"], replicas=1)
        place.core.create_namespaced_config_map(
            place.namespace, {"metadata": {"name": "web-config"}, "data": {"k": "v"}}
        )
    as_rollbot = service_account_kube(tools, control_plane, release, tmp_path)

    # Every call rollbot can make: allowed where listed, refused anywhere else. A new
    # Kube method fails this until it is listed here and granted in the chart.
    pod = workloads.core.list_namespaced_pod(release.listed).items[0].metadata.name
    calls = kube_calls(pod)
    methods = {
        name for name, _ in inspect.getmembers(Kube, inspect.isfunction) if not name.startswith("_")
    }
    assert methods == set(calls)
    assert {name: outcome(call, as_rollbot, release.listed) for name, call in calls.items()} == {
        name: "forbidden"
        if name == "list_secrets" or name in {**ARGO_CALLS, **JOB_CALLS, **GITOPS_CALLS}
        else "allowed"
        for name in calls
    }
    assert {name: outcome(call, as_rollbot, release.namespace) for name, call in calls.items()} == {
        name: "forbidden" for name in calls
    }

    # A whole rollback, as rollbot's pods would run it.
    rollback(as_rollbot, RollbotConfig(), release.listed, "web", actor="helm-test")
    assert workloads.images_of("web") == ["app:v1"]
    with pytest.raises(Forbidden):
        rollback(as_rollbot, RollbotConfig(), release.namespace, "web")
    assert unlisted.images_of("web") == ["app:v2"]


def test_the_argo_rollouts_strategy_works_as_the_service_account_where_listed_only(
    tools, control_plane, kube, install, rollouts, tmp_path
):
    release = install(strategies={"argoRollouts": {"enabled": True}})
    as_rollbot = service_account_kube(tools, control_plane, release, tmp_path)
    steps = [{"setWeight": 50}, {"pause": {}}]
    rollouts.create_canary("web", "app:v1", steps=steps, analysis=False)
    rollouts.set_image("web", "app:v2")
    rollouts.wait_phase("web", "Paused")

    assert {n: outcome(call, as_rollbot, release.listed) for n, call in ARGO_CALLS.items()} == {
        n: "allowed" for n in ARGO_CALLS
    }
    assert {n: outcome(call, as_rollbot, release.namespace) for n, call in ARGO_CALLS.items()} == {
        n: "forbidden" for n in ARGO_CALLS
    }
    # A whole abort, as rollbot's pods would run it.
    argo = get_strategy("argo-rollouts")
    ctx = Context(kube=as_rollbot, config=RollbotConfig(), timeout=60)
    planned = argo.plan(ctx, Request(release.listed, "web", "argo-rollouts"))
    assert planned.pins["action"] == "abort"
    argo.apply(ctx, release.listed, planned.pins, "rollbot: helm test", Recorder())
    assert rollouts.get("web")["status"]["abort"] is True


def forbidden(call: Callable[[], Any]) -> str:
    """What the apiserver answers the ServiceAccount: "ok", or the reason it refused."""
    try:
        call()
    except ApiException as err:
        assert err.status in (403, 422), err
        return "forbidden" if err.status == 403 else "invalid"
    return "ok"


def test_the_helm_strategy_rolls_a_release_back_as_the_service_account(
    tools, control_plane, install, namespace, tmp_path
):
    release = install(strategies=helm_strategy("todo-app", namespace))
    todo = Path(__file__).parent / "charts" / "todo-app"

    def upgrade(tag: str, *wait: str) -> None:
        tools(
            "helm", "upgrade", "--install", "todo-app", str(todo), "-n", release.listed,
            "--set", f"tag={tag}", *wait, check="broken" not in tag,
        )  # fmt: skip

    # Ten revisions, so that helm's rollback prunes the oldest (--history-max 10).
    for patch in range(8):
        upgrade(f"1.0.{patch}")
    upgrade("1.1.0", "--wait", "--timeout=60s")
    upgrade("1.2.0-broken", "--wait", "--timeout=10s")
    as_rollbot = service_account_kube(tools, control_plane, release, tmp_path)
    ctx = Context(
        kube=as_rollbot,
        config=RollbotConfig(namespaces=[release.listed]),
        timeout=60,
        helm=HelmSettings(
            str(control_plane.bin_dir / "helm"), str(tmp_path / "kubeconfig-rollbot")
        ),
    )
    strategy = get_strategy("helm")
    plan = strategy.plan(ctx, Request(release.listed, "todo-app", "helm"))
    assert plan.pins["target"] == "9"

    class Quiet:
        def milestone(self, text: str) -> None: ...

        def rollout(self, workload: str, state: object) -> None: ...

    done = strategy.apply(ctx, release.listed, plan.pins, "rollbot: chart test", Quiet())
    assert "now revision 11, deployed" in done
    image = tools(
        "kubectl", "get", "deployment", "todo-backend", "-n", release.listed,
        "-o", "jsonpath={.spec.template.spec.containers[0].image}",
    ).stdout  # fmt: skip
    assert image.endswith(":1.1.0")
    history = tools("helm", "history", "todo-app", "-n", release.listed, "-o", "json").stdout
    assert [r["revision"] for r in json.loads(history)] == list(range(2, 12))  # v1 pruned

    # Any other Secret of that namespace: no get, update, delete, and no create but a
    # release record of todo-app (the admission policy), so no minted tokens either.
    core = as_rollbot.core
    listed = release.listed
    core_admin = Kube.from_kubeconfig(str(control_plane.kubeconfig)).core
    core_admin.create_namespaced_secret(
        listed, {"metadata": {"name": "db-credentials"}, "stringData": {"password": "s3cret"}}
    )
    token = {
        "metadata": {
            "name": "stolen-token",
            "annotations": {"kubernetes.io/service-account.name": "default"},
        },
        "type": "kubernetes.io/service-account-token",
    }
    fake_release = {
        "metadata": {
            "name": "sh.helm.release.v1.other.v1",
            "labels": {"owner": "helm", "name": "other"},
        },
        "type": "helm.sh/release.v1",
        "stringData": {"release": "x"},
    }
    changed = {"metadata": {"name": "db-credentials"}, "stringData": {"password": "mine"}}
    outcomes = {
        "get": forbidden(lambda: core.read_namespaced_secret("db-credentials", listed)),
        "update": forbidden(
            lambda: core.replace_namespaced_secret("db-credentials", listed, changed)
        ),
        "delete": forbidden(lambda: core.delete_namespaced_secret("db-credentials", listed)),
        "create token": forbidden(lambda: core.create_namespaced_secret(listed, token)),
        "create other release": forbidden(
            lambda: core.create_namespaced_secret(listed, fake_release)
        ),
        "list elsewhere": forbidden(lambda: core.list_namespaced_secret(release.namespace)),
    }
    assert outcomes == dict.fromkeys(outcomes, "forbidden")
    assert core_admin.read_namespaced_secret("db-credentials", listed).data is not None
    # What remains (helm/README.md): helm reads history with a label query, and RBAC
    # cannot narrow a list, so a list in the release's namespace returns that Secret.
    names = {s.metadata.name for s in core.list_namespaced_secret(listed).items}
    assert "db-credentials" in names


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_probes_and_metrics_answer_as_the_service_account(
    tools, control_plane, install, redis_client, tmp_path
):
    release = install()
    as_rollbot = service_account_kube(tools, control_plane, release, tmp_path)
    store = RollbackStore(redis_client)
    record = requested(release.listed, "web", "U1")
    for state in RUN_TO_SUCCESS:
        record = record.transition(state, state.value)
    store.create(record)

    def serve(config: RollbotConfig, redis_store: RollbackStore) -> str:
        server = RollbotServer(config, redis_store, as_rollbot, "xoxb-test", "secret")
        server.start_http(port=0)
        servers.append(server)
        return server.url.removesuffix("/slack/events")

    servers: list[RollbotServer] = []
    try:
        ready = serve(RollbotConfig(namespaces=[release.listed]), store)
        assert get(ready + "/healthz") == (200, "ok\n")
        assert get(ready + "/readyz") == (200, "ok\n")
        status, text = get(ready + "/metrics")
        assert status == 200
        assert 'rollbot_rollbacks{state="succeeded"} 1' in text
        assert 'rollbot_rollback_duration_seconds_count{outcome="succeeded"} 1' in text

        not_granted = serve(RollbotConfig(namespaces=[release.namespace]), store)
        status, text = get(not_granted + "/readyz")
        assert status == 503 and text.startswith("kubernetes:") and "forbidden" in text

        no_redis = RollbackStore(connect(f"redis://127.0.0.1:{free_port()}/0"))
        without_redis = serve(RollbotConfig(namespaces=[release.listed]), no_redis)
        status, text = get(without_redis + "/readyz")
        assert status == 503 and text.startswith("redis:")
        assert get(without_redis + "/healthz") == (200, "ok\n")  # alive, just not ready
        assert "rollbot_store_up 0" in get(without_redis + "/metrics")[1]
    finally:
        for server in servers:
            server.stop()
