"""The backup as people may see it: the same shape, nothing secret in it."""

from __future__ import annotations

import base64
import copy
import json

from bot.backup import LAST_APPLIED, redacted_backup
from bot.redaction import REDACTED

SPEC_WITH_SECRETS = {
    "containers": [
        {
            "name": "app",
            "image": "ghcr.io/acme/web:v1.2.3@sha256:" + "ab" * 32,
            "command": ["/app", "--password", "hunter2", "--db=postgres://app:pw1@db/app"],
            "args": ["--token=abc123", "--verbose", "--port", "8080", "-api-key", "k3y"],
            "env": [
                {"name": "DATABASE_URL", "value": "postgres://app:pw2@db/app"},
                {"name": "LOG_LEVEL", "value": "debug"},
                {"name": "EMPTY", "value": ""},
                {"name": "DB", "valueFrom": {"secretKeyRef": {"name": "web-db", "key": "url"}}},
            ],
            "readinessProbe": {
                "httpGet": {
                    "path": "/healthz",
                    "port": 8080,
                    "httpHeaders": [{"name": "Authorization", "value": "Bearer t0ken-value"}],
                }
            },
        }
    ],
    "initContainers": [
        {"name": "migrate", "image": "migrate:v1", "env": [{"name": "PGPASSWORD", "value": "pw3"}]}
    ],
}
LAST_APPLIED_TEXT = json.dumps({"spec": {"template": {"spec": SPEC_WITH_SECRETS}}})
BUNDLE = {
    "taken_at": 1700000000.0,
    "deployment": {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "annotations": {
                LAST_APPLIED: LAST_APPLIED_TEXT,
                "deployment.kubernetes.io/revision": "4",
                "note": "rotated key, password=old-pw4",
            },
        },
        "spec": {
            "replicas": 3,
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": SPEC_WITH_SECRETS},
        },
    },
    "services": [
        {"kind": "Service", "metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}
    ],
    "config_maps": [
        {
            "kind": "ConfigMap",
            "metadata": {"name": "web-config"},
            "data": {"FEATURE_NEW_UI": "true", "settings.json": '{"smtp_pass": "pw5-is-long"}'},
            "binaryData": {"cert.der": base64.b64encode(b"\x00" * 40).decode()},
        }
    ],
    "autoscalers": [],
    "secrets_referenced": ["web-db"],
    "not_backed_up": ["configmap/extra: not found"],
}
SECRET_VALUES = ["hunter2", "pw1", "pw2", "abc123", "k3y", "t0ken-value", "pw3", "old-pw4", "pw5"]


def test_no_env_value_argument_secret_or_config_data_is_left_in_the_shown_backup():
    shown = json.dumps(redacted_backup(BUNDLE))
    for secret in SECRET_VALUES:
        assert secret not in shown, secret
    assert "debug" not in shown  # every env value goes, not only those that look secret
    assert 'FEATURE_NEW_UI": "true' not in shown


def test_names_references_and_the_shape_of_the_backup_are_kept():
    shown = redacted_backup(BUNDLE)
    container = shown["deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert (
        container["image"]
        == BUNDLE["deployment"]["spec"]["template"]["spec"]["containers"][0]["image"]
    )
    assert container["env"] == [
        {"name": "DATABASE_URL", "value": REDACTED},
        {"name": "LOG_LEVEL", "value": REDACTED},
        {"name": "EMPTY", "value": ""},
        {"name": "DB", "valueFrom": {"secretKeyRef": {"name": "web-db", "key": "url"}}},
    ]
    assert container["command"] == [
        "/app",
        "--password",
        REDACTED,
        f"--db=postgres://app:{REDACTED}@db/app",
    ]
    assert container["args"] == [
        f"--token={REDACTED}",
        "--verbose",
        "--port",
        "8080",
        "-api-key",
        REDACTED,
    ]
    assert container["readinessProbe"]["httpGet"]["httpHeaders"] == [
        {"name": "Authorization", "value": REDACTED}
    ]
    assert shown["deployment"]["spec"]["replicas"] == 3
    assert shown["services"] == BUNDLE["services"]
    assert shown["secrets_referenced"] == ["web-db"]
    assert shown["not_backed_up"] == ["configmap/extra: not found"]
    assert set(shown) == set(BUNDLE)


def test_the_last_applied_annotation_is_dropped_and_other_annotations_are_redacted():
    annotations = redacted_backup(BUNDLE)["deployment"]["metadata"]["annotations"]
    assert "postgres" not in annotations[LAST_APPLIED]
    assert annotations["deployment.kubernetes.io/revision"] == "4"
    assert annotations["note"] == f"rotated key, password={REDACTED}"


def test_config_map_values_become_their_size_and_only_long_ones_their_hash_prefix():
    [config_map] = redacted_backup(BUNDLE)["config_maps"]
    assert config_map["data"]["FEATURE_NEW_UI"] == "[redacted: 4 bytes]"
    assert config_map["data"]["settings.json"].startswith("[redacted: 28 bytes, sha256 ")
    assert config_map["binaryData"]["cert.der"].startswith("[redacted: 40 bytes, sha256 ")
    assert config_map["metadata"] == {"name": "web-config"}


def test_secret_data_never_appears_even_if_a_secret_found_its_way_into_the_bundle():
    bundle = {**BUNDLE, "extra": [{"kind": "Secret", "data": {"k": "c2VjcmV0"}, "stringData": {}}]}
    assert redacted_backup(bundle)["extra"] == [{"kind": "Secret"}]


def test_each_component_of_a_several_deployment_backup_is_redacted():
    bundle = {"components": {"backend": BUNDLE, "worker": BUNDLE}}
    shown = redacted_backup(bundle)
    assert set(shown["components"]) == {"backend", "worker"}
    text = json.dumps(shown)
    for secret in SECRET_VALUES:
        assert secret not in text, secret


def test_the_stored_backup_is_left_untouched():
    before = copy.deepcopy(BUNDLE)
    redacted_backup(BUNDLE)
    assert before == BUNDLE
