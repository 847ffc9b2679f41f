"""Webhook gateway adapter (SMS / push / e-mail providers): one HTTP POST per contact.

The idempotency key goes in a header (``Idempotency-Key``). Whether the provider drops a resend with
the same key is declared per channel (``dedupes_by_key``, default **no**), and decides what a send of
unknown outcome — the request was written, no answer came: a read timeout, a connection reset, a 502 or
504 from a proxy in front of the provider — becomes:

- the provider de-duplicates: retried at once and later under the same key (at least once, delivered once);
- it does not: never retried; the result is ``unknown`` and the item waits for the provider's status
  look-up (``status_url``, a GET with the key: 200 delivered, 404 not there) or for an operator.

Failures that certainly did not deliver are retried either way: no connection (refused, connect timeout),
5xx other than 502/504, 429 (its ``Retry-After`` honoured). Exponential backoff with jitter; past the
inline limits the item goes back to the outbox, which tries again later. Any other 4xx means the request
itself is wrong: no retry, the item is marked failed with the provider's reason.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import random
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

from lifeloop.execution.channels.base import After, Before, Capabilities, Lookup, Message, Result

UNREACHABLE = ("timeout", "connection error")  # how results start when the gateway did not answer at all
AMBIGUOUS_STATUS = (502, 504)  # a proxy's answer: the provider behind it may have taken the request


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> dt.timedelta | None:
    """A Retry-After header (seconds or an HTTP date) as a wait; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return dt.timedelta(seconds=int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(dt.timedelta(0), when - (now or dt.datetime.now(dt.UTC)))


# what a gateway needs to deliver a contact, and nothing more (docs/security.md, "Masking everywhere"): the
# customer number (the gateway resolves the address from its own directory), ids of the decision, and the
# rendered script, whose personal variables are masked (a name as 王**, an amount as 约 5 万)
BODY_FIELDS = ("idempotency_key", "customer_id", "channel", "strategy", "wave", "purpose", "offer", "as_of", "text")


def body(message: Message) -> dict[str, Any]:
    """What the gateway receives: :data:`BODY_FIELDS` — ids and the rendered (already masked) script, no raw
    personal data (the message's ``customer`` details never leave)."""
    return {"idempotency_key": message.key, "customer_id": message.customer_id, "channel": message.channel,
            "strategy": message.strategy_id, "wave": message.wave, "purpose": message.purpose,
            "offer": message.offer, "as_of": message.as_of.isoformat(), "text": message.script}


class WebhookChannel:
    """POST each message to ``url`` with retries; see the module docstring for what is retried."""

    def __init__(self, name: str, url: str, *, timeout: float = 5.0, retries: int = 3, backoff: float = 0.5,
                 max_inline_wait: float = 10.0, key_header: str = "Idempotency-Key",
                 headers: dict[str, str] | None = None, sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None, transport: Any = None, breaker: int = 3,
                 dedupes_by_key: bool = False, status_url: str | None = None, reconcile_after: float = 30.0):
        import httpx

        self.name = name
        self.url = url
        self.status_url = status_url  # with "{key}", e.g. https://sms.bank.internal/status/{key}
        self.reconcile_after = dt.timedelta(seconds=reconcile_after)
        self.capabilities = Capabilities(dedupes_by_key=dedupes_by_key, reports_each=True,
                                         status_lookup=status_url is not None)
        self.retries = retries
        self.backoff = backoff
        self.max_inline_wait = max_inline_wait
        self.key_header = key_header
        self.breaker = breaker
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._client = httpx.Client(timeout=timeout, headers=headers or {}, transport=transport)

    def send(self, batch: Sequence[Message], *, before: Before | None = None,
             after: After | None = None) -> list[Result]:
        """Deliver each message (see the module docstring); one result per message.

        ``before(message)`` is called just before a message's first request (False: skip it, it is no
        longer ours); ``after(result)`` as soon as its outcome is known. When the gateway cannot be
        reached for ``breaker`` messages in a row, the rest of the batch is handed back untried.
        """
        results: list[Result] = []
        unreachable = 0
        for m in batch:
            if unreachable >= self.breaker:
                result = Result.failed(m, f"not tried: gateway unreachable ({unreachable} contacts in a row)",
                                       retryable=True)
            elif before is not None and not before(m):
                result = Result.failed(m, "not tried: the claim was lost before sending", retryable=True)
            else:
                result = self.send_one(m)
                unreachable = unreachable + 1 if result.error and result.error.startswith(UNREACHABLE) else 0
            if after is not None:
                after(result)
            results.append(result)
        return results

    def send_one(self, message: Message) -> Result:
        """POST one message, retrying at once what is worth retrying, within the inline limits.

        A result of unknown outcome is retried only when the provider de-duplicates by key.
        """
        last: Result | None = None
        for attempt in range(self.retries + 1):
            last = self._post(message)
            if last.unknown and not self.capabilities.dedupes_by_key:
                return last  # the provider may have it: never re-sent blindly
            if last.ok or not last.retryable or attempt == self.retries:
                return last
            wait = self.backoff * 2 ** attempt
            wait += self._rng.uniform(0, wait)  # jitter: many clients do not retry in lockstep
            if last.retry_after is not None:
                if last.retry_after.total_seconds() > self.max_inline_wait:
                    return last  # the outbox waits that long, not this worker
                wait = max(wait, last.retry_after.total_seconds())
            self._sleep(wait)
        assert last is not None
        return last

    def _post(self, message: Message) -> Result:
        import httpx

        try:
            response = self._client.post(self.url, content=json.dumps(body(message), ensure_ascii=False).encode(),
                                         headers={self.key_header: message.key,
                                                  "Content-Type": "application/json; charset=utf-8"})
        except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:  # no request was written
            return Result.failed(message, f"{UNREACHABLE[0]}: {type(exc).__name__} (not sent)", retryable=True)
        except httpx.ConnectError as exc:  # refused, no route: no request was written
            return Result.failed(message, f"{UNREACHABLE[1]}: {type(exc).__name__}: {exc} (not sent)", retryable=True)
        except httpx.TimeoutException as exc:  # written (in part or whole), no answer: the provider may have it
            return Result.outcome_unknown(message, f"{UNREACHABLE[0]}: {type(exc).__name__} after the request "
                                                   "was written")
        except httpx.TransportError as exc:  # reset, dropped mid-response: the provider may have it
            return Result.outcome_unknown(message, f"{UNREACHABLE[1]}: {type(exc).__name__}: {exc} after the "
                                                   "request was written")
        status = response.status_code
        if 200 <= status < 300:
            return Result.sent(message, provider_ref=_provider_ref(response))
        reason = f"HTTP {status}: {response.text[:200].strip()}"
        if status in AMBIGUOUS_STATUS:
            return Result.outcome_unknown(message, f"{reason} (a proxy's answer: the provider may have it)")
        if status == 429 or status >= 500:  # throttled or the provider's own fault: try again
            return Result.failed(message, reason, retryable=True,
                                 retry_after=parse_retry_after(response.headers.get("Retry-After")))
        return Result.failed(message, reason, retryable=False)  # the request is wrong; resending will not help

    def lookup(self, key: str) -> Lookup | None:
        """Ask the provider's status look-up about ``key``: 200 delivered, 404 not there; else None (ask later)."""
        import httpx

        if self.status_url is None:
            return None
        url = self.status_url.replace("{key}", urllib.parse.quote(key, safe=""))
        try:
            response = self._client.get(url, headers={self.key_header: key})
        except httpx.HTTPError:
            return None
        if response.status_code == 200:
            return Lookup(True, f"status look-up: HTTP 200 for {key[:12]}", _provider_ref(response))
        if response.status_code == 404:
            return Lookup(False, f"status look-up: HTTP 404 (the provider has no message {key[:12]})")
        return None

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()


def _provider_ref(response: Any) -> str | None:
    try:
        data = response.json()
    except ValueError:
        return None
    ref = data.get("id") if isinstance(data, dict) else None
    return str(ref)[:128] if ref is not None else None
