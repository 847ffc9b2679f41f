"""Idempotency keys: a request handled once (a feedback file, an API call) is not handled again.

``begin`` reserves the key inside the caller's transaction. If the transaction fails, the reservation
disappears with it and the request can be retried; if it commits, replays find the stored result.
The same key with different content is refused rather than silently answered with the old result.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from lifeloop.errors import DataError
from lifeloop.store.ops.models import IdempotencyKey
from lifeloop.store.ops.types import as_utc, utcnow


@dataclass(frozen=True)
class Seen:
    """The outcome of :func:`begin`: whether the request is new, and the earlier result if it is not."""

    new: bool
    result: dict[str, Any] | None = None


def content_hash(data: bytes) -> str:
    """The hash stored with a key, to tell a replay from a different request reusing the key."""
    return hashlib.sha256(data).hexdigest()


def begin(session: Session, *, scope: str, key: str, request_hash: str | None = None,
          now: dt.datetime | None = None) -> Seen:
    """Reserve ``key`` in ``scope``; if it was already used, say so and hand back the stored result."""
    earlier = session.get(IdempotencyKey, (scope, key))
    if earlier is not None:
        if request_hash and earlier.request_hash and request_hash != earlier.request_hash:
            raise DataError(f"idempotency key {key!r} ({scope}) was already used for a different request",
                            hint="use a new key for a new request")
        return Seen(False, earlier.result)
    session.add(IdempotencyKey(scope=scope, key=key, request_hash=request_hash, created_at=as_utc(now or utcnow())))
    session.flush()  # a concurrent duplicate fails here (primary key), inside the caller's transaction
    return Seen(True)


def finish(session: Session, *, scope: str, key: str, result: dict[str, Any]) -> None:
    """Store the result of a request reserved with :func:`begin` (returned to later replays)."""
    item = session.get(IdempotencyKey, (scope, key))
    if item is None:
        raise DataError(f"idempotency key {key!r} ({scope}) was not reserved", hint="call begin() first")
    item.result = result
    session.flush()
