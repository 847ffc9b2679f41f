"""History from the operations database (运营库) for the plan: the :class:`HistorySource` to use once
a workspace has one.

* contacts — dispatches of lists dated in the look-back window (not cancelled or blocked), each with
  its latest feedback outcome; plus the control rows of earlier lists from the lake (controls are
  never dispatched, yet later waves follow them);
* consent — the bank's consent table (the baseline) overridden by consent changes recorded in the
  ops database up to the end of D (a change for ``*`` applies to every channel of its purpose);
* dnd — do-not-disturb entries as dates, in force through the day they expire or are lifted (the plan
  works by the day, and a day with DND for part of it counts as a DND day);
* refusals — feedback with outcome ``refused``, dated.

Reads with one short session and hands Arrow tables over; the plan never holds the database open.

:class:`WithRights` adds the customers' rights flags (``lifeloop.store.ops.rights``) to any source: they come
from the ops database even before anything was dispatched, and hold from the moment they are recorded (a
plan made today for yesterday's data already drops a customer who opted out this morning).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from lifeloop.data.schema import CONTACT_CHANNELS
from lifeloop.store.ops import rights
from lifeloop.store.ops.models import ConsentChange, Dispatch, DoNotDisturb, Feedback
from lifeloop.store.ops.types import utcnow
from lifeloop.strategy.history import History, HistorySource, LakeHistory, schemas

if TYPE_CHECKING:
    import pyarrow as pa

    from lifeloop.store.lake import Lake

LIVE = ("pending", "claimed", "sending", "sent", "failed", "unknown")   # counted as contacts for caps (a retry
# is still the same contact; an item of unknown outcome may have reached the customer)


def _end_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)


def _day(value: dt.datetime) -> dt.date:
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC).date()


class OpsHistory:
    """A :class:`lifeloop.strategy.history.HistorySource` over the ops database and the lake."""

    def __init__(self, sessions: Any, lake: Lake):
        self.sessions = sessions   # a sqlalchemy sessionmaker (lifeloop.store.ops.open_ops)
        self.lake = lake

    def load(self, as_of: dt.date, lookback_days: int) -> History:
        """Contacts before D, consent and DND valid on D, refusals — as Arrow tables."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import sqlalchemy as sa


        s = schemas()
        start = as_of - dt.timedelta(days=lookback_days)
        end = _end_of(as_of)
        lake = LakeHistory(self.lake).load(as_of, lookback_days)
        with self.sessions() as session:
            latest = (sa.select(Feedback.dispatch_id, sa.func.max(Feedback.occurred_at).label("at"))
                      .where(Feedback.occurred_at < end).group_by(Feedback.dispatch_id).subquery())
            outcome = (sa.select(Feedback.dispatch_id, sa.func.max(Feedback.outcome).label("outcome"))
                       .join(latest, sa.and_(latest.c.dispatch_id == Feedback.dispatch_id,
                                             latest.c.at == Feedback.occurred_at))
                       .group_by(Feedback.dispatch_id).subquery())
            rows = session.execute(
                sa.select(Dispatch.customer_id, Dispatch.strategy_id, Dispatch.wave, Dispatch.channel, Dispatch.as_of,
                          outcome.c.outcome)
                .outerjoin(outcome, outcome.c.dispatch_id == Dispatch.id)
                .where(Dispatch.as_of >= start, Dispatch.as_of < as_of, Dispatch.status.in_(LIVE))).all()
            changes = session.execute(
                sa.select(ConsentChange.customer_id, ConsentChange.purpose, ConsentChange.channel,
                          ConsentChange.granted)
                .where(ConsentChange.effective_at < end).order_by(ConsentChange.effective_at, ConsentChange.id)).all()
            dnd = session.execute(
                sa.select(DoNotDisturb.customer_id, DoNotDisturb.channel, DoNotDisturb.starts_at,
                          DoNotDisturb.expires_at, DoNotDisturb.lifted_at)
                .where(DoNotDisturb.starts_at < end)).all()
            refusals = session.execute(
                sa.select(Feedback.customer_id, Feedback.channel, Feedback.occurred_at)
                .where(Feedback.outcome == "refused", Feedback.occurred_at < end,
                       Feedback.occurred_at >= _end_of(start))).all()
        dispatched = pa.Table.from_pylist([
            dict(customer_id=c, strategy=st, wave=w, channel=ch, contact_date=d, treated=True, outcome=o)
            for c, st, w, ch, d, o in rows], s["contacts"])
        controls = lake.contacts.filter(pc.invert(lake.contacts["treated"]))
        contacts = pa.concat_tables([dispatched, controls])
        return History(contacts, _consent(lake.consent, changes), _dnd(dnd, as_of), pa.Table.from_pylist(
            [dict(customer_id=c, channel=ch, refused_on=_day(at)) for c, ch, at in refusals], s["refusals"]))


def _consent(baseline: pa.Table, changes: list[tuple]) -> pa.Table:
    """The bank's consent with the recorded changes applied in time order."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not changes:
        return baseline
    latest: dict[tuple[str, str, str], bool] = {}
    for customer, purpose, channel, granted in changes:
        for ch in (CONTACT_CHANNELS if channel == "*" else (channel,)):
            latest[(customer, purpose, ch)] = bool(granted)
    keys = pc.binary_join_element_wise(baseline["customer_id"], baseline["purpose"], baseline["channel"], "\x1f")
    changed = pa.array(["\x1f".join(k) for k in latest], pa.string())
    kept = baseline.filter(pc.invert(pc.is_in(keys, changed)))
    overlay = pa.Table.from_pylist([dict(customer_id=c, purpose=p, channel=ch, granted=g)
                                    for (c, p, ch), g in latest.items()], schemas()["consent"])
    return pa.concat_tables([kept, overlay])


def _dnd(rows: list[tuple], as_of: dt.date) -> pa.Table:
    """Entries as dates: in force from the start day through the day it expires or is lifted (at midnight: the day
    before)."""
    import pyarrow as pa

    out = []
    for customer, channel, starts, expires, lifted in rows:
        ends = [x for x in (expires, lifted) if x is not None]
        end = None
        if ends:
            stop = min(ends)
            end = _day(stop) - dt.timedelta(days=1 if stop.time() == dt.time.min else 0)
        if end is None or end >= _day(starts):
            out.append(dict(customer_id=customer, channel=channel, start_date=_day(starts), end_date=end))
    return pa.Table.from_pylist(out, schemas()["dnd"])


def rights_table(sessions: Any, as_of: dt.date) -> pa.Table:
    """(customer_id, flag) of every rights flag in force when the plan is made (or at the end of D, if later)."""
    import pyarrow as pa

    with sessions() as session:
        out = sorted(rights_rows(session, as_of))
    return pa.Table.from_pylist([dict(customer_id=c, flag=f) for c, f in out], schemas()["rights"])


def rights_rows(session: Any, as_of: dt.date, now: dt.datetime | None = None) -> list[tuple[str, str]]:
    """The flags as (customer, flag) pairs (read in the caller's session).

    A customer's instruction holds for every plan made after it, whatever day the plan is for: the flags are
    those in force when the plan is made (``now``), or at the end of D for a plan made ahead of its day.
    """
    at = max(_end_of(as_of) - dt.timedelta(microseconds=1), now or utcnow())
    return ([(c, rights.NO_PERSONALISATION) for c in rights.opted_out(session, at=at)]
            + [(c, rights.SUPPRESSED) for c in rights.suppressed(session)])


class WithRights:
    """A history source with the rights flags of the ops database added (the plan drops flagged customers)."""

    def __init__(self, source: HistorySource, sessions: Any):
        self.source = source
        self.sessions = sessions

    def load(self, as_of: dt.date, lookback_days: int) -> History:
        """The wrapped source's history, with ``rights`` read from the ops database."""
        found = self.source.load(as_of, lookback_days)
        found.rights = rights_table(self.sessions, as_of)
        return found
