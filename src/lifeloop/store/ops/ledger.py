"""The contact ledger (接触台账): frequency caps held at send time, atomically, on SQLite and PostgreSQL.

A contact reserves its place (customer, channel, strategy, local day) right before it goes out. The
reservation is written first and the customer's reservations are counted after it, under a lock that
only one transaction per customer holds at a time:

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
    is held until then.
    """
    now = as_utc(now or utcnow())
    postgres = session.get_bind().dialect.name == "postgresql"
    insert = _insert_for(postgres)
    out: dict[int, str | None] = {}
    for ask in sorted(asks, key=lambda a: (a.customer_id, a.dispatch_id)):
        if postgres:
            session.execute(sa.select(sa.func.pg_advisory_xact_lock(lock_key(ask.customer_id))))
        new = session.execute(
            insert(ContactReservation).values(dispatch_id=ask.dispatch_id, customer_id=ask.customer_id,
                                              channel=ask.channel, strategy_id=ask.strategy_id,
                                              contact_day=ask.day, reserved_at=now, reserved_by=worker)
            .on_conflict_do_nothing(index_elements=["dispatch_id", "contact_day"])
            .returning(ContactReservation.id)).scalar()
        if new is None:  # this contact already holds its place today (a resend, or a retry the same day)
            out[ask.dispatch_id] = None
            continue
        span = max((limit.days for limit in ask.limits), default=1)
        taken = session.execute(
            sa.select(ContactReservation.contact_day, ContactReservation.channel, ContactReservation.strategy_id)
            .where(ContactReservation.customer_id == ask.customer_id, ContactReservation.id != new,
                   ContactReservation.contact_day > ask.day - dt.timedelta(days=span),
                   ContactReservation.contact_day < ask.day + dt.timedelta(days=span))).all()
        breached = cap_breached([tuple(r) for r in taken], ask.day, ask.channel, ask.strategy_id, ask.limits)
        if breached is not None:
            session.execute(sa.delete(ContactReservation).where(ContactReservation.id == new))
        out[ask.dispatch_id] = breached
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
