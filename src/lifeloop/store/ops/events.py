"""Real-time events, moments and decisions in the operations database (docs/realtime.md).

Intake is idempotent on the source's ``event_id``: one ``INSERT ... ON CONFLICT (event_id) DO NOTHING
RETURNING`` per chunk, so of two concurrent requests carrying the same id exactly one stores it, on SQLite
(the write lock) and PostgreSQL (the unique index) alike, and the other learns it was a duplicate. Services
take a keyword-only session and never commit: the caller commits before it acknowledges anything.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from lifeloop.store.ops.ledger import lock_key
from lifeloop.store.ops.models import Dispatch, Event, Moment, MomentDecision, Timer
from lifeloop.store.ops.types import as_utc, utcnow

CHUNK = 1000
_EVENTS = Event.__table__   # statements on the table (Core): rows, not ORM objects, on the hot path


@dataclass(frozen=True)
class NewEvent:
    """A validated event, ready to be stored."""

    event_id: str
    source: str
    kind: str
    customer_id: str
    occurred_at: dt.datetime
    local_date: dt.date
    body: dict[str, Any]


@dataclass(frozen=True)
class Stored:
    """What ``store`` did: the ids newly stored and the ids that were already there (duplicates)."""

    new: list[str]
    duplicates: list[str]


def _insert(session: Session):
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def store(session: Session, *, events: Sequence[NewEvent], now: dt.datetime | None = None) -> Stored:
    """Store events once per ``event_id``; a repeated id (in the batch or already stored) changes nothing."""
    now = as_utc(now or utcnow())
    seen: set[str] = set()
    rows = []
    for e in events:
        if e.event_id in seen:
            continue
        seen.add(e.event_id)
        rows.append({"event_id": e.event_id, "source": e.source, "kind": e.kind, "customer_id": e.customer_id,
                     "occurred_at": as_utc(e.occurred_at), "local_date": e.local_date, "body": e.body,
                     "received_at": now})
    insert = (_insert(session)(_EVENTS).on_conflict_do_nothing(index_elements=["event_id"])  # Core: no ORM bulk cost
              .returning(_EVENTS.c.event_id))
    stored: set[str] = set()
    for start in range(0, len(rows), CHUNK):
        stored.update(session.scalars(insert, rows[start:start + CHUNK]))
    new, duplicates = [], []
    for e in events:   # the first occurrence of a stored id is new; every other one is a duplicate
        if e.event_id in stored:
            new.append(e.event_id)
            stored.discard(e.event_id)
        else:
            duplicates.append(e.event_id)
    return Stored(new, duplicates)


def undecided(session: Session, *, limit: int = 500) -> list[sa.Row]:
    """Stored events the detectors have not run over yet, oldest stored first (rows with the ``events`` columns:
    plain rows, not ORM objects, which cost more to build than the rest of a decision pass)."""
    return list(session.execute(sa.select(_EVENTS).where(_EVENTS.c.decided_at.is_(None)).order_by(_EVENTS.c.id)
                                .limit(limit)))


def mark_decided(session: Session, *, ids: Sequence[int], now: dt.datetime | None = None) -> None:
    """Record that the detectors and the decision ran over these events (in the decision's transaction)."""
    if ids:
        session.execute(sa.update(Event).where(Event.id.in_(list(ids))).values(decided_at=as_utc(now or utcnow())))


def add_moments(session: Session, *, moments: Sequence[dict[str, Any]], now: dt.datetime | None = None) -> set[str]:
    """Record moments once per ``moment_key``; returns the keys that are new (a moment fires once)."""
    if not moments:
        return set()
    now = as_utc(now or utcnow())
    rows = [{**m, "occurred_at": as_utc(m["occurred_at"]), "fired_at": now} for m in moments]
    table = Moment.__table__
    insert = (_insert(session)(table).on_conflict_do_nothing(index_elements=["moment_key"])
              .returning(table.c.moment_key))
    new: set[str] = set()
    for start in range(0, len(rows), CHUNK):
        new.update(session.scalars(insert, rows[start:start + CHUNK]))
    return new


def add_decisions(session: Session, *, decisions: Sequence[dict[str, Any]], now: dt.datetime | None = None) -> None:
    """Record what was decided per moment and strategy (once: a repeat of the same pair changes nothing)."""
    if not decisions:
        return
    now = as_utc(now or utcnow())
    rows = [{**d, "entered_at": as_utc(d["entered_at"]), "decided_at": now} for d in decisions]
    insert = _insert(session)(MomentDecision.__table__).on_conflict_do_nothing(
        index_elements=["moment_key", "strategy_id"])
    for start in range(0, len(rows), CHUNK):
        session.execute(insert, rows[start:start + CHUNK])


def entries(session: Session, *, customer_ids: Sequence[str], since: dt.datetime,
            until: dt.datetime) -> dict[tuple[str, str], list[dt.datetime]]:
    """(customer, strategy) -> the times they entered a real-time strategy (treated or control) in [since, until]."""
    if not customer_ids:
        return {}
    rows = session.execute(sa.select(MomentDecision.customer_id, MomentDecision.strategy_id, MomentDecision.entered_at)
                           .where(MomentDecision.customer_id.in_(sorted(set(customer_ids))),
                                  MomentDecision.outcome.in_(("treated", "control")),
                                  MomentDecision.entered_at >= as_utc(since),
                                  MomentDecision.entered_at <= as_utc(until)))
    out: dict[tuple[str, str], list[dt.datetime]] = {}
    for customer, strategy, at in rows:
        out.setdefault((customer, strategy), []).append(at)
    return out


def decisions_of(session: Session, *, customer_id: str | None = None, since: dt.datetime | None = None,
                 until: dt.datetime | None = None) -> list[MomentDecision]:
    """Recorded decisions (a customer's, or all), in the order they entered."""
    q = sa.select(MomentDecision).order_by(MomentDecision.entered_at, MomentDecision.id)
    if customer_id is not None:
        q = q.where(MomentDecision.customer_id == customer_id)
    if since is not None:
        q = q.where(MomentDecision.entered_at >= as_utc(since))
    if until is not None:
        q = q.where(MomentDecision.entered_at < as_utc(until))
    return list(session.scalars(q))


def day_decisions(session: Session, *, customer_id: str, local_date: dt.date) -> list[dict[str, Any]]:
    """A customer's real-time decisions on moments of one local date, with the moment (its event, detector and
    reason), the event's kind and the outbox item (status, sent or blocked), in the order they entered."""
    q = (sa.select(MomentDecision, Moment, Dispatch, Event.kind)
         .join(Moment, Moment.moment_key == MomentDecision.moment_key)
         .outerjoin(Dispatch, Dispatch.idempotency_key == MomentDecision.dispatch_key)
         .outerjoin(Event, Event.event_id == Moment.event_id)
         .where(MomentDecision.customer_id == customer_id, Moment.local_date == local_date)
         .order_by(MomentDecision.entered_at, MomentDecision.id))
    out = []
    for d, m, x, kind in session.execute(q):
        out.append({"moment": m.detector, "moment_key": m.moment_key, "event_id": m.event_id, "event_kind": kind,
                    "scope": m.scope, "occurred_at": m.occurred_at, "moment_reason": m.reason,
                    "strategy": d.strategy_id, "outcome": d.outcome, "reason": d.reason, "entered_at": d.entered_at,
                    "wave": d.wave, "channel": d.channel, "dispatch_key": d.dispatch_key,
                    "dispatch": None if x is None else {
                        "status": x.status, "sent_at": x.sent_at, "blocked_reason": x.blocked_reason,
                        "attempts": x.attempts, "next_attempt_at": x.next_attempt_at, "last_error": x.last_error}})
    return out


def entered_before(session: Session, *, before: dt.date) -> list[dict[str, Any]]:
    """Every real-time entry (treated or control) on a moment of a local date before ``before``: the customer,
    strategy, wave, channel, arm, the moment's local date and time, the reason recorded, and the outbox item's
    unit cost and RM (the review's entries, docs/realtime.md)."""
    q = (sa.select(MomentDecision.customer_id, MomentDecision.strategy_id, MomentDecision.wave,
                   MomentDecision.channel, MomentDecision.outcome, MomentDecision.reason, MomentDecision.entered_at,
                   Moment.local_date, Dispatch.unit_cost, Dispatch.rm_id)
         .join(Moment, Moment.moment_key == MomentDecision.moment_key)
         .outerjoin(Dispatch, Dispatch.idempotency_key == MomentDecision.dispatch_key)
         .where(MomentDecision.outcome.in_(("treated", "control")), Moment.local_date < before)
         .order_by(Moment.local_date, MomentDecision.strategy_id, MomentDecision.customer_id, MomentDecision.id))
    return [dict(r._mapping) for r in session.execute(q)]


def lock_customers(session: Session, customer_ids: Sequence[str]) -> None:
    """Serialise decisions per customer: PostgreSQL advisory locks in sorted order (SQLite: its write lock)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for customer in sorted(set(customer_ids)):
        # another lock space than the ledger's (which a gate pass takes in its own transaction)
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(7, lock_key(customer) & 0x7FFFFFFF)))


def history_days(session: Session, *, customer_ids: Sequence[str], first: dt.date,
                 last: dt.date) -> dict[str, list[sa.Row]]:
    """Customer -> their stored events of local dates ``first``..``last`` (the detectors' context; rows with the
    ``events`` columns, in the order stored)."""
    out: dict[str, list[sa.Row]] = {}
    if not customer_ids:
        return out
    ids = sorted(set(customer_ids))
    for start in range(0, len(ids), CHUNK):
        for e in session.execute(sa.select(_EVENTS).where(_EVENTS.c.customer_id.in_(ids[start:start + CHUNK]),
                                                          _EVENTS.c.local_date >= first,
                                                          _EVENTS.c.local_date <= last).order_by(_EVENTS.c.id)):
            out.setdefault(e.customer_id, []).append(e)
    return out


def known_moments(session: Session, *, keys: Sequence[str]) -> set[str]:
    """Which of these moment keys have already fired."""
    out: set[str] = set()
    keys = sorted(set(keys))
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start:start + CHUNK]
        out.update(session.scalars(sa.select(Moment.moment_key).where(Moment.moment_key.in_(chunk))))
    return out


def set_timers(session: Session, *, timers: Sequence[dict[str, Any]], now: dt.datetime | None = None) -> int:
    """Set timers once per key (setting the same day's timers again changes nothing); returns how many are new."""
    if not timers:
        return 0
    now = as_utc(now or utcnow())
    rows = [{**t, "status": "pending", "set_at": now} for t in timers]
    insert = _insert(session)(Timer).on_conflict_do_nothing(index_elements=["timer_key"]).returning(Timer.id)
    new = 0
    for start in range(0, len(rows), CHUNK):
        new += len(list(session.scalars(insert, rows[start:start + CHUNK])))
    return new


def due_timers(session: Session, *, today: dt.date, limit: int = 1000) -> list[Timer]:
    """Pending timers whose local date has come (or passed unfired: the caller marks those missed)."""
    return list(session.scalars(sa.select(Timer).where(Timer.status == "pending", Timer.fire_on <= today)
                                .order_by(Timer.fire_on, Timer.id).limit(limit)))


def settle_timers(session: Session, *, fired: Sequence[int], missed: Sequence[int], now: dt.datetime) -> None:
    """Mark timers fired or missed, only if still pending (a timer fires once, across restarts and deciders)."""
    for ids, status in ((fired, "fired"), (missed, "missed")):
        if ids:
            session.execute(sa.update(Timer).where(Timer.id.in_(list(ids)), Timer.status == "pending")
                            .values(status=status, fired_at=as_utc(now)))
