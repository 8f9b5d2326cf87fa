"""Kubernetes names as the API accepts them, checked before any call is made."""

from __future__ import annotations

import re

from bot.errors import InvalidInput

# RFC 1123 label (namespaces) and subdomain (Deployments and most objects).
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def check_namespace(namespace: str) -> str:
    if len(namespace) > 63 or not _LABEL.match(namespace):
        raise InvalidInput(
            f"{namespace!r} is not a valid namespace name: use at most 63 lowercase letters, "
            "digits and '-', starting and ending with a letter or digit"
        )
    return namespace


def check_object_name(name: str, kind: str = "deployment") -> str:
    if len(name) > 253 or not all(_LABEL.match(part) for part in name.split(".")):
        raise InvalidInput(
            f"{name!r} is not a valid {kind} name: use lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit (DNS-1123)"
        )
    return name
