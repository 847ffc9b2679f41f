"""Feedback on contacts (营销表单): outcomes, referrals (转介) and the refusal memory they feed.

Every outcome belongs to one contact (a dispatch); a referral also creates a lead for the referred
person. A refusal is remembered: the contact policy asks :func:`refused_within` / :func:`refusals_since`
before calling a customer who said no ("not called again for N months").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from lifeloop.config.contact_rules import months_before
from lifeloop.errors import DataError, NotFoundError, Problem
from lifeloop.store.ops.models import OUTCOMES, Dispatch, Feedback, Lead
from lifeloop.store.ops.types import as_utc, utcnow

# channels on which a refusal is remembered by default: the ones where a person talks to the customer
SPOKEN_CHANNELS = ("call", "rm", "branch")


@dataclass(frozen=True)
class Referral:
    """The person a customer referred (a new lead)."""

    name: str
    phone: str | None = None
    rm_id: str | None = None          # the RM the lead goes to (default: the contacted customer's RM)
    note: str | None = None
    product_line: str | None = None   # another product line it is referred to (转介: insurance, loans ...)


def record(session: Session, *, dispatch_id: int, outcome: str, occurred_at: dt.datetime, recorded_by: str,
           note: str | None = None, product_id: str | None = None, amount: Decimal | None = None,
           referral: Referral | None = None, source: str = "api", source_ref: str | None = None,
           idempotency_key: str | None = None) -> Feedback:
    """Record the outcome of one contact; a referral creates the referred person's lead too.

    With an ``idempotency_key`` already recorded, the earlier feedback is returned and nothing is added.
    """
    if idempotency_key is not None:
        earlier = session.scalars(sa.select(Feedback).where(Feedback.idempotency_key == idempotency_key)).first()
        if earlier is not None:
            return earlier
    dispatch = session.get(Dispatch, dispatch_id)
    problems = check(dispatch_id=dispatch_id, dispatch=dispatch, outcome=outcome, referral=referral, amount=amount)
    if problems:
        raise DataError(f"feedback for contact {dispatch_id} is invalid", problems=problems,
                        hint="fix the outcome and try again; nothing was recorded")
    assert dispatch is not None
    lead = None
    if referral is not None:
        lead = Lead(name=referral.name, phone=referral.phone, rm_id=referral.rm_id or dispatch.rm_id,
                    referred_by_customer_id=dispatch.customer_id, note=referral.note,
                    product_line=referral.product_line)
        session.add(lead)
    item = Feedback(dispatch=dispatch, customer_id=dispatch.customer_id, channel=dispatch.channel, outcome=outcome,
                    occurred_at=as_utc(occurred_at, what="occurred_at"), recorded_by=recorded_by, note=note,
                    product_id=product_id, amount=amount, referred_lead=lead, source=source,
                    source_ref=source_ref, idempotency_key=idempotency_key)
    session.add(item)
    session.flush()
    return item


def check(*, dispatch_id: int, dispatch: Dispatch | None, outcome: str, referral: Referral | None,
          amount: Decimal | None) -> list[Problem]:
    """What is wrong with one feedback row (empty when it can be recorded)."""
    problems: list[Problem] = []
    if dispatch is None:
        problems.append(Problem(f"no contact with id {dispatch_id}", field="dispatch_id"))
    if outcome not in OUTCOMES:
        problems.append(Problem(f"unknown outcome {outcome!r}; expected one of {', '.join(OUTCOMES)}",
                                field="outcome"))
    if outcome == "referral" and referral is None:
        problems.append(Problem("a referral needs the referred person's name", field="referral"))
    if outcome != "referral" and referral is not None:
        problems.append(Problem(f"only a referral names a referred person, not {outcome!r}", field="referral"))
    if amount is not None and outcome != "purchased":
        problems.append(Problem(f"an amount goes with a purchase, not {outcome!r}", field="amount"))
    if amount is not None and amount < 0:
        problems.append(Problem(f"amount {amount} is negative", field="amount"))
    return problems


@dataclass(frozen=True)
class Outcome:
    """One outcome to record with :func:`record_many` (a line of a form or of an import file)."""

    dispatch_id: int
    outcome: str
    occurred_at: dt.datetime
    recorded_by: str
    note: str | None = None
    product_id: str | None = None
    amount: Decimal | None = None
    referral: Referral | None = None
    idempotency_key: str | None = None
    source_ref: str | None = None  # e.g. "feedback.csv:12"


def record_many(session: Session, *, outcomes: Sequence[Outcome], source: str, where: str | None = None,
                limit: int = 50) -> list[Feedback]:
    """Record outcomes all or nothing: every bad row is reported by number (from 1) and then none is recorded.

    Rows whose idempotency key is already recorded are skipped (a re-imported file adds nothing).
    """
    ids = sorted({o.dispatch_id for o in outcomes})
    dispatches: dict[int, Dispatch] = {}
    for start in range(0, len(ids), 1000):
        for d in session.scalars(sa.select(Dispatch).where(Dispatch.id.in_(ids[start:start + 1000]))):
            dispatches[d.id] = d
    problems: list[Problem] = []
    seen_keys: dict[str, int] = {}
    for n, o in enumerate(outcomes, 1):
        found = check(dispatch_id=o.dispatch_id, dispatch=dispatches.get(o.dispatch_id), outcome=o.outcome,
                      referral=o.referral, amount=o.amount)
        if o.occurred_at.tzinfo is None or o.occurred_at.utcoffset() is None:
            found.append(Problem(f"time {o.occurred_at.isoformat()} has no time zone", field="occurred_at"))
        if o.idempotency_key is not None:
            if o.idempotency_key in seen_keys:
                found.append(Problem(f"same key {o.idempotency_key!r} as row {seen_keys[o.idempotency_key]}",
                                     field="idempotency_key"))
            seen_keys.setdefault(o.idempotency_key, n)
        problems.extend(replace(p, row=n, file=where) for p in found)
    if problems:
        bad = len({p.row for p in problems})
        raise DataError(f"{bad:,} of {len(outcomes):,} feedback rows are invalid; nothing was recorded",
                        problems=problems[:limit], total=len(problems),
                        hint="correct the rows listed and record them all again")
    done_keys = set()
    keys = list(seen_keys)
    for start in range(0, len(keys), 1000):
        done_keys.update(session.scalars(sa.select(Feedback.idempotency_key)
                                         .where(Feedback.idempotency_key.in_(keys[start:start + 1000]))))
    recorded = []
    for o in outcomes:
        if o.idempotency_key is not None and o.idempotency_key in done_keys:
            continue
        dispatch = dispatches[o.dispatch_id]
        lead = None
        if o.referral is not None:
            lead = Lead(name=o.referral.name, phone=o.referral.phone, rm_id=o.referral.rm_id or dispatch.rm_id,
                        referred_by_customer_id=dispatch.customer_id, note=o.referral.note,
                        product_line=o.referral.product_line)
        recorded.append(Feedback(dispatch=dispatch, customer_id=dispatch.customer_id, channel=dispatch.channel,
                                 outcome=o.outcome, occurred_at=as_utc(o.occurred_at), recorded_by=o.recorded_by,
                                 note=o.note, product_id=o.product_id, amount=o.amount, referred_lead=lead,
                                 source=source, source_ref=o.source_ref, idempotency_key=o.idempotency_key))
    session.add_all(recorded)
    session.flush()
    return recorded


def leads_of(session: Session, *, rm_id: str, statuses: Iterable[str] = ("new", "contacted")) -> list[Lead]:
    """An RM's open leads (referred to them), newest first."""
    query = (sa.select(Lead).where(Lead.rm_id == rm_id, Lead.status.in_(list(statuses)))
             .order_by(Lead.created_at.desc(), Lead.id.desc()))
    return list(session.scalars(query))


def for_contact(session: Session, *, dispatch_id: int) -> list[Feedback]:
    """Every outcome recorded for one contact, oldest first."""
    if session.get(Dispatch, dispatch_id) is None:
        raise NotFoundError(f"no contact with id {dispatch_id}")
    query = sa.select(Feedback).where(Feedback.dispatch_id == dispatch_id).order_by(Feedback.occurred_at, Feedback.id)
    return list(session.scalars(query))


def refused_within(session: Session, *, customer_id: str, months: int, now: dt.datetime | None = None,
                   channels: Iterable[str] = SPOKEN_CHANNELS) -> bool:
    """Whether the customer refused a contact on one of ``channels`` in the last ``months`` months."""
    now = as_utc(now or utcnow())
    query = (sa.select(Feedback.id)
             .where(Feedback.customer_id == customer_id, Feedback.outcome == "refused",
                    Feedback.channel.in_(list(channels)), Feedback.occurred_at > months_before(now, months),
                    Feedback.occurred_at <= now)
             .limit(1))
    return session.scalars(query).first() is not None


def refusals_since(session: Session, *, since: dt.datetime, until: dt.datetime | None = None,
                   channels: Iterable[str] = SPOKEN_CHANNELS) -> dict[str, dt.datetime]:
    """Customers who refused on ``channels`` since a time, with their latest refusal (for the plan step)."""
    query = (sa.select(Feedback.customer_id, sa.func.max(Feedback.occurred_at))
             .where(Feedback.outcome == "refused", Feedback.channel.in_(list(channels)),
                    Feedback.occurred_at > as_utc(since))
             .group_by(Feedback.customer_id))
    if until is not None:
        query = query.where(Feedback.occurred_at <= as_utc(until))
    # max() keeps the column's type, so the latest refusal comes back as an aware UTC datetime
    return {customer: latest for customer, latest in session.execute(query)}


def outcomes_by_strategy(factory: sa.orm.sessionmaker[Session]) -> dict[str, dict[str, int]]:
    """Recorded feedback outcomes per strategy (for the review's descriptive feedback counts)."""
    query = (sa.select(Dispatch.strategy_id, Feedback.outcome, sa.func.count(Feedback.id))
             .join(Dispatch, Dispatch.id == Feedback.dispatch_id)
             .group_by(Dispatch.strategy_id, Feedback.outcome))
    out: dict[str, dict[str, int]] = {}
    with factory() as session:
        for strategy, outcome, n in session.execute(query):
            out.setdefault(strategy, {})[outcome] = int(n)
    return out
