"""Contact history and the dispatch outbox (触达记录 / 发件箱).

The plan step enqueues one row per contact, keyed by an idempotency key, so re-running a day enqueues
nothing twice. Channel workers then *claim* a batch, send it, and mark each item sent or failed; a
failed item comes back after a backoff until it runs out of attempts. A claim is a lease: if a worker
dies mid-batch, its items become claimable again when the lease expires, and the channel provider
deduplicates the resend by the same idempotency key. So a crash loses nothing and sends nothing twice.

Claiming is one atomic statement on both databases: ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE
SKIP LOCKED)`` on PostgreSQL (concurrent claimers skip each other's rows instead of waiting), and the
same UPDATE on SQLite, where the single writer lock makes it atomic and the ``status`` condition is
re-checked under that lock.

Services take a keyword-only session and never commit. A claim must be committed before sending, so
that other workers see it, and so must ``mark_sending`` just before an item goes to its provider: a
crash between the request and its record then leaves the item ``sending``, which the next dispatcher
turns into ``unknown`` for a provider that does not de-duplicate (never re-sent blindly) or sends again
for one that does (``lifeloop.store.ops.delivery``). A claim records its owner (host, pid, process
start), so a dead owner's claims on this host come back at once, not after the lease.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from lifeloop.store.ops.models import DISPATCH_STATUSES, Dispatch, MomentDecision
from lifeloop.store.ops.owners import Owner
from lifeloop.store.ops.types import as_utc, utcnow

DEFAULT_LEASE = dt.timedelta(minutes=5)
RETRY_BASE = dt.timedelta(seconds=30)
RETRY_CAP = dt.timedelta(hours=6)
# statuses that count as "contacted" for frequency caps: planned (or held for approval), in flight, delivered,
# or maybe delivered
COUNTS_AS_CONTACT = ("pending", "claimed", "sending", "sent", "held", "unknown")
IN_HANDS = ("claimed", "sending")   # an item a worker holds under its claim token


@dataclass(frozen=True)
class NewContact:
    """A contact the plan decided on, to be put in the outbox."""

    as_of: dt.date
    customer_id: str
    strategy_id: str
    wave: str
    channel: str
    purpose: str = "marketing"
    script_id: str | None = None
    rm_id: str | None = None
    payload: dict[str, Any] | None = None
    unit_cost: Decimal | None = None
    max_attempts: int = 5
    not_before: dt.datetime | None = None  # e.g. the end of quiet hours
    expires_at: dt.datetime | None = None  # the end of its validity: never sent after this instant
    idempotency_key: str | None = None     # default: dispatch_key(...) of the fields above

    key: str = field(init=False)

    def __post_init__(self) -> None:
        key = self.idempotency_key or dispatch_key(self.as_of, self.strategy_id, self.wave, self.customer_id,
                                                   self.channel)
        object.__setattr__(self, "key", key)


def dispatch_key(as_of: dt.date, strategy_id: str, wave: str, customer_id: str, channel: str) -> str:
    """The idempotency key of one contact: the same list line always gives the same key."""
    text = "\x1f".join((as_of.isoformat(), strategy_id, wave, customer_id, channel))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Enqueued:
    """What ``enqueue`` did: ids of new outbox rows, and keys that were already there (not re-added)."""

    new_ids: list[int]
    existing_keys: list[str]


def enqueue(session: Session, *, contacts: Iterable[NewContact], now: dt.datetime | None = None) -> Enqueued:
    """Put contacts in the outbox; a contact whose idempotency key is already there is skipped."""
    now = as_utc(now or utcnow())
    items = list(contacts)
    if not items:
        return Enqueued([], [])
    rows = [{
        "idempotency_key": c.key, "as_of": c.as_of, "customer_id": c.customer_id, "strategy_id": c.strategy_id,
        "wave": c.wave, "channel": c.channel, "purpose": c.purpose, "script_id": c.script_id, "rm_id": c.rm_id,
        "payload": c.payload, "unit_cost": c.unit_cost, "status": "pending", "attempts": 0,
        "max_attempts": c.max_attempts, "next_attempt_at": as_utc(c.not_before) if c.not_before else now,
        "expires_at": as_utc(c.expires_at) if c.expires_at else None,
        "created_at": now, "updated_at": now,
    } for c in items]
    table = Dispatch.__table__   # a Core insert: the ORM's bulk machinery cost more than the insert itself
    insert = _insert_for(session)(table).on_conflict_do_nothing(index_elements=["idempotency_key"])
    new_ids: list[int] = []
    new_keys: set[str] = set()
    for start in range(0, len(rows), 1000):
        result = session.execute(insert.returning(table.c.id, table.c.idempotency_key), rows[start:start + 1000])
        for row in result:
            new_ids.append(row.id)
            new_keys.add(row.idempotency_key)
    return Enqueued(sorted(new_ids), [c.key for c in items if c.key not in new_keys])


def _insert_for(session: Session):
    name = session.get_bind().dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def claim_batch(session: Session, *, worker: str, limit: int = 100, now: dt.datetime | None = None,
                lease: dt.timedelta = DEFAULT_LEASE, channels: Iterable[str] | None = None,
                owner: Owner | None = None) -> list[Dispatch]:
    """Take up to ``limit`` due items for ``worker`` (oldest due first); no item goes to two claimers.

    Due: pending and past its next attempt time, or claimed by someone whose lease has run out. Each
    claimed item's attempt count goes up by one, and records its owner (default: this process). Commit
    before sending.
    """
    now = as_utc(now or utcnow())
    owner = owner or Owner.current()
    _give_up_abandoned(session, now)
    due = sa.or_(
        sa.and_(Dispatch.status == "pending", Dispatch.next_attempt_at <= now),
        sa.and_(Dispatch.status == "claimed", Dispatch.claim_expires_at <= now),
    )
    due = sa.and_(due, Dispatch.attempts < Dispatch.max_attempts)
    if channels is not None:
        due = sa.and_(due, Dispatch.channel.in_(list(channels)))
    # MATERIALIZED: the pick runs once; a subquery in IN (...) may be re-run per row by PostgreSQL's
    # planner, and each run skips the rows the previous one locked, so one claim could exceed the limit.
    picked = (sa.select(Dispatch.id).where(due).order_by(Dispatch.next_attempt_at, Dispatch.id).limit(limit)
              .with_for_update(skip_locked=True)  # SQLite ignores FOR UPDATE; its write lock serialises
              .cte("picked").prefix_with("MATERIALIZED"))
    token = uuid.uuid4().hex
    claim = (sa.update(Dispatch).where(Dispatch.id == picked.c.id, due)
             .values(status="claimed", claimed_by=worker[:64], claim_token=token, claim_expires_at=now + lease,
                     claim_host=owner.host, claim_pid=owner.pid, claim_started=owner.started,
                     attempts=Dispatch.attempts + 1, updated_at=now)
             .returning(Dispatch.id)
             .execution_options(synchronize_session=False))
    ids = list(session.scalars(claim))
    if not ids:
        return []
    rows = session.scalars(sa.select(Dispatch).where(Dispatch.id.in_(ids))
                           .order_by(Dispatch.next_attempt_at, Dispatch.id)
                           .execution_options(populate_existing=True))
    return list(rows)


def _give_up_abandoned(session: Session, now: dt.datetime) -> None:
    # a claim that expired on its last attempt (the worker died every time): stop retrying it
    session.execute(
        sa.update(Dispatch)
        .where(Dispatch.status == "claimed", Dispatch.claim_expires_at <= now,
               Dispatch.attempts >= Dispatch.max_attempts)
        .values(status="failed", last_error="claim expired on the last attempt (worker stopped?)",
                claim_expires_at=None, updated_at=now)
        .execution_options(synchronize_session=False))


def _held(dispatch_id: int, token: str):
    return sa.and_(Dispatch.id == dispatch_id, Dispatch.status.in_(IN_HANDS), Dispatch.claim_token == token)


def mark_sending(session: Session, *, claim_token: str, dispatch_ids: Iterable[int],
                 now: dt.datetime | None = None) -> list[int]:
    """Record that these claimed items are about to go to their provider; returns the ids still held.

    Commit this before the request: a crash between the request and its record then leaves the item
    ``sending``, and whoever finds it knows the provider may have it.
    """
    now = as_utc(now or utcnow())
    return _update_held(session, claim_token, dispatch_ids, status="sending", updated_at=now)


def _update_held(session: Session, claim_token: str, dispatch_ids: Iterable[int], **values: Any) -> list[int]:
    """Set ``values`` on those of ``dispatch_ids`` still held under ``claim_token``; the ids updated, sorted."""
    wanted = list(dispatch_ids)
    done: list[int] = []
    for start in range(0, len(wanted), 1000):
        result = session.execute(
            sa.update(Dispatch)
            .where(Dispatch.id.in_(wanted[start:start + 1000]), Dispatch.status.in_(IN_HANDS),
                   Dispatch.claim_token == claim_token)
            .values(**values)
            .returning(Dispatch.id)
            .execution_options(synchronize_session=False))
        done.extend(result.scalars())
    return sorted(done)


def mark_unknown(session: Session, *, dispatch_id: int, claim_token: str, reason: str,
                 now: dt.datetime | None = None) -> bool:
    """Record that the provider may or may not have the item (a timeout after the request was written).

    Only for a provider that does not de-duplicate by key: the item is never sent again by itself; it is
    reconciled through the provider's status look-up, or resolved by an operator. False if the claim was
    lost. The claim token is kept, so the holder's late answer can still record the item as sent.
    """
    now = as_utc(now or utcnow())
    done = session.execute(
        sa.update(Dispatch).where(_held(dispatch_id, claim_token))
        .values(status="unknown", unknown_since=now, unknown_reason=reason[:512], last_error=reason[:4000],
                claim_expires_at=None, updated_at=now)
        .execution_options(synchronize_session="fetch"))
    return done.rowcount == 1


def mark_sent(session: Session, *, dispatch_id: int, claim_token: str, now: dt.datetime | None = None,
              provider_ref: str | None = None) -> bool:
    """Record that the item was delivered; False if another worker has claimed it since.

    A late report still counts while the claim token is the item's, even after the lease ran out and
    the item was given up as failed or found ``unknown``: it was delivered, and the record should say so.
    """
    now = as_utc(now or utcnow())
    done = session.execute(
        sa.update(Dispatch).where(Dispatch.id == dispatch_id, Dispatch.claim_token == claim_token,
                                  Dispatch.status.in_((*IN_HANDS, "failed", "unknown")))
        .values(status="sent", sent_at=now, provider_ref=provider_ref, claim_expires_at=None, last_error=None,
                updated_at=now)
        .execution_options(synchronize_session="fetch"))
    return done.rowcount == 1


_T = Dispatch.__table__
_MARK_SENT = (sa.update(_T)
              .where(_T.c.id == sa.bindparam("_id"), _T.c.claim_token == sa.bindparam("_token"),
                     sa.or_(*(_T.c.status == s for s in (*IN_HANDS, "failed", "unknown"))))  # no IN: executemany
              .values(status="sent", sent_at=sa.bindparam("_now"), provider_ref=sa.bindparam("_ref"),
                      claim_expires_at=None, last_error=None, updated_at=sa.bindparam("_now")))


def mark_sent_each(session: Session, *, sent: Iterable[tuple[int, str, str | None]],
                   now: dt.datetime | None = None) -> int:
    """:func:`mark_sent` for many delivered items at once (dispatch id, claim token, provider reference): one
    statement executed for all of them in the caller's transaction; returns how many were still the claim's.

    The same rule per item as :func:`mark_sent` (a late report under the item's own token still counts), without
    building and compiling an UPDATE per contact, which was most of a drain's time (docs/performance.md).
    """
    now = as_utc(now or utcnow())
    rows = [{"_id": i, "_token": token, "_ref": ref, "_now": now} for i, token, ref in sent]
    if not rows:
        return 0
    connection = session.connection()
    if not connection.dialect.supports_sane_multi_rowcount:   # then one at a time, to count exactly
        return sum(connection.execute(_MARK_SENT, row).rowcount for row in rows)
    return connection.execute(_MARK_SENT, rows).rowcount


def mark_sent_many(session: Session, *, claim_token: str, dispatch_ids: Iterable[int],
                   now: dt.datetime | None = None) -> list[int]:
    """Record a whole claimed batch as delivered (file exports); returns the ids still held and now sent."""
    now = as_utc(now or utcnow())
    done = _update_held(session, claim_token, dispatch_ids, status="sent", sent_at=now, claim_expires_at=None,
                        last_error=None, updated_at=now)
    session.expire_all()  # loaded dispatches are stale now; reload on next access
    return done


def mark_failed(session: Session, *, dispatch_id: int, claim_token: str, error: str,
                now: dt.datetime | None = None, retryable: bool = True,
                retry_after: dt.timedelta | None = None) -> str | None:
    """Record a failed attempt: back to pending after a backoff, or failed when out of attempts or final.

    Returns the item's new status, or None if the claim was lost.
    """
    now = as_utc(now or utcnow())
    item = session.scalars(sa.select(Dispatch).where(_held(dispatch_id, claim_token))
                           .execution_options(populate_existing=True)).one_or_none()
    if item is None:
        return None
    item.last_error = error[:4000]
    item.claim_expires_at = None
    item.updated_at = now
    if retryable and item.attempts < item.max_attempts:
        item.status = "pending"
        item.next_attempt_at = retry_at(item.attempts, now, retry_after=retry_after)
    else:
        item.status = "failed"
    session.flush()
    return item.status


def block(session: Session, *, dispatch_id: int, claim_token: str, reason: str,
          now: dt.datetime | None = None) -> bool:
    """Stop a claimed item for good because the dispatch-time check refused it (consent, do-not-disturb)."""
    now = as_utc(now or utcnow())
    done = session.execute(
        sa.update(Dispatch).where(_held(dispatch_id, claim_token))
        .values(status="blocked", blocked_reason=reason[:256], claim_expires_at=None, updated_at=now)
        .execution_options(synchronize_session="fetch"))
    return done.rowcount == 1


def hold(session: Session, *, dispatch_id: int, claim_token: str, until: dt.datetime, reason: str,
         now: dt.datetime | None = None) -> bool:
    """Hand a claimed item back until ``until`` (quiet hours): pending again, and the claim is not an attempt."""
    now = as_utc(now or utcnow())
    done = session.execute(
        sa.update(Dispatch).where(_held(dispatch_id, claim_token))
        .values(status="pending", next_attempt_at=as_utc(until), attempts=sa.func.max(Dispatch.attempts - 1, 0)
                if session.get_bind().dialect.name == "sqlite" else sa.func.greatest(Dispatch.attempts - 1, 0),
                claim_expires_at=None, claimed_by=None, claim_token=None, last_error=reason[:4000], updated_at=now)
        .execution_options(synchronize_session="fetch"))
    return done.rowcount == 1


def cancel(session: Session, *, dispatch_ids: Iterable[int], reason: str, now: dt.datetime | None = None) -> int:
    """Withdraw items that are still waiting (pending or held; not claimed, not sent); returns how many."""
    now = as_utc(now or utcnow())
    done = session.execute(
        sa.update(Dispatch).where(Dispatch.id.in_(list(dispatch_ids)), Dispatch.status.in_(("pending", "held")))
        .values(status="cancelled", blocked_reason=reason[:256], updated_at=now)
        .execution_options(synchronize_session="fetch"))
    return done.rowcount


def retry_at(attempts: int, now: dt.datetime, *, base: dt.timedelta = RETRY_BASE, cap: dt.timedelta = RETRY_CAP,
             retry_after: dt.timedelta | None = None) -> dt.datetime:
    """When to try again after ``attempts`` attempts: exponential backoff, or the provider's Retry-After."""
    wait = min(cap, base * (2 ** max(0, attempts - 1)))
    if retry_after is not None:
        wait = max(wait, retry_after)  # honour a 429's Retry-After even when our backoff is shorter
    return now + wait


def outbox_counts(session: Session, *, as_of: dt.date | None = None) -> dict[str, int]:
    """How many items are in each status (all statuses present, zeros included)."""

    query = sa.select(Dispatch.status, sa.func.count()).group_by(Dispatch.status)
    if as_of is not None:
        query = query.where(Dispatch.as_of == as_of)
    counts = dict.fromkeys(DISPATCH_STATUSES, 0)
    counts.update({status: n for status, n in session.execute(query)})
    return counts


def history(session: Session, *, customer_id: str, since: dt.datetime | None = None) -> list[Dispatch]:
    """One customer's contact history, newest first."""
    query = sa.select(Dispatch).where(Dispatch.customer_id == customer_id)
    if since is not None:
        query = query.where(Dispatch.created_at >= as_utc(since))
    return list(session.scalars(query.order_by(Dispatch.created_at.desc(), Dispatch.id.desc())))


def recent_contacts(session: Session, *, since: dt.datetime):
    """Contacts created since a time that count towards frequency caps, as Arrow (for the plan step)."""
    import pyarrow as pa

    query = (sa.select(Dispatch.customer_id, Dispatch.channel, Dispatch.strategy_id, Dispatch.wave,
                       Dispatch.as_of, Dispatch.status, Dispatch.created_at, Dispatch.sent_at)
             .where(Dispatch.created_at >= as_utc(since), Dispatch.status.in_(COUNTS_AS_CONTACT))
             .order_by(Dispatch.id))
    rows = session.execute(query).all()
    names = ["customer_id", "channel", "strategy_id", "wave", "as_of", "status", "created_at", "sent_at"]
    ts = pa.timestamp("us", tz="UTC")
    schema = pa.schema([(n, pa.string()) for n in names[:4]] + [("as_of", pa.date32()), ("status", pa.string()),
                                                                 ("created_at", ts), ("sent_at", ts)])
    return pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)}, schema=schema)


def dispatched_on(session: Session, as_of: dt.date) -> int:
    """How many contacts of the plan of ``as_of`` were put in the outbox (sent, waiting or held).

    The real-time decider's contacts of that local date (their keys are in ``moment_decisions``) are not the
    plan's: a salary-day contact sent at 10:00 does not make the evening's plan of the day a re-plan."""
    realtime = sa.exists().where(MomentDecision.customer_id == Dispatch.customer_id,   # its index's first column
                                 MomentDecision.dispatch_key == Dispatch.idempotency_key)
    return session.scalar(sa.select(sa.func.count(Dispatch.id)).where(Dispatch.as_of == as_of, ~realtime)) or 0
