"""Sending claimed outbox items and recording what came of them: the delivery semantics of dispatch (送达).

1. An item is committed as ``sending`` just before its adapter hands it to the provider — per message
   for adapters that report each (webhooks), per batch for the others (a file) — and its outcome is
   recorded as soon as it is known. So when a dispatcher dies, only what was in flight is in doubt.
2. An outcome nobody knows (a timeout after the request was written, a crash between request and
   record) is retried under the same key only for a provider that de-duplicates by key; for one that
   does not, the item becomes ``unknown``: checked later with the provider's status look-up when the
   channel has one, otherwise held for an operator (``lifeloop outbox unknown`` / ``resolve``).
3. Before claiming, claims of dispatchers that died on this host are taken back at once; an interrupted
   or crashing dispatcher gives back its own claims before it exits.
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, cast

from lifeloop.execution.channels.base import Channel, Message, Result, StatusLookup
from lifeloop.execution.gate import first_attempt
from lifeloop.store.ops import contacts as outbox
from lifeloop.store.ops import delivery, ledger
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.delivery import Recovered
from lifeloop.store.ops.owners import Owner


class Tally(Protocol):
    """Where outcomes are counted (``DispatchSummary``)."""

    def count(self, channel: str, what: str, n: int = 1) -> None: ...


def dedup_channels(adapters: Mapping[str, Channel]) -> set[str]:
    """Channels whose provider drops a resend with the same key: only these are ever re-sent after a doubt."""
    return {name for name, a in adapters.items() if a.capabilities.dedupes_by_key}


def recover_claims(sessions: Any, adapters: Mapping[str, Channel], owner: Owner, now: dt.datetime) -> Recovered:
    """Take back dead dispatchers' claims on this host and settle ``sending`` items nobody holds."""
    with unit_of_work(sessions) as session:
        return delivery.recover(session, here=owner, dedup_channels=dedup_channels(adapters), now=now)


def release_claims(sessions: Any, adapters: Mapping[str, Channel], tokens: Iterable[str], owner: Owner,
                   now: dt.datetime) -> Recovered:
    """Give back at once what this dispatcher holds under ``tokens`` (a second Ctrl-C waits for it).

    Ctrl-C may have struck in the middle of a database call and left its connection unusable (SQLite:
    "SQL statements in progress"): then the pool's connections are replaced and it is tried once more.
    """
    with _no_interrupts():
        for attempt in (1, 2):
            try:
                with unit_of_work(sessions) as session:
                    return delivery.release(session, claim_tokens=list(tokens), owner=owner.label,
                                            dedup_channels=dedup_channels(adapters), now=now)
            except Exception:
                if attempt == 2:
                    raise
                bind = getattr(sessions, "kw", {}).get("bind")
                if bind is not None:
                    bind.dispose()
    raise AssertionError("unreachable")


@contextmanager
def _no_interrupts() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def reconcile(sessions: Any, adapters: Mapping[str, Channel], clock: Callable[[], dt.datetime], tally: Tally,
              asked: set[int]) -> int:
    """Ask the providers that have a status look-up about their unknown items (each once per drain)."""
    settled = 0
    for name, adapter in sorted(adapters.items()):
        if not adapter.capabilities.status_lookup:
            continue
        lookup = cast(StatusLookup, adapter)
        now = clock()
        with sessions() as session:
            items = delivery.unknown_items(session, now=now, channel=name, settled_before=now - lookup.reconcile_after)
        for item in items:
            if item.id in asked:
                continue
            asked.add(item.id)
            found = lookup.lookup(item.key)
            if found is None:
                continue
            with unit_of_work(sessions) as session:
                status = delivery.settle_unknown(session, dispatch_id=item.id, delivered=found.delivered,
                                                 evidence=found.evidence, provider_ref=found.provider_ref, now=clock())
            if status is not None:
                settled += 1
                tally.count(name, "reconciled")
    return settled


def send_allowed(sessions: Any, adapters: Mapping[str, Channel], allowed: Sequence[Mapping[str, Any]],
                 to_message: Callable[[Mapping[str, Any]], Message], clock: Callable[[], dt.datetime],
                 tally: Tally) -> None:
    """Send the items that passed the send-time checks, channel by channel, recording each outcome."""
    dedup = dedup_channels(adapters)
    for channel in sorted({c["channel"] for c in allowed}):
        adapter = adapters[channel]
        group = [c for c in allowed if c["channel"] == channel]
        tokens = {c["id"]: c["claim_token"] for c in group}
        first = {c["id"] for c in group if first_attempt(c)}   # a definitive failure of these frees its place
        messages = [to_message(c) for c in group]

        def record(result: Result, channel: str = channel, tokens: Mapping[int, str] = tokens,
                   first: set[int] = first) -> None:
            with unit_of_work(sessions) as session:
                _record(session, channel, result, tokens[result.dispatch_id], clock(), tally, channel in dedup,
                        result.dispatch_id in first)

        if adapter.capabilities.reports_each:
            def before(m: Message, tokens: Mapping[int, str] = tokens) -> bool:
                with unit_of_work(sessions) as session:
                    return bool(outbox.mark_sending(session, claim_token=tokens[m.dispatch_id],
                                                    dispatch_ids=[m.dispatch_id], now=clock()))

            recorded: set[int] = set()

            def after(result: Result, recorded: set[int] = recorded) -> None:
                record(result)
                recorded.add(result.dispatch_id)

            send = cast(Any, adapter).send   # reports_each: send(batch, before=..., after=...)
            results = send(messages, before=before, after=after)
            for r in results:
                if r.dispatch_id not in recorded:
                    record(r)
            continue
        with unit_of_work(sessions) as session:   # committed before the batch goes out
            held = set()
            for token in set(tokens.values()):
                held.update(outbox.mark_sending(session, claim_token=token, dispatch_ids=list(tokens), now=clock()))
        results = adapter.send([m for m in messages if m.dispatch_id in held])
        with unit_of_work(sessions) as session:   # every outcome of the batch in one transaction
            delivered = [(r.dispatch_id, tokens[r.dispatch_id], r.provider_ref) for r in results if r.ok]
            if marked := outbox.mark_sent_each(session, sent=delivered, now=clock()):
                tally.count(channel, "sent", marked)
            for r in results:
                if not r.ok:
                    _record(session, channel, r, tokens[r.dispatch_id], clock(), tally, channel in dedup,
                            r.dispatch_id in first)


def _record(session: Any, channel: str, r: Result, token: str, now: dt.datetime, tally: Tally, dedup: bool,
            first: bool) -> None:
    """Record one result; a definitive failure of a first attempt gives back its contact-ledger place."""
    if r.ok:
        if outbox.mark_sent(session, dispatch_id=r.dispatch_id, claim_token=token, now=now,
                            provider_ref=r.provider_ref):
            tally.count(channel, "sent")
        return
    if r.unknown and not dedup:
        if outbox.mark_unknown(session, dispatch_id=r.dispatch_id, claim_token=token, reason=r.error or "no answer",
                               now=now):
            tally.count(channel, "unknown")
        return
    status = outbox.mark_failed(session, dispatch_id=r.dispatch_id, claim_token=token, error=r.error or "failed",
                                now=now, retryable=r.retryable or r.unknown, retry_after=r.retry_after)
    if status == "failed":
        tally.count(channel, "failed")
        if first:   # it never reached the customer (no earlier attempt might have): its place is free again
            ledger.release(session, dispatch_id=r.dispatch_id)
    elif status == "pending":
        tally.count(channel, "retrying")


def picked_up_lines(got: Recovered) -> list[str]:
    """What a dispatcher found left by others and took over, in words."""
    out = [f"picked up {n:,} items left claimed by a dispatcher that died ({owner})"
           for owner, n in sorted(got.released.items())]
    if got.resent:
        out.append(f"{got.resent:,} contacts a stopped dispatcher was sending will be sent again under the same "
                   "key (their provider de-duplicates)")
    if got.failed:
        out.append(f"{got.failed:,} contacts a stopped dispatcher was sending on their last attempt are failed")
    if got.unknown:
        out.append(f"{got.unknown:,} contacts a stopped dispatcher was sending are of unknown outcome (their "
                   "provider does not de-duplicate): not re-sent")
    return out


def waiting_lines(sessions: Any, adapters: Mapping[str, Channel], own_tokens: Iterable[str],
                  now: dt.datetime) -> list[str]:
    """What this dispatcher left alone, and why: unknown items, and items other dispatchers hold."""
    with sessions() as session:
        unknown = delivery.unknown_by_channel(session)
        held = delivery.held_by_others(session, own_tokens=own_tokens)
    out = []
    looked_up = {n for n, a in adapters.items() if a.capabilities.status_lookup}
    checked = sum(n for c, n in unknown.items() if c in looked_up)
    manual = sum(n for c, n in unknown.items() if c not in looked_up)
    if checked:
        out.append(f"{checked:,} contacts of unknown outcome will be checked with their provider's status look-up")
    if manual:
        out.append(f"{manual:,} contacts of unknown outcome wait for an operator: `lifeloop outbox unknown`, then "
                   "`lifeloop outbox resolve KEY sent|not-sent --reason TEXT`")
    for worker, n, until in held:
        when = f", lease until {until:%Y-%m-%d %H:%M} UTC" if until is not None else ""
        out.append(f"{n:,} contacts are held by another dispatcher ({worker}{when}): left alone")
    return out
