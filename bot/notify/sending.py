"""One HTTP call to a destination, and what its answer means.

The vendors agree (PagerDuty's "Response Codes & Retry Logic", Statuspage's
rate limits): 429 (Statuspage also 420), 5xx and network errors are tried
again later, honouring Retry-After; any other 4xx will be refused again
whatever we do, so the event is dropped for that destination with a log line.
"""

from __future__ import annotations

from typing import Any

import httpx

from bot.errors import PermanentError, TemporaryError

_TRY_LATER = frozenset({408, 420, 425, 429})
#: Retry-After beyond this is capped: a misbehaving server must not park the queue.
MAX_RETRY_AFTER = 300.0


class TryLater(TemporaryError):
    code = "destination_unavailable"

    def __init__(self, message: str, after: float | None = None) -> None:
        super().__init__(message)
        #: Seconds the destination asked us to wait (Retry-After), if it said.
        self.after = after


class Refused(PermanentError):
    code = "destination_refused"


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    try:
        return min(MAX_RETRY_AFTER, max(0.0, float(value)))
    except ValueError:
        return None  # an HTTP date, or nothing: our own backoff decides


def _what_it_said(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:300] + ("…" if len(text) > 300 else "")


def call(
    client: httpx.Client, method: str, url: str, *, what: str, **kwargs: Any
) -> httpx.Response:
    """`client.request(method, url, **kwargs)`; its 2xx answer, or TryLater / Refused.
    `what` names the destination in messages ("PagerDuty", "webhook https://…")."""
    try:
        response = client.request(method, url, **kwargs)
    except httpx.HTTPError as err:  # connect, read, time-out: nothing was answered
        raise TryLater(f"{what} did not answer: {type(err).__name__}: {err}") from err
    status = response.status_code
    if 200 <= status < 300:
        return response
    said = f"{what} answered {status}: {_what_it_said(response)}"
    if status in _TRY_LATER or status >= 500:
        raise TryLater(said, retry_after(response))
    raise Refused(said)
