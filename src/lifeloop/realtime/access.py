"""Who may post events, and how fast: service tokens compared by hash, and a token bucket per source.

A source's token is never stored: ``events.yaml`` holds its SHA-256, and a request's bearer token is hashed
and compared in constant time with every source's hash. Each source has a token bucket (``rate_per_second``
refilled, ``burst`` at most): a request that finds it empty is refused with the seconds until it would pass
(HTTP 429 with Retry-After). Pure except for the clock, which is passed in.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from collections.abc import Callable, Sequence

from lifeloop.config.events import Source


def token_hash(token: str) -> str:
    """The SHA-256 (hex) of a service token: what ``events.yaml`` keeps instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def authenticate(authorization: str | None, sources: Sequence[Source]) -> Source | None:
    """The source whose token the ``Authorization: Bearer <token>`` header carries, else None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    digest = token_hash(token.strip())
    found = None
    for s in sources:   # compare with every source, so the time taken does not tell which one nearly matched
        if s.token_sha256 is not None and hmac.compare_digest(digest, s.token_sha256):
            found = s
    return found


class RateLimits:
    """A token bucket per source: ``take(source)`` is 0.0 when the request may pass, else the seconds to wait."""

    def __init__(self, sources: Sequence[Source], clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.rules = {s.name: (s.rate_per_second, float(s.burst)) for s in sources}
        self.level = {s.name: float(s.burst) for s in sources}
        self.at = {s.name: clock() for s in sources}
        self.lock = threading.Lock()

    def take(self, source: str, cost: float = 1.0) -> float:
        rate, burst = self.rules[source]
        with self.lock:
            now = self.clock()
            self.level[source] = min(burst, self.level[source] + (now - self.at[source]) * rate)
            self.at[source] = now
            if self.level[source] >= cost:
                self.level[source] -= cost
                return 0.0
            return (cost - self.level[source]) / rate


def retry_after(seconds: float) -> str:
    """The Retry-After header's value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
