"""Webhook gateway adapter (SMS / push / e-mail providers): one HTTP POST per contact.

The idempotency key goes in a header (``Idempotency-Key``), so a provider drops a resend after a
timeout or a crash. Timeouts, connection errors, 5xx and 429 are retried a few times at once with
exponential backoff and jitter (a 429's ``Retry-After`` is honoured); if that does not help, the item
goes back to the outbox, which tries again later (also after ``Retry-After``). Any other 4xx means the
request itself is wrong: no retry, the item is marked failed with the provider's reason.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from lifeloop.execution.channels.base import Capabilities, Message, Result

UNREACHABLE = ("timeout", "connection error")  # how results start when the gateway did not answer at all


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


def body(message: Message) -> dict[str, Any]:
    """What the gateway receives: ids and the rendered (already masked) script, no raw personal data."""
    return {"idempotency_key": message.key, "customer_id": message.customer_id, "channel": message.channel,
            "strategy": message.strategy_id, "wave": message.wave, "purpose": message.purpose,
            "offer": message.offer, "as_of": message.as_of.isoformat(), "text": message.script}


class WebhookChannel:
    """POST each message to ``url`` with retries; see the module docstring for what is retried."""

    capabilities = Capabilities(dedupes_by_key=True)

    def __init__(self, name: str, url: str, *, timeout: float = 5.0, retries: int = 3, backoff: float = 0.5,
                 max_inline_wait: float = 10.0, key_header: str = "Idempotency-Key",
                 headers: dict[str, str] | None = None, sleep: Callable[[float], None] = time.sleep,
                 rng: random.Random | None = None, transport: Any = None, breaker: int = 3):
        import httpx

        self.name = name
        self.url = url
        self.retries = retries
        self.backoff = backoff
        self.max_inline_wait = max_inline_wait
        self.key_header = key_header
        self.breaker = breaker
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._client = httpx.Client(timeout=timeout, headers=headers or {}, transport=transport)

    def send(self, batch: Sequence[Message]) -> list[Result]:
        """Deliver each message (see the module docstring); one result per message.

        When the gateway cannot be reached for ``breaker`` messages in a row, the rest of the batch is
        handed back to the outbox untried, instead of each waiting out its own retries.
        """
        results: list[Result] = []
        unreachable = 0
        for m in batch:
            if unreachable >= self.breaker:
                results.append(Result.failed(m, f"not tried: gateway unreachable ({unreachable} contacts in a row)",
                                             retryable=True))
                continue
            result = self.send_one(m)
            unreachable = unreachable + 1 if result.error and result.error.startswith(UNREACHABLE) else 0
            results.append(result)
        return results

    def send_one(self, message: Message) -> Result:
        """POST one message, retrying at once what is worth retrying, within the inline limits."""
        last: Result | None = None
        for attempt in range(self.retries + 1):
            last = self._post(message)
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
        except httpx.TimeoutException as exc:
            return Result.failed(message, f"{UNREACHABLE[0]}: {type(exc).__name__}", retryable=True)
        except httpx.TransportError as exc:  # refused, reset, dropped mid-response
            return Result.failed(message, f"{UNREACHABLE[1]}: {type(exc).__name__}: {exc}", retryable=True)
        status = response.status_code
        if 200 <= status < 300:
            return Result.sent(message, provider_ref=_provider_ref(response))
        reason = f"HTTP {status}: {response.text[:200].strip()}"
        if status == 429 or status >= 500:  # throttled or the provider's own fault: try again
            return Result.failed(message, reason, retryable=True,
                                 retry_after=parse_retry_after(response.headers.get("Retry-After")))
        return Result.failed(message, reason, retryable=False)  # the request is wrong; resending will not help

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
