"""Consent changes and do-not-disturb (授权 / 免打扰), and the "may we contact this customer?" read.

The bank's extract says what each customer consented to (the lake's ``consent`` table, a baseline);
changes made since then (a customer replies STOP, tells the RM, a complaint) are recorded here, as
history, never overwritten. Do-not-disturb entries block a channel (or all channels) from a start
time until they expire or are lifted. The decision itself is :func:`decide`, a pure function; the
session-taking functions fetch its inputs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from lifeloop.data.schema import CONSENT_PURPOSES, CONTACT_CHANNELS
from lifeloop.errors import DataError, NotFoundError, Problem
from lifeloop.store.ops import audit
from lifeloop.store.ops.models import ALL_CHANNELS, ConsentChange, DoNotDisturb
from lifeloop.store.ops.types import as_utc, utcnow


@dataclass(frozen=True)
class Permission:
    """Whether a contact is allowed, and why (the reason is shown in "why wasn't this customer contacted?")."""

    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


def record_change(session: Session, *, customer_id: str, purpose: str, channel: str, granted: bool,
                  effective_at: dt.datetime, source: str, recorded_by: str, reason: str | None = None) -> ConsentChange:
    """Record that a customer granted or withdrew consent for a purpose on a channel (``*``: all channels)."""
    problems = []
    if purpose not in CONSENT_PURPOSES:
        problems.append(Problem(f"unknown purpose {purpose!r}; expected one of {', '.join(CONSENT_PURPOSES)}",
                                field="purpose"))
    if channel not in (*CONTACT_CHANNELS, ALL_CHANNELS):
        problems.append(Problem(f"unknown channel {channel!r}; expected one of {', '.join(CONTACT_CHANNELS)} or *",
                                field="channel"))
    if problems:
        raise DataError(f"consent change for customer {customer_id} is invalid", problems=problems)
    change = ConsentChange(customer_id=customer_id, purpose=purpose, channel=channel, granted=granted,
                           effective_at=as_utc(effective_at, what="effective_at"), source=source,
                           recorded_by=recorded_by, reason=reason)
    session.add(change)
    session.flush()
    return change


def add_do_not_disturb(session: Session, *, customer_id: str, reason: str, created_by: str,
                       starts_at: dt.datetime | None = None, expires_at: dt.datetime | None = None,
                       channel: str | None = None) -> DoNotDisturb:
    """Put a customer on do-not-disturb for one channel (None: all) from ``starts_at`` until ``expires_at``; audited."""
    starts_at = as_utc(starts_at or utcnow(), what="starts_at")
    if expires_at is not None and as_utc(expires_at, what="expires_at") <= starts_at:
        raise DataError(f"do-not-disturb for customer {customer_id} expires before it starts",
                        problems=[Problem(f"expires_at {expires_at.isoformat()} is not after starts_at "
                                          f"{starts_at.isoformat()}", field="expires_at")])
    if channel is not None and channel not in CONTACT_CHANNELS:
        raise DataError(f"do-not-disturb for customer {customer_id}: unknown channel {channel!r}",
                        hint=f"use one of {', '.join(CONTACT_CHANNELS)}, or none for every channel")
    if not reason.strip():
        raise DataError(f"do-not-disturb for customer {customer_id} needs a reason",
                        hint="say why (complaint, customer request, bereavement, ...): it is shown to staff")
    entry = DoNotDisturb(customer_id=customer_id, channel=channel, reason=reason, starts_at=starts_at,
                         expires_at=as_utc(expires_at) if expires_at else None, created_by=created_by)
    session.add(entry)
    session.flush()
    audit.record(session, actor=created_by, action="dnd.add", target_type="customer", target_id=customer_id,
                 reason=reason, details={"entry_id": entry.id, "channel": channel or "*",
                                         "starts_at": entry.starts_at, "expires_at": entry.expires_at})
    return entry


def lift_do_not_disturb(session: Session, *, entry_id: int, lifted_by: str, reason: str,
                        at: dt.datetime | None = None) -> DoNotDisturb:
    """End a do-not-disturb entry early (it stays in the history, marked lifted); audited."""
    entry = session.get(DoNotDisturb, entry_id)
    if entry is None:
        raise NotFoundError(f"no do-not-disturb entry with id {entry_id}")
    entry.lifted_at = as_utc(at or utcnow(), what="at")
    entry.lifted_by = lifted_by
    entry.lift_reason = reason
    session.flush()
    audit.record(session, actor=lifted_by, action="dnd.lift", target_type="customer", target_id=entry.customer_id,
                 reason=reason, details={"entry_id": entry.id, "channel": entry.channel or "*"})
    return entry


def _dnd_active(at: dt.datetime):
    return sa.and_(DoNotDisturb.starts_at <= at,
                   sa.or_(DoNotDisturb.expires_at.is_(None), DoNotDisturb.expires_at > at),
                   sa.or_(DoNotDisturb.lifted_at.is_(None), DoNotDisturb.lifted_at > at))


def active_do_not_disturb(session: Session, *, at: dt.datetime | None = None,
                          customer_ids: Iterable[str] | None = None) -> list[DoNotDisturb]:
    """Do-not-disturb entries in force at a time (for some customers, or everyone)."""
    at = as_utc(at or utcnow())
    query = sa.select(DoNotDisturb).where(_dnd_active(at))
    if customer_ids is not None:
        query = query.where(DoNotDisturb.customer_id.in_(list(customer_ids)))
    return list(session.scalars(query.order_by(DoNotDisturb.customer_id, DoNotDisturb.id)))


def consent_history(session: Session, *, customer_id: str, purpose: str | None = None,
                    until: dt.datetime | None = None) -> list[ConsentChange]:
    """A customer's consent changes (effective up to ``until``), oldest first."""
    query = sa.select(ConsentChange).where(ConsentChange.customer_id == customer_id)
    if purpose is not None:
        query = query.where(ConsentChange.purpose == purpose)
    if until is not None:
        query = query.where(ConsentChange.effective_at <= as_utc(until))
    return list(session.scalars(query.order_by(ConsentChange.effective_at, ConsentChange.id)))


def is_contact_allowed(session: Session, *, customer_id: str, channel: str, purpose: str = "marketing",
                       at: dt.datetime | None = None, baseline: bool | None = None) -> Permission:
    """May we contact this customer on this channel for this purpose at this time? With the reason.

    ``baseline`` is the consent in the bank's latest extract (None: the extract says nothing).
    """
    at = as_utc(at or utcnow())
    changes = consent_history(session, customer_id=customer_id, purpose=purpose, until=at)
    dnd = active_do_not_disturb(session, at=at, customer_ids=[customer_id])
    return decide(channel=channel, purpose=purpose, at=at, baseline=baseline, changes=changes, do_not_disturb=dnd)


def decide(*, channel: str, purpose: str, at: dt.datetime, baseline: bool | None,
           changes: Sequence[ConsentChange], do_not_disturb: Sequence[DoNotDisturb]) -> Permission:
    """The contact decision from its inputs: do-not-disturb first, then the latest consent change, then the baseline.

    A change for every channel (``*``) and one for this channel compete on time: the later one wins, so
    "no marketing at all" followed by "SMS is fine" allows SMS. Marketing without any recorded consent is
    refused (opt-in); service and risk contacts are allowed unless withdrawn.
    """
    for entry in do_not_disturb:
        if entry.channel in (None, channel) and _in_force(entry, at):
            until = f" until {entry.expires_at:%Y-%m-%d %H:%M} UTC" if entry.expires_at else ""
            return Permission(False, f"do-not-disturb{until}: {entry.reason}")
    relevant = [c for c in changes
                if c.purpose == purpose and c.channel in (channel, ALL_CHANNELS) and c.effective_at <= at]
    if relevant:
        latest = max(relevant, key=lambda c: (c.effective_at, c.id or 0))
        scope = "every channel" if latest.channel == ALL_CHANNELS else channel
        verb = "granted" if latest.granted else "withdrawn"
        return Permission(latest.granted, f"{purpose} consent {verb} for {scope} on "
                                          f"{latest.effective_at:%Y-%m-%d} ({latest.source})")
    if baseline is not None:
        return Permission(baseline, f"{purpose} consent {'given' if baseline else 'not given'} in the bank's records")
    if purpose == "marketing":
        return Permission(False, "no marketing consent on record")
    return Permission(True, f"{purpose} contact needs no opt-in")


def _in_force(entry: DoNotDisturb, at: dt.datetime) -> bool:
    return (entry.starts_at <= at and (entry.expires_at is None or entry.expires_at > at)
            and (entry.lifted_at is None or entry.lifted_at > at))


def latest_consent(session: Session, *, at: dt.datetime | None = None, purpose: str = "marketing"
                   ) -> dict[tuple[str, str], bool]:
    """For the plan step: every (customer, channel or ``*``) whose consent changed, with its latest value at ``at``."""
    at = as_utc(at or utcnow())
    query = (sa.select(ConsentChange.customer_id, ConsentChange.channel, ConsentChange.granted)
             .where(ConsentChange.purpose == purpose, ConsentChange.effective_at <= at)
             .order_by(ConsentChange.effective_at, ConsentChange.id))
    per_customer: dict[str, dict[str, bool]] = {}
    for customer_id, channel, granted in session.execute(query):
        if channel == ALL_CHANNELS:
            # a change for every channel overrides the earlier per-channel ones
            per_customer[customer_id] = {ALL_CHANNELS: granted}
        else:
            per_customer.setdefault(customer_id, {})[channel] = granted
    return {(customer, channel): granted for customer, channels in per_customer.items()
            for channel, granted in channels.items()}
