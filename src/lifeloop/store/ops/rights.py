"""The customer's rights in the operations database (客户权利): what was asked, what holds now, and proof.

* Opting out of personalised marketing (PIPL Art. 24, 个性化推荐退出): :func:`set_personalisation`
  records a change (history, never overwritten); :func:`opted_out` says who is out at a time.
* Deleting derived tags (算法推荐管理规定 Art. 17): :func:`request_tag_deletion` records the request;
  :func:`tags_deleted` names the customers every derived snapshot leaves out from the next run on.
* Purge (PIPL Art. 47): :func:`purge_customer` deletes a customer's rows from the ops tables and leaves
  keyed hashes (:class:`Suppression`); :func:`match_suppressed` recognises them in a later batch, and
  :func:`suppressed` names the customers kept out of marketing for it.

Every change is on the audit log (``rights.*``). Services take a keyword-only session and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from lifeloop.errors import DataError, Problem
from lifeloop.store.ops import audit
from lifeloop.store.ops.models import (
    ConsentChange,
    ContactReservation,
    Dispatch,
    DoNotDisturb,
    Event,
    Feedback,
    InboundReply,
    Lead,
    MarketingSuppressed,
    Moment,
    MomentDecision,
    PersonalisationChange,
    RightsRequest,
    Suppression,
    Task,
    Timer,
)
from lifeloop.store.ops.types import as_utc, utcnow
from lifeloop.store.suppression import normalise

NO_PERSONALISATION = "no_personalisation"
SUPPRESSED = "suppressed"
CHUNK = 1000


def _require(customer_id: str, **texts: str) -> None:
    problems = [Problem(f"{name} must say something; it is kept on the audit log", field=name)
                for name, value in texts.items() if not (value or "").strip()]
    if not (customer_id or "").strip():
        problems.insert(0, Problem("no customer number given", field="customer_id"))
    if problems:
        raise DataError(f"customer {customer_id or '?'}: {problems[0].message}", problems=problems,
                        hint="pass the customer number and --reason TEXT (and --source where asked)")


# ---------------------------------------------------------------------------------------------- personalisation
def set_personalisation(session: Session, *, customer_id: str, opted_out: bool, source: str, reason: str,
                        actor: str, at: dt.datetime | None = None) -> PersonalisationChange:
    """Record that a customer opted out of personalised marketing (``opted_out``) or back in; audited."""
    _require(customer_id, source=source, reason=reason)
    at = as_utc(at or utcnow(), what="at")
    change = PersonalisationChange(customer_id=customer_id, opted_out=opted_out, effective_at=at, recorded_at=at,
                                   source=source.strip()[:32], recorded_by=actor, reason=reason.strip())
    session.add(change)
    session.flush()
    audit.record(session, actor=actor, action=f"rights.no_personalisation.{'set' if opted_out else 'clear'}",
                 target_type="customer", target_id=customer_id, reason=reason.strip(),
                 details={"source": change.source, "change_id": change.id}, at=at)
    return change


def opted_out(session: Session, *, at: dt.datetime | None = None,
              customer_ids: Iterable[str] | None = None) -> set[str]:
    """Customers whose latest personalisation change effective at ``at`` is an opt-out."""
    at = as_utc(at or utcnow())
    ids = None if customer_ids is None else sorted(set(customer_ids))
    latest: dict[str, bool] = {}
    for part in ([None] if ids is None else [ids[i:i + CHUNK] for i in range(0, len(ids), CHUNK)]):
        query = (sa.select(PersonalisationChange.customer_id, PersonalisationChange.opted_out)
                 .where(PersonalisationChange.effective_at <= at)
                 .order_by(PersonalisationChange.effective_at, PersonalisationChange.id))
        if part is not None:
            query = query.where(PersonalisationChange.customer_id.in_(part))
        for who, out in session.execute(query):
            latest[who] = bool(out)
    return {who for who, out in latest.items() if out}


# ---------------------------------------------------------------------------------------------- tag deletion
def request_tag_deletion(session: Session, *, customer_id: str, reason: str, actor: str,
                         at: dt.datetime | None = None) -> RightsRequest:
    """Record a request to delete a customer's derived tags (honoured from the next run); audited."""
    _require(customer_id, reason=reason)
    at = as_utc(at or utcnow(), what="at")
    request = RightsRequest(customer_id=customer_id, kind="delete_tags", status="pending", reason=reason.strip(),
                            requested_by=actor, requested_at=at)
    session.add(request)
    session.flush()
    audit.record(session, actor=actor, action="rights.delete_tags.request", target_type="customer",
                 target_id=customer_id, reason=reason.strip(), details={"request_id": request.id}, at=at)
    return request


def tags_deleted(session: Session) -> set[str]:
    """Customers who asked for their derived tags to be deleted (pending or applied): left out of derived data."""
    return set(session.scalars(sa.select(RightsRequest.customer_id).where(RightsRequest.kind == "delete_tags")))


def pending(session: Session, kind: str) -> list[RightsRequest]:
    """Requests of a kind not yet applied to the retained snapshots, oldest first."""
    return list(session.scalars(sa.select(RightsRequest).where(RightsRequest.kind == kind,
                                                               RightsRequest.status == "pending")
                                .order_by(RightsRequest.id)))


def mark_applied(session: Session, *, requests: Iterable[RightsRequest], actor: str, details: Mapping[str, Any],
                 at: dt.datetime | None = None) -> None:
    """Mark requests applied (by whom, when, what was done)."""
    at = as_utc(at or utcnow())
    for r in requests:
        r.status, r.applied_by, r.applied_at, r.details = "applied", actor, at, dict(details)
    session.flush()


# ---------------------------------------------------------------------------------------------- suppression
def suppressed(session: Session, *, customer_ids: Iterable[str] | None = None) -> set[str]:
    """Customers of ingested batches who match a purged person's keyed hashes: never a marketing contact."""
    query = sa.select(MarketingSuppressed.customer_id)
    if customer_ids is None:
        return set(session.scalars(query))
    ids = sorted(set(customer_ids))
    return {c for i in range(0, len(ids), CHUNK)
            for c in session.scalars(query.where(MarketingSuppressed.customer_id.in_(ids[i:i + CHUNK])))}


def flags(session: Session, *, customer_ids: Iterable[str], at: dt.datetime | None = None) -> dict[str, set[str]]:
    """Per customer, the rights flags in force at ``at``: ``no_personalisation``, ``suppressed`` (none: absent)."""
    ids = list(customer_ids)
    out: dict[str, set[str]] = {}
    for who in opted_out(session, at=at, customer_ids=ids):
        out.setdefault(who, set()).add(NO_PERSONALISATION)
    for who in suppressed(session, customer_ids=ids):
        out.setdefault(who, set()).add(SUPPRESSED)
    return out


def known_digests(session: Session) -> dict[str, set[str]]:
    """kind -> every suppression digest of that kind."""
    out: dict[str, set[str]] = {}
    for kind, value in session.execute(sa.select(Suppression.kind, Suppression.digest)):
        out.setdefault(kind, set()).add(value)
    return out


def match_suppressed(session: Session, *, digests: Mapping[str, Mapping[str, str | None]], batch_as_of: dt.date,
                     actor: str) -> dict[str, list[str]]:
    """Record the customers of a batch whose keyed hashes match a suppression; return customer -> kinds matched.

    ``digests``: customer id -> kind -> digest of the batch's customers. Customers already recorded stay as
    they are; each newly matched one is audited (customer id and the kinds matched, nothing else).
    """
    known = known_digests(session)
    if not known:
        return {}
    found = {who: [k for k, d in sorted(ds.items()) if d is not None and d in known.get(k, ())]
             for who, ds in digests.items()}
    found = {who: kinds for who, kinds in found.items() if kinds}
    already = suppressed(session, customer_ids=found)
    for who, kinds in sorted(found.items()):
        if who in already:
            continue
        session.add(MarketingSuppressed(customer_id=who, matched_on=",".join(kinds)[:64], batch_as_of=batch_as_of))
        audit.record(session, actor=actor, action="rights.suppressed.match", target_type="customer", target_id=who,
                     details={"matched_on": kinds, "batch": batch_as_of.isoformat()})
    session.flush()
    return found


# ---------------------------------------------------------------------------------------------- purge
def purge_customer(session: Session, *, customer_id: str, digests: Mapping[str, str | None], reason: str,
                   actor: str, mobile: str | None = None, details: Mapping[str, Any] | None = None,
                   at: dt.datetime | None = None) -> tuple[RightsRequest, dict[str, int]]:
    """Delete a customer's rows from the ops tables, leave their keyed hashes, record and audit the purge.

    Deleted: feedback, RM tasks, contact-ledger places and dispatches (contact history and payloads),
    consent changes, do-not-disturb entries, inbound replies (by customer, or by ``mobile``), personalisation
    changes, their own marketing-suppression match, their real-time events, moments, decisions and timers.
    Leads they referred keep the lead (another person) but lose the link. Their earlier rights requests keep
    only the keyed hash. The audit log is append-only and keeps the customer id (see docs/security.md).
    """
    _require(customer_id, reason=reason)
    at = as_utc(at or utcnow(), what="at")
    token = f"purged:{digests['customer_id']}"
    counts: dict[str, int] = {}

    def gone(name: str, statement: Any) -> None:
        counts[name] = counts.get(name, 0) + (session.execute(statement).rowcount or 0)

    mine = sa.select(Dispatch.id).where(Dispatch.customer_id == customer_id).scalar_subquery()
    gone("feedback", sa.delete(Feedback).where(sa.or_(Feedback.customer_id == customer_id,
                                                      Feedback.dispatch_id.in_(mine))))
    gone("tasks", sa.delete(Task).where(sa.or_(Task.customer_id == customer_id, Task.dispatch_id.in_(mine))))
    gone("contact_ledger", sa.delete(ContactReservation).where(ContactReservation.customer_id == customer_id))
    gone("dispatches", sa.delete(Dispatch).where(Dispatch.customer_id == customer_id))
    same_mobile = []
    if normalise("mobile", mobile):   # replies keep the number as it came in (+86, spaces): compare the digits
        same_mobile = [i for i, m in session.execute(sa.select(InboundReply.id, InboundReply.mobile)
                                                     .where(InboundReply.mobile.is_not(None)))
                       if normalise("mobile", m) == normalise("mobile", mobile)]
    gone("inbound_replies", sa.delete(InboundReply).where(sa.or_(InboundReply.customer_id == customer_id,
                                                                 InboundReply.id.in_(same_mobile))))
    gone("consent_changes", sa.delete(ConsentChange).where(ConsentChange.customer_id == customer_id))
    gone("do_not_disturb", sa.delete(DoNotDisturb).where(DoNotDisturb.customer_id == customer_id))
    gone("personalisation_changes",
         sa.delete(PersonalisationChange).where(PersonalisationChange.customer_id == customer_id))
    gone("marketing_suppressed", sa.delete(MarketingSuppressed).where(MarketingSuppressed.customer_id == customer_id))
    # real time: their events, moments, decisions (the review's moment_entries are re-published from these) and timers
    gone("events", sa.delete(Event).where(Event.customer_id == customer_id))
    gone("moments", sa.delete(Moment).where(Moment.customer_id == customer_id))
    gone("moment_decisions", sa.delete(MomentDecision).where(MomentDecision.customer_id == customer_id))
    gone("timers", sa.delete(Timer).where(Timer.customer_id == customer_id))
    counts["leads_unlinked"] = session.execute(sa.update(Lead).where(Lead.referred_by_customer_id == customer_id)
                                               .values(referred_by_customer_id=None)).rowcount or 0
    session.execute(sa.update(RightsRequest).where(RightsRequest.customer_id == customer_id)
                    .values(customer_id=token))
    request = RightsRequest(customer_id=token, kind="purge", status="applied", reason=reason.strip(),
                            requested_by=actor, requested_at=at, applied_by=actor, applied_at=at,
                            details={"ops_rows": counts, **(details or {})})
    session.add(request)
    session.flush()
    have = {(k, d) for k, d in session.execute(sa.select(Suppression.kind, Suppression.digest)
                                               .where(Suppression.digest.in_([d for d in digests.values() if d])))}
    for kind, value in sorted(digests.items()):
        if value is not None and (kind, value) not in have:
            session.add(Suppression(kind=kind, digest=value, created_at=at, request_id=request.id))
    session.flush()
    audit.record(session, actor=actor, action="rights.purge", target_type="customer", target_id=customer_id,
                 reason=reason.strip(), details={"request_id": request.id, "customer_hash": digests["customer_id"],
                                                 "ops_rows": counts, **(details or {})}, at=at)
    return request, counts


# ---------------------------------------------------------------------------------------------- what holds
def rights_of(session: Session, customer_id: str, *, at: dt.datetime | None = None) -> dict[str, Any]:
    """A customer's rights flags now, their personalisation history and their requests (for ``rights``)."""
    at = as_utc(at or utcnow())
    history = list(session.scalars(sa.select(PersonalisationChange)
                                   .where(PersonalisationChange.customer_id == customer_id)
                                   .order_by(PersonalisationChange.effective_at, PersonalisationChange.id)))
    requests = list(session.scalars(sa.select(RightsRequest).where(RightsRequest.customer_id == customer_id)
                                    .order_by(RightsRequest.id)))
    match = session.scalars(sa.select(MarketingSuppressed)
                            .where(MarketingSuppressed.customer_id == customer_id)).first()
    return {
        "customer_id": customer_id,
        "no_personalisation": customer_id in opted_out(session, at=at, customer_ids=[customer_id]),
        "tags_deleted": any(r.kind == "delete_tags" for r in requests),
        "suppressed": None if match is None else {"matched_on": match.matched_on.split(","),
                                                  "batch": match.batch_as_of, "recorded_at": match.recorded_at},
        "personalisation_history": [{"opted_out": c.opted_out, "effective_at": c.effective_at, "source": c.source,
                                     "recorded_by": c.recorded_by, "reason": c.reason} for c in history],
        "requests": [{"id": r.id, "kind": r.kind, "status": r.status, "reason": r.reason,
                      "requested_by": r.requested_by, "requested_at": r.requested_at, "applied_at": r.applied_at,
                      "details": r.details} for r in requests],
    }
