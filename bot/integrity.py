"""Records and backups carry an HMAC, so Redis is not the trust root.

What a worker executes comes from Redis: the record's pins (which pod
template, which release revision) and the backups it restores. With
`ROLLBOT_STORE_KEY` set (the chart puts a generated key in a Secret), every
record and backup is stored as `MAC.JSON` and checked when read: a value
written to Redis by anyone without the key is refused, never acted on. Without
a key (a laptop, the demo) values are stored and read as plain JSON.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from bot.errors import PermanentError

_SEP = "."


class TamperedValue(PermanentError):
    code = "tampered"

    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what} in the store failed its integrity check (written without rollbot's "
            "key): rollbot will not act on it"
        )


def store_key() -> bytes | None:
    key = os.environ.get("ROLLBOT_STORE_KEY", "")
    return key.encode() if key else None


def _mac(key: bytes, what: str, text: str) -> str:
    # `what` (the Redis key) is signed too: a genuine value copied under another
    # record's key is refused as well.
    return hmac.new(key, f"{what}\n{text}".encode(), hashlib.sha256).hexdigest()


def seal(key: bytes | None, what: str, text: str) -> str:
    return text if key is None else f"{_mac(key, what, text)}{_SEP}{text}"


def unseal(key: bytes | None, what: str, raw: str) -> str:
    if key is None:
        return raw
    mac, sep, text = raw.partition(_SEP)
    if not sep or not hmac.compare_digest(mac, _mac(key, what, text)):
        raise TamperedValue(what.removeprefix("rollbot:"))
    return text
