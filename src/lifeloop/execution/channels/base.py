"""The one interface every channel adapter implements: ``send(batch) -> results``.

A batch is a list of :class:`Message` (one claimed outbox item each); the adapter answers with one
:class:`Result` per message, in any order, saying delivered, failed for good (with the reason) or
failed for now (retry later, perhaps after the provider's Retry-After). Adapters never touch the
outbox: dispatch marks the items from the results, so an adapter that crashes mid-batch leaves its
items claimed, and the lease brings them back (the idempotency key lets the receiver drop the resend).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Capabilities:
    """What an adapter can do, so dispatch and docs can say what to expect of it."""

    dedupes_by_key: bool = False      # the receiver drops a resend with the same idempotency key
    whole_batch: bool = False         # one batch is delivered or not as a whole (a file)
    masks_personal_data: bool = False  # personal fields are masked for the recipient's role
    wants_controls: bool = False      # the receiver is told about control-group customers too (simulator)


@dataclass(frozen=True)
class Message:
    """One contact to send: the outbox item's key and fields, the rendered script, the customer's details."""

    dispatch_id: int
    key: str
    as_of: dt.date
    customer_id: str
    strategy_id: str
    wave: str
    channel: str
    purpose: str = "marketing"
    rm_id: str | None = None
    offer: str | None = None
    priority: int = 0
    script: str = ""
    # raw customer fields (name, mobile ...) for adapters that mask them for their recipient
    customer: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    """The outcome of sending one message."""

    dispatch_id: int
    ok: bool
    retryable: bool = False
    error: str | None = None
    retry_after: dt.timedelta | None = None
    provider_ref: str | None = None

    @classmethod
    def sent(cls, message: Message, provider_ref: str | None = None) -> Result:
        """Delivered."""
        return cls(message.dispatch_id, True, provider_ref=provider_ref)

    @classmethod
    def failed(cls, message: Message, error: str, *, retryable: bool,
               retry_after: dt.timedelta | None = None) -> Result:
        """Not delivered: for good (``retryable=False``) or for now."""
        return cls(message.dispatch_id, False, retryable=retryable, error=error, retry_after=retry_after)


class Channel(Protocol):
    """A channel adapter."""

    name: str
    capabilities: Capabilities

    def send(self, batch: Sequence[Message]) -> list[Result]:
        """Deliver a batch; one result per message."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...

