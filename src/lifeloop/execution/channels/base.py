"""The one interface every channel adapter implements: ``send(batch) -> results``.

A batch is a list of :class:`Message` (one claimed outbox item each); the adapter answers with one
:class:`Result` per message, in any order, saying delivered, failed for good (with the reason) or
failed for now (retry later, perhaps after the provider's Retry-After). Adapters never touch the
outbox: dispatch marks the items from the results.

Delivery semantics: dispatch commits an item as ``sending`` before its adapter hands it to the provider.
An adapter that ``reports_each`` takes two hooks — ``before(message)`` just before the first request of
a message (False: do not send it) and ``after(result)`` as soon as its outcome is known — so only the
message in flight is in doubt when the process dies. A result may be ``unknown`` (a timeout after the
request was written): for a provider that ``dedupes_by_key`` dispatch retries it under the same key; for
one that does not, the item becomes ``unknown`` and is reconciled through the adapter's ``lookup``
(``status_lookup``) or by an operator, never re-sent blindly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Capabilities:
    """What an adapter can do, so dispatch and docs can say what to expect of it."""

    dedupes_by_key: bool = False      # the receiver drops a resend with the same idempotency key
    whole_batch: bool = False         # one batch is delivered or not as a whole (a file)
    masks_personal_data: bool = False  # personal fields are masked for the recipient's role
    wants_controls: bool = False      # the receiver is told about control-group customers too (simulator)
    reports_each: bool = False        # send() takes before/after hooks per message (see the module docstring)
    status_lookup: bool = False       # lookup(key) asks the provider whether it has a message (StatusLookup)


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
    unknown: bool = False     # the request may have reached the provider: delivered or not, nobody knows

    @classmethod
    def sent(cls, message: Message, provider_ref: str | None = None) -> Result:
        """Delivered."""
        return cls(message.dispatch_id, True, provider_ref=provider_ref)

    @classmethod
    def failed(cls, message: Message, error: str, *, retryable: bool,
               retry_after: dt.timedelta | None = None) -> Result:
        """Not delivered: for good (``retryable=False``) or for now."""
        return cls(message.dispatch_id, False, retryable=retryable, error=error, retry_after=retry_after)

    @classmethod
    def outcome_unknown(cls, message: Message, error: str) -> Result:
        """The request was written but no answer came (timeout, connection reset): maybe delivered."""
        return cls(message.dispatch_id, False, retryable=True, error=error, unknown=True)


@dataclass(frozen=True)
class Lookup:
    """What a provider's status look-up said of one key: delivered, or not there (with the evidence)."""

    delivered: bool
    evidence: str
    provider_ref: str | None = None


Before = Callable[[Message], bool]
After = Callable[[Result], None]


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


class StatusLookup(Protocol):
    """An adapter whose provider can say whether it has a message (``capabilities.status_lookup``)."""

    reconcile_after: dt.timedelta   # how long after an unknown outcome the provider's answer can be trusted

    def lookup(self, key: str) -> Lookup | None:
        """Delivered or not found; None when the provider could not tell (ask again later)."""
        ...

