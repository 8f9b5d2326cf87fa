"""A watch stream's lines as `Kube.watch_deployment` reads them, and what an
ERROR event becomes (the server sends those inside an HTTP 200 answer)."""

from __future__ import annotations

import json

import pytest

from bot.errors import ApiUnavailable, Forbidden, WatchExpired
from bot.kube import _event, _namespaced, translate


def error_line(code: int, reason: str, message: str) -> str:
    status = {"kind": "Status", "status": "Failure", "code": code}
    return json.dumps({"type": "ERROR", "object": status | {"reason": reason, "message": message}})


def error_of(line: str) -> Exception:
    try:
        _event(line)
    except Exception as err:  # the ApiException, as the API call would raise it
        return translate(err, kind="deployment", namespace="prod", name="web")
    raise AssertionError("an ERROR event must raise")


def test_a_change_is_its_type_and_the_object_as_sent():
    obj = {"metadata": {"name": "web", "resourceVersion": "7"}, "spec": {"x-new-field": [1]}}
    assert _event(json.dumps({"type": "MODIFIED", "object": obj})) == ("MODIFIED", obj)


def test_an_expired_resource_version_is_watch_expired():
    err = error_of(error_line(410, "Expired", "too old resource version: 5 (90)"))
    assert isinstance(err, WatchExpired)
    assert "too old resource version" in str(err)


def test_other_error_events_are_the_errors_their_code_stands_for():
    assert isinstance(error_of(error_line(403, "Forbidden", "no")), Forbidden)
    assert isinstance(error_of(error_line(500, "InternalError", "etcd")), ApiUnavailable)


@pytest.mark.parametrize("line", ["{not json", "[]", '{"type": "ADDED"}'])
def test_a_line_that_is_no_event_is_a_temporary_error(line):
    with pytest.raises(ApiUnavailable):
        _event(line)


def test_names_in_a_path_are_one_segment_each():
    assert _namespaced("apis/apps/v1", "prod", "deployments") == (
        "/apis/apps/v1/namespaces/prod/deployments"
    )
    pod = _namespaced("api/v1", "prod", "pods", "a/b?c")
    assert pod == "/api/v1/namespaces/prod/pods/a%2Fb%3Fc"
