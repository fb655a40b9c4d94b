"""Retry an image pull when the registry, not the request, was the problem: rate limits (429) and server errors
(5xx), with backoff. Engine-agnostic: the decision reads the error text the engine relays (docker and podman
both pass the registry's status through), never the engine's own API status, because dockerd answers 500 for
every failed pull, including a lookup failure on an offline host that no retry will fix.

    retryable(error text) -> True for "toomanyrequests", "429 Too Many Requests", "503 Service Unavailable",
                                       "unexpected HTTP status: 502 Bad Gateway", "StatusCode: 504", ...
                          -> False for "no such host", "manifest unknown", "unauthorized", "denied", ...
    with_retries(pull, describe, sleep) -> pull()'s value; after the last attempt the error is raised as is
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

# Seconds to wait before attempts 2, 3 and 4. Docker Hub's anonymous limit resets over hours, but a burst from
# parallel workers and a registry's passing 5xx clear within seconds to a minute.
BACKOFF: tuple[float, ...] = (5.0, 15.0, 45.0)

_STATUS_WORDS = r"too many requests|internal server error|bad gateway|service unavailable|gateway time-?out"
_RETRYABLE = re.compile(
    r"toomanyrequests|too many requests"  # Docker Hub's pull rate limit, as its error code and in words
    rf"|\b(?:429|50[0-4])\b\W{{0,3}}(?:{_STATUS_WORDS})"  # "503 Service Unavailable", "502 (Bad Gateway)"
    r"|status(?:\s*code)?\W{0,3}(?:429|50[0-4])\b"  # "StatusCode: 429", "unexpected HTTP status: 502 ..."
    r"|registry\W{0,3}(?:429|50[0-4])\b",  # podman's "invalid status code from registry 503"
    re.IGNORECASE)
# Failures no retry fixes, even when the text also carries a 5xx: the daemon wraps its own lookup errors.
_PERMANENT = re.compile(r"no such host|manifest unknown|not found|unauthorized|denied|no matching manifest",
                        re.IGNORECASE)


def retryable(text: str) -> bool:
    """Whether a pull that failed with this error text may succeed when tried again later."""
    return bool(_RETRYABLE.search(text)) and not _PERMANENT.search(text)


def with_retries(pull: Callable[[], T], text_of: Callable[[Exception], str], *,
                 retry_on: tuple[type[Exception], ...], delays: Sequence[float] | None = None,
                 sleep: Callable[[float], None] | None = None, log: Callable[[str], None] | None = None) -> T:
    """pull(), tried again after each of `delays` (BACKOFF) while it raises a retry_on error whose text is
    retryable; the last error is raised unchanged."""
    wait = sleep or time.sleep
    for attempt, delay in enumerate([*(BACKOFF if delays is None else delays), None], start=1):
        try:
            return pull()
        except retry_on as e:
            text = text_of(e)
            if delay is None or not retryable(text):
                raise
            if log is not None:
                log(f"pull attempt {attempt} failed ({text.strip()[:200]}); retrying in {delay:.0f}s")
            wait(delay)
    raise AssertionError("unreachable")  # pragma: no cover
