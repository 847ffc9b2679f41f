"""The contact ledger (接触台账): frequency caps held at send time, atomically, on SQLite and PostgreSQL.

A contact reserves its place (customer, channel, strategy, local day) right before it goes out. The
reservations of a chunk of contacts are written first and the customers' reservations are counted after
them, under a lock that only one transaction per customer holds at a time:

* SQLite: the insert takes the database's single write lock, held until commit, so no other
  reservation can land between the count and the commit;
* PostgreSQL: a transaction-scoped advisory lock on the customer (``pg_advisory_xact_lock``), taken
  before the insert; customers are reserved in sorted order, so two dispatchers never deadlock.

If one more contact would break a cap (the pure rule :func:`lifeloop.config.contact_rules.cap_breached`,
over rolling windows of local days — the plan's rule) the reservation is removed again and the cap is
named. So concurrent dispatchers, re-plans, plans made ahead and real-time triggers can never exceed a
cap: each one has to pass here. The same contact on the same day reserves once (unique
``(dispatch_id, contact_day)``): a resend after a crash or a retry the same day is not counted twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from lifeloop.config.contact_rules import Limit, cap_breached
from lifeloop.store.ops.models import ContactReservation
from lifeloop.store.ops.types import as_utc, utcnow


@dataclass(frozen=True)
class Ask:
    """One contact asking for its place in the ledger."""

    dispatch_id: int
    customer_id: str
    channel: str
    strategy_id: str
    day: dt.date                     # the customer's local date the contact goes out on
    limits: Sequence[Limit]          # contact_rules.cap_limits(policy, channel)


def lock_key(customer_id: str) -> int:
    """A stable signed 64-bit key for the customer's advisory lock (PostgreSQL)."""
    return int.from_bytes(hashlib.sha256(customer_id.encode()).digest()[:8], "big", signed=True)


def reserve(session: Session, *, asks: Sequence[Ask], worker: str | None = None,
            now: dt.datetime | None = None) -> dict[int, str | None]:
    """Reserve each contact's place, or refuse it with the cap it would break: {dispatch id: None or cap name}.

    Call inside the unit of work that also records the verdicts, and commit before sending: the lock
    is held until then. Several contacts of one customer are taken in dispatch id order.
    """
    if not asks:
        return {}
    now = as_utc(now or utcnow())
    postgres = session.get_bind().dialect.name == "postgresql"
    asks = sorted(asks, key=lambda a: (a.customer_id, a.dispatch_id))
    customers = sorted({a.customer_id for a in asks})
    if postgres:   # one customer at a time, in sorted order (two dispatchers never wait on each other in a circle)
        for customer in customers:
            session.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_key(customer))))
    insert = (_insert_for(postgres)(ContactReservation)
              .on_conflict_do_nothing(index_elements=["dispatch_id", "contact_day"])
              .returning(ContactReservation.id, ContactReservation.dispatch_id))
    new: dict[int, int] = {}   # dispatch id -> its new place (a contact already holding one today is not here)
    for start in range(0, len(asks), 1000):
        rows = [dict(dispatch_id=a.dispatch_id, customer_id=a.customer_id, channel=a.channel, strategy_id=a.strategy_id,
                     contact_day=a.day, reserved_at=now, reserved_by=worker) for a in asks[start:start + 1000]]
        new.update({dispatch_id: place for place, dispatch_id in session.execute(insert, rows)})
    # written first, counted after: under the lock, nobody else's place can land in between
    span = max((limit.days for a in asks for limit in a.limits), default=1)
    first = min(a.day for a in asks) - dt.timedelta(days=span)
    last = max(a.day for a in asks) + dt.timedelta(days=span)
    mine = set(new.values())
    taken: dict[str, list[tuple[dt.date, str, str]]] = {}
    for start in range(0, len(customers), 1000):
        for place, customer, day, channel, strategy in session.execute(
                sa.select(ContactReservation.id, ContactReservation.customer_id, ContactReservation.contact_day,
                          ContactReservation.channel, ContactReservation.strategy_id)
                .where(ContactReservation.customer_id.in_(customers[start:start + 1000]),
                       ContactReservation.contact_day > first, ContactReservation.contact_day < last)):
            if place not in mine:
                taken.setdefault(customer, []).append((day, channel, strategy))
    out: dict[int, str | None] = {}
    refused: list[int] = []
    for a in asks:
        if a.dispatch_id not in new:   # this contact already holds its place today (a resend, a same-day retry)
            out[a.dispatch_id] = None
            continue
        mine_so_far = taken.setdefault(a.customer_id, [])
        breached = cap_breached(mine_so_far, a.day, a.channel, a.strategy_id, a.limits)
        out[a.dispatch_id] = breached
        if breached is None:
            mine_so_far.append((a.day, a.channel, a.strategy_id))
        else:
            refused.append(new[a.dispatch_id])
    for start in range(0, len(refused), 1000):
        session.execute(sa.delete(ContactReservation).where(ContactReservation.id.in_(refused[start:start + 1000])))
    return out


def release(session: Session, *, dispatch_id: int, day: dt.date | None = None) -> int:
    """Give back a contact's place (of one local day, or every day): it did not reach the customer."""
    query = sa.delete(ContactReservation).where(ContactReservation.dispatch_id == dispatch_id)
    if day is not None:
        query = query.where(ContactReservation.contact_day == day)
    return session.execute(query).rowcount


def counted(session: Session, *, customer_id: str, since: dt.date, until: dt.date) -> list[tuple[dt.date, str, str]]:
    """A customer's reservations from ``since`` to ``until`` (local days, inclusive): (day, channel, strategy)."""
    rows = session.execute(
        sa.select(ContactReservation.contact_day, ContactReservation.channel, ContactReservation.strategy_id)
        .where(ContactReservation.customer_id == customer_id, ContactReservation.contact_day >= since,
               ContactReservation.contact_day <= until)
        .order_by(ContactReservation.contact_day, ContactReservation.id)).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def _insert_for(postgres: bool):
    if postgres:
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert
