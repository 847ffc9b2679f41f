"""The plan step's view of the operations database, as Arrow tables keyed by the bank's local dates.

The plan works in days (as-of date D, in the bank's time zone); the database records instants in
UTC. This module reads once and converts, choosing the side that protects the customer: a
do-not-disturb entry counts on every local day it touches, a consent change counts from the moment
it took effect up to the end of D. The tables' columns are those of ``lifeloop.strategy.history``
(contacts, consent, dnd, refusals, rights), so a strategy-side adapter can hand them to the plan as they are.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from lifeloop.data.schema import CONTACT_CHANNELS
from lifeloop.store.ops import rights
from lifeloop.store.ops.contacts import COUNTS_AS_CONTACT
from lifeloop.store.ops.models import ALL_CHANNELS, ConsentChange, Dispatch, DoNotDisturb, Feedback

if TYPE_CHECKING:
    import pyarrow as pa

TINY = dt.timedelta(microseconds=1)


def day_bounds(day: dt.date, timezone: str) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants where a local day starts and where the next one starts."""
    zone = ZoneInfo(timezone)
    start = dt.datetime.combine(day, dt.time(), zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def local_date(moment: dt.datetime, timezone: str) -> dt.date:
    """The bank's calendar date of a UTC instant."""
    return moment.astimezone(ZoneInfo(timezone)).date()


def plan_history(session: Session, *, as_of: dt.date, lookback_days: int, timezone: str) -> dict[str, pa.Table]:
    """Contacts in [D - lookback, D), consent at the end of D, do-not-disturb touching D, refusals up to D."""
    import pyarrow as pa

    start_of_day, end_of_day = day_bounds(as_of, timezone)
    s, d = pa.string(), pa.date32()

    # contacts: what the outbox holds for earlier lists, with each contact's latest outcome
    latest = (sa.select(Feedback.dispatch_id, Feedback.outcome,
                        sa.func.row_number().over(partition_by=Feedback.dispatch_id,
                                                  order_by=(Feedback.occurred_at.desc(), Feedback.id.desc()))
                        .label("n"))
              .subquery())
    rows = session.execute(
        sa.select(Dispatch.customer_id, Dispatch.strategy_id, Dispatch.wave, Dispatch.channel, Dispatch.as_of,
                  latest.c.outcome)
        .outerjoin(latest, sa.and_(latest.c.dispatch_id == Dispatch.id, latest.c.n == 1))
        .where(Dispatch.as_of >= as_of - dt.timedelta(days=lookback_days), Dispatch.as_of < as_of,
               Dispatch.status.in_(COUNTS_AS_CONTACT))
        .order_by(Dispatch.id)).all()
    contacts = pa.table({
        "customer_id": pa.array([r[0] for r in rows], s), "strategy": pa.array([r[1] for r in rows], s),
        "wave": pa.array([r[2] for r in rows], s), "channel": pa.array([r[3] for r in rows], s),
        "contact_date": pa.array([r[4] for r in rows], d), "treated": pa.array([True] * len(rows), pa.bool_()),
        "outcome": pa.array([r[5] for r in rows], s)})

    # consent: the latest change per customer, purpose and channel; "every channel" spelt out
    latest_consent: dict[tuple[str, str, str], bool] = {}
    for customer, purpose, channel, granted in session.execute(
            sa.select(ConsentChange.customer_id, ConsentChange.purpose, ConsentChange.channel, ConsentChange.granted)
            .where(ConsentChange.effective_at < end_of_day)
            .order_by(ConsentChange.effective_at, ConsentChange.id)):
        for ch in (CONTACT_CHANNELS if channel == ALL_CHANNELS else (channel,)):
            latest_consent[(customer, purpose, ch)] = granted
    keys = sorted(latest_consent)
    consent = pa.table({"customer_id": pa.array([k[0] for k in keys], s), "purpose": pa.array([k[1] for k in keys], s),
                        "channel": pa.array([k[2] for k in keys], s),
                        "granted": pa.array([latest_consent[k] for k in keys], pa.bool_())})

    # do-not-disturb in force at any moment of D; dates are inclusive local days
    entries = session.scalars(
        sa.select(DoNotDisturb).where(
            DoNotDisturb.starts_at < end_of_day,
            sa.or_(DoNotDisturb.expires_at.is_(None), DoNotDisturb.expires_at > start_of_day),
            sa.or_(DoNotDisturb.lifted_at.is_(None), DoNotDisturb.lifted_at > start_of_day))
        .order_by(DoNotDisturb.id)).all()
    ends = []
    for e in entries:
        stop = min([t for t in (e.expires_at, e.lifted_at) if t is not None], default=None)
        ends.append(None if stop is None else local_date(stop - TINY, timezone))
    dnd = pa.table({"customer_id": pa.array([e.customer_id for e in entries], s),
                    "channel": pa.array([e.channel for e in entries], s),
                    "start_date": pa.array([local_date(e.starts_at, timezone) for e in entries], d),
                    "end_date": pa.array(ends, d)})

    # refusals up to the end of D (the policy decides how far back each channel remembers)
    refused = session.execute(
        sa.select(Feedback.customer_id, Feedback.channel, Feedback.occurred_at)
        .where(Feedback.outcome == "refused", Feedback.occurred_at < end_of_day).order_by(Feedback.id)).all()
    refusals = pa.table({"customer_id": pa.array([r[0] for r in refused], s),
                         "channel": pa.array([r[1] for r in refused], s),
                         "refused_on": pa.array([local_date(r[2], timezone) for r in refused], d)})
    # the customer's rights in force by the end of D (the plan step's adapter reads them as of when it plans)
    flags = sorted([(c, rights.NO_PERSONALISATION) for c in rights.opted_out(session, at=end_of_day - TINY)]
                   + [(c, rights.SUPPRESSED) for c in rights.suppressed(session)])
    flagged = pa.table({"customer_id": pa.array([f[0] for f in flags], s), "flag": pa.array([f[1] for f in flags], s)})
    return {"contacts": contacts, "consent": consent, "dnd": dnd, "refusals": refusals, "rights": flagged}
