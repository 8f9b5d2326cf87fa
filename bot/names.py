"""Kubernetes names as the API accepts them, checked before any call is made.

Every check matches the whole text (`fullmatch`): a `$` would also match before a
final newline, and "web\\n" is not a name the API accepts.
"""

from __future__ import annotations

import re

from bot.errors import InvalidInput

# RFC 1123 label (namespaces, containers) and subdomain (Deployments and most objects).
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
MAX_LABEL_LENGTH = 63
MAX_SUBDOMAIN_LENGTH = 253
#: How much of a value a person typed an error message quotes back.
QUOTED_LENGTH = 60


def quoted(text: str) -> str:
    """`text` as an error message quotes it: repr (control characters made visible),
    cut to QUOTED_LENGTH so that a pasted page does not become the message."""
    shown = repr(text)
    if len(shown) > QUOTED_LENGTH:
        # Cut the repr, not the text: an escaped character takes up to ten.
        return shown[:QUOTED_LENGTH] + f"…' ({len(text)} characters)"
    return shown


def is_label(text: str) -> bool:
    """A DNS-1123 label: at most 63 lowercase letters, digits and '-', alphanumeric at the ends."""
    return len(text) <= MAX_LABEL_LENGTH and _LABEL.fullmatch(text) is not None


def is_subdomain(text: str) -> bool:
    """A DNS-1123 subdomain: labels joined by '.', at most 253 characters."""
    return len(text) <= MAX_SUBDOMAIN_LENGTH and all(
        _LABEL.fullmatch(part) is not None for part in text.split(".")
    )


def check_namespace(namespace: str) -> str:
    if not is_label(namespace):
        raise InvalidInput(
            f"{quoted(namespace)} is not a valid namespace name: use at most 63 lowercase "
            "letters, digits and '-', starting and ending with a letter or digit"
        )
    return namespace


def check_object_name(name: str, kind: str = "deployment") -> str:
    if not is_subdomain(name):
        raise InvalidInput(
            f"{quoted(name)} is not a valid {kind} name: use lowercase letters, digits, "
            "'-' and '.', starting and ending with a letter or digit (DNS-1123)"
        )
    return name


def check_container_name(name: str) -> str:
    """Container names are labels: no '.', at most 63 characters."""
    if not is_label(name):
        raise InvalidInput(
            f"{quoted(name)} is not a valid container name: use at most 63 lowercase letters, "
            "digits and '-', starting and ending with a letter or digit (DNS-1123)"
        )
    return name
