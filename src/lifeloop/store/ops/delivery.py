"""What happens to outbox items whose sender stopped, and to sends whose outcome is unknown (送达状态).

- ``recover``: claims of a dispatcher that died on this host (its pid is gone, or reused by a process
  with another start time) are taken back at once; items it was ``sending`` — and ``sending`` items
  whose lease ran out, on any host — are settled: sent again under the same key when the channel's
  provider de-duplicates by key, ``unknown`` when it does not (the provider may have the message).
- ``release``: an interrupted dispatcher gives back its own claims before it exits.
- ``unknown_items`` lists what waits for an operator; ``settle_unknown`` records what the provider's
  status look-up said; ``resolve`` records an operator's decision (audited).

Services take a keyword-only session and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from lifeloop.errors import DataError, LifeloopError, NotFoundError, Problem
from lifeloop.store.ops import audit, ledger
from lifeloop.store.ops.contacts import IN_HANDS
from lifeloop.store.ops.models import Dispatch
from lifeloop.store.ops.owners import Owner, is_alive
from lifeloop.store.ops.types import as_utc, utcnow

Resolution = Literal["sent", "not-sent"]
_NO_CLAIM = {"claim_token": None, "claim_expires_at": None}


@dataclass
class Recovered:
    """What ``recover`` or ``release`` did: claims given back per owner, and how ``sending`` items were settled."""

    released: dict[str, int] = field(default_factory=dict)  # owner host:pid -> claimed items made pending
    resent: int = 0      # sending items of de-duplicating channels, to be sent again under the same key
    unknown: int = 0     # sending items of channels that do not de-duplicate: held as unknown
    failed: int = 0      # sending items of de-duplicating channels that had no attempt left

    def add(self, other: Recovered) -> None:
        """Fold another result into this one."""
        for owner, n in other.released.items():
            self.released[owner] = self.released.get(owner, 0) + n
        self.resent += other.resent
        self.unknown += other.unknown
        self.failed += other.failed

    @property
    def total(self) -> int:
        return sum(self.released.values()) + self.resent + self.unknown + self.failed


def recover(session: Session, *, here: Owner, dedup_channels: Collection[str], now: dt.datetime | None = None,
            alive: Callable[[Owner], bool] = is_alive) -> Recovered:
    """Take back the claims of dead dispatchers on this host, and settle ``sending`` items nobody holds.

    Claims of other hosts are not judged (their processes cannot be seen from here): they wait out
    their lease. A ``sending`` item whose lease ran out is settled whatever its host.
    """
    now = as_utc(now or utcnow())
    out = Recovered()
    owners = session.execute(
        sa.select(Dispatch.claim_host, Dispatch.claim_pid, Dispatch.claim_started).distinct()
        .where(Dispatch.status.in_(IN_HANDS), Dispatch.claim_host == here.host, Dispatch.claim_pid.is_not(None))).all()
    for host, pid, started in owners:
        owner = Owner(host, pid, as_utc(started) if started else None)
        if (pid == here.pid and owner.started == here.started) or alive(owner):
            continue
        held_by = sa.and_(Dispatch.claim_host == host, Dispatch.claim_pid == pid,
                          Dispatch.claim_started.is_(None) if started is None else Dispatch.claim_started == started)
        out.add(_give_back(session, held_by, owner.label, f"dispatcher {owner.label} died", dedup_channels, now))
    expired = sa.and_(Dispatch.status == "sending", Dispatch.claim_expires_at <= now)
    stale = session.execute(sa.select(Dispatch.claimed_by).distinct().where(expired)).scalars().all()
    for worker in stale:
        why = f"the lease of dispatcher {worker} ran out while it was sending"
        out.add(_settle_sending(session, sa.and_(expired, Dispatch.claimed_by == worker), why, dedup_channels, now))
    return out


def release(session: Session, *, claim_tokens: Iterable[str], owner: str, dedup_channels: Collection[str],
            now: dt.datetime | None = None) -> Recovered:
    """Give back at once the items an interrupted dispatcher holds under ``claim_tokens``."""
    now = as_utc(now or utcnow())
    tokens = [t for t in claim_tokens if t]
    if not tokens:
        return Recovered()
    return _give_back(session, Dispatch.claim_token.in_(tokens), owner, f"dispatcher {owner} was interrupted",
                      dedup_channels, now)


def _give_back(session: Session, held_by: Any, label: str, why: str, dedup_channels: Collection[str],
               now: dt.datetime) -> Recovered:
    out = Recovered()
    # claimed, not yet handed to a provider: the attempt never happened, so it is not counted
    n = session.execute(
        sa.update(Dispatch).where(held_by, Dispatch.status == "claimed")
        .values(status="pending", attempts=sa.case((Dispatch.attempts > 0, Dispatch.attempts - 1), else_=0),
                last_error=f"{why} holding it; taken back", updated_at=now, **_NO_CLAIM)
        .execution_options(synchronize_session=False)).rowcount
    if n:
        out.released[label] = n
    out.add(_settle_sending(session, sa.and_(held_by, Dispatch.status == "sending"), f"{why} while sending",
                            dedup_channels, now))
    session.expire_all()
    return out


def _settle_sending(session: Session, where: Any, why: str, dedup_channels: Collection[str],
                    now: dt.datetime) -> Recovered:
    out = Recovered()
    dedup = Dispatch.channel.in_(list(dedup_channels))
    again = sa.and_(where, dedup, Dispatch.attempts < Dispatch.max_attempts)
    out.resent = session.execute(
        sa.update(Dispatch).where(again)
        .values(status="pending", next_attempt_at=now, last_error=f"{why}; sent again under the same key "
                "(the provider de-duplicates)", updated_at=now, **_NO_CLAIM)
        .execution_options(synchronize_session=False)).rowcount
    out.failed = session.execute(
        sa.update(Dispatch).where(where, dedup)
        .values(status="failed", last_error=f"{why} on its last attempt", updated_at=now, **_NO_CLAIM)
        .execution_options(synchronize_session=False)).rowcount
    reason = f"{why}: the provider may have it and does not de-duplicate by key"
    # the claim token stays: the holder's late answer (a live worker past its lease) can still record it sent
    out.unknown = session.execute(
        sa.update(Dispatch).where(where, sa.not_(dedup))
        .values(status="unknown", unknown_since=now, unknown_reason=reason[:512], last_error=reason,
                claim_expires_at=None, updated_at=now)
        .execution_options(synchronize_session=False)).rowcount
    return out


# ---------------------------------------------------------------------------------------------- unknown
@dataclass(frozen=True)
class UnknownItem:
    """An outbox item whose delivery is unknown, as an operator sees it."""

    id: int
    key: str
    as_of: dt.date
    customer_id: str
    channel: str
    strategy_id: str
    wave: str
    reason: str
    since: dt.datetime
    age: dt.timedelta


def unknown_items(session: Session, *, now: dt.datetime | None = None, channel: str | None = None,
                  settled_before: dt.datetime | None = None) -> list[UnknownItem]:
    """Items of unknown outcome, oldest first (of one channel; unknown since before a time)."""
    now = as_utc(now or utcnow())
    query = sa.select(Dispatch).where(Dispatch.status == "unknown")
    if channel is not None:
        query = query.where(Dispatch.channel == channel)
    if settled_before is not None:
        query = query.where(Dispatch.unknown_since <= as_utc(settled_before))
    out = []
    for d in session.scalars(query.order_by(Dispatch.unknown_since, Dispatch.id)):
        since = as_utc(d.unknown_since or d.updated_at)
        out.append(UnknownItem(d.id, d.idempotency_key, d.as_of, d.customer_id, d.channel, d.strategy_id, d.wave,
                               d.unknown_reason or d.last_error or "outcome unknown", since, now - since))
    return out


def unknown_by_channel(session: Session) -> dict[str, int]:
    """How many items of unknown outcome each channel has."""
    query = sa.select(Dispatch.channel, sa.func.count()).where(Dispatch.status == "unknown").group_by(Dispatch.channel)
    return {channel: n for channel, n in session.execute(query)}


def latest_day(session: Session) -> dt.date | None:
    """The newest list date in the outbox (None: nothing dispatched yet)."""
    return session.scalar(sa.select(sa.func.max(Dispatch.as_of)))


def status_counts(session: Session, *, since: dt.date | None = None) -> list[tuple[dt.date, str, str, int]]:
    """(list date, channel, status, how many) of the outbox, newest day first (from ``since`` on)."""
    query = (sa.select(Dispatch.as_of, Dispatch.channel, Dispatch.status, sa.func.count())
             .group_by(Dispatch.as_of, Dispatch.channel, Dispatch.status)
             .order_by(Dispatch.as_of.desc(), Dispatch.channel, Dispatch.status))
    if since is not None:
        query = query.where(Dispatch.as_of >= since)
    return [(d, c, s, int(n)) for d, c, s, n in session.execute(query)]


def held_by_others(session: Session, *, own_tokens: Iterable[str] = ()) -> list[tuple[str, int, dt.datetime | None]]:
    """Items other dispatchers hold (claimed or sending): (worker, how many, when its last lease ends)."""
    own = [t for t in own_tokens if t]
    query = (sa.select(Dispatch.claimed_by, sa.func.count(), sa.func.max(Dispatch.claim_expires_at))
             .where(Dispatch.status.in_(IN_HANDS)).group_by(Dispatch.claimed_by).order_by(Dispatch.claimed_by))
    if own:
        query = query.where(Dispatch.claim_token.not_in(own))
    return [(worker or "?", n, as_utc(until) if until else None) for worker, n, until in session.execute(query)]


def settle_unknown(session: Session, *, dispatch_id: int, delivered: bool, evidence: str,
                   now: dt.datetime | None = None, provider_ref: str | None = None,
                   actor: str = "dispatch") -> str | None:
    """Record what the provider's status look-up said of an unknown item; its new status (None: not unknown).

    Delivered: ``sent`` (at the time of the attempt). Not found: ``pending``, due now, sent again under
    the same key — or ``failed`` when it has no attempt left. Audited either way.
    """
    now = as_utc(now or utcnow())
    item = session.scalars(sa.select(Dispatch).where(Dispatch.id == dispatch_id, Dispatch.status == "unknown")
                           .with_for_update().execution_options(populate_existing=True)).one_or_none()
    if item is None:
        return None
    if delivered:
        item.status, item.sent_at, item.last_error = "sent", item.unknown_since or now, None
        item.provider_ref = provider_ref or item.provider_ref
    elif item.attempts < item.max_attempts:
        item.status, item.next_attempt_at = "pending", now
        item.last_error = f"not delivered: {evidence}; sent again"
    else:
        item.status, item.last_error = "failed", f"not delivered: {evidence}; no attempt left"
        ledger.release(session, dispatch_id=item.id)   # known not to have reached the customer: its place is free
    item.claim_token = item.claim_expires_at = None
    item.updated_at = now
    audit.record(session, actor=actor, action="outbox.reconciled", target_type="dispatch",
                 target_id=item.idempotency_key, reason=evidence,
                 details={"status": item.status, "channel": item.channel, "customer_id": item.customer_id,
                          "unknown_reason": item.unknown_reason}, at=now)
    session.flush()
    return item.status


def resolve(session: Session, *, key: str, outcome: Resolution, reason: str, actor: str,
            now: dt.datetime | None = None, resend: bool = False) -> Dispatch:
    """An operator's decision on an item of unknown outcome (audited); ``key`` may be a unique prefix (8+).

    ``sent``: the provider had it (sent at the time of the attempt). ``not-sent``: closed as ``failed`` with
    the reason — or, with ``resend``, due again now under the same key (it passes every send-time check
    again). Anything but an ``unknown`` item is refused, and nothing changes.
    """
    now = as_utc(now or utcnow())
    if outcome not in ("sent", "not-sent"):
        raise LifeloopError(f"unknown resolution {outcome!r}", hint="write sent or not-sent")
    if not reason.strip():
        raise LifeloopError("a resolution needs a reason", hint="add --reason TEXT, e.g. 'provider report 2026-12-01'")
    if resend and outcome == "sent":
        raise LifeloopError("--resend goes with not-sent only", hint="a contact the provider had is not sent again")
    item = _by_key(session, key)
    if item.status != "unknown":
        raise DataError(f"contact {item.idempotency_key[:16]} is {item.status}, not unknown: only contacts of unknown "
                        "outcome are resolved", hint="`lifeloop outbox unknown` lists them")
    was = {"unknown_reason": item.unknown_reason, "unknown_since": str(item.unknown_since), "attempts": item.attempts}
    if outcome == "sent":
        item.status, item.sent_at, item.last_error = "sent", item.unknown_since or now, None
    elif resend:
        item.status, item.next_attempt_at = "pending", now
        item.max_attempts = max(item.max_attempts, item.attempts + 1)
        item.last_error = f"not sent (resolved by {actor}: {reason}); due again"
    else:
        item.status, item.last_error = "failed", f"not sent (resolved by {actor}): {reason}"
        ledger.release(session, dispatch_id=item.id)   # an operator says it never reached the customer
    item.claim_token = item.claim_expires_at = None
    item.updated_at = now
    audit.record(session, actor=actor, action="outbox.resolve", target_type="dispatch",
                 target_id=item.idempotency_key, reason=reason,
                 details={**was, "resolution": outcome, "resend": resend, "status": item.status,
                          "channel": item.channel, "customer_id": item.customer_id}, at=now)
    session.flush()
    return item


def _by_key(session: Session, key: str) -> Dispatch:
    key = key.strip()
    exact = session.scalars(sa.select(Dispatch).where(Dispatch.idempotency_key == key)).one_or_none()
    if exact is not None:
        return exact
    matches = list(session.scalars(sa.select(Dispatch).where(Dispatch.idempotency_key.startswith(key, autoescape=True))
                                   .limit(6))) if len(key) >= 8 else []
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise NotFoundError(f"no contact with key {key!r}",
                            hint="copy the key from `lifeloop outbox unknown` (a unique prefix of "
                                 "8+ characters will do)")
    raise LifeloopError(f"key prefix {key!r} matches several contacts",
                        problems=[Problem(f"{m.idempotency_key} ({m.status})") for m in matches[:5]],
                        hint="give more of the key")
