"""Approvals (双人复核): a big day's send, or an unmasked export, waits for a second person.

When dispatch enqueues a day, :func:`needs` (pure) says which parts of it need an approval: a strategy
whose contacts that day exceed its size, the whole day above its size, and every channel whose file
export shows personal data unmasked. :func:`hold_new` puts the newly enqueued items of those parts in
status ``held`` — a status the outbox's claim never picks — and opens (or enlarges) a request, recorded
with the identity that ran dispatch. :func:`decide` approves or rejects a day's requests; the approver
must be someone else (the service refuses, and so does the database's ``four_eyes`` constraint). Then
:func:`settle` releases each held item whose requests are all approved (back to ``pending``) and cancels
each one with a rejected request. Every request, approval and rejection is on the audit log.

An item is covered by the latest request of each (kind, scope) that applies to it; a request covers as
many contacts as it names, so a re-plan that makes the day bigger after an approval needs a new one.
Services take a keyword-only session and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from lifeloop.errors import LifeloopError, NotFoundError
from lifeloop.store.ops import audit
from lifeloop.store.ops.models import Approval, Dispatch
from lifeloop.store.ops.types import as_utc, utcnow

DAY = "*"  # the scope of a whole-day request


class ApprovalError(LifeloopError):
    """An approval that may not be given: by the requester, by someone not listed, or without a reason."""


@dataclass(frozen=True)
class Need:
    """A part of a day that needs a second person: its kind, scope, size and the limit it exceeds."""

    kind: str
    scope: str
    contacts: int
    threshold: int | None = None


@dataclass(frozen=True)
class Rules:
    """When a send needs approval (``channels.yaml`` ``approvals:``) and which channels export unmasked data."""

    max_per_strategy: int = 5_000
    max_per_day: int = 20_000
    unmasked_channels: frozenset[str] = frozenset()


@dataclass
class Settled:
    """What a decision did: the requests decided, items released to the outbox and items cancelled."""

    approvals: list[Approval] = field(default_factory=list)
    released: int = 0
    cancelled: int = 0


def needs(per_strategy: Mapping[str, int], per_channel: Mapping[str, int], rules: Rules) -> list[Need]:
    """The parts of a day's send that need approval, from its contact counts (pure)."""
    out = [Need("strategy_volume", s, n, rules.max_per_strategy) for s, n in sorted(per_strategy.items())
           if n > rules.max_per_strategy]
    total = sum(per_strategy.values())
    if total > rules.max_per_day:
        out.append(Need("day_volume", DAY, total, rules.max_per_day))
    out += [Need("unmasked_export", c, n) for c, n in sorted(per_channel.items())
            if c in rules.unmasked_channels and n > 0]
    return out


def covers(kind: str, scope: str, *, strategy: str, channel: str) -> bool:
    """Whether a request of ``kind`` and ``scope`` applies to an item of ``strategy`` on ``channel`` (pure)."""
    return (kind == "day_volume" or (kind == "strategy_volume" and scope == strategy)
            or (kind == "unmasked_export" and scope == channel))


def _counted(as_of: dt.date):
    # controls and rejected items are cancelled: they are not part of what the day sends
    return sa.and_(Dispatch.as_of == as_of, Dispatch.status != "cancelled")


def day_counts(session: Session, *, as_of: dt.date) -> tuple[dict[str, int], dict[str, int]]:
    """The day's contacts in the outbox (controls and cancelled items left out), per strategy and per channel."""
    per_strategy = dict(session.execute(sa.select(Dispatch.strategy_id, sa.func.count())
                                        .where(_counted(as_of)).group_by(Dispatch.strategy_id)).all())
    per_channel = dict(session.execute(sa.select(Dispatch.channel, sa.func.count())
                                       .where(_counted(as_of)).group_by(Dispatch.channel)).all())
    return per_strategy, per_channel


def latest(session: Session, *, as_of: dt.date) -> dict[tuple[str, str], Approval]:
    """The newest request of each (kind, scope) of a day."""
    rows = session.scalars(sa.select(Approval).where(Approval.as_of == as_of).order_by(Approval.id))
    return {(a.kind, a.scope): a for a in rows}


def hold_new(session: Session, *, dispatch_ids: Iterable[int], rules: Rules, requested_by: str,
             now: dt.datetime | None = None) -> int:
    """Hold the newly enqueued items that need an approval, opening or enlarging requests; returns how many."""
    now = as_utc(now or utcnow())
    ids = sorted(dispatch_ids)
    items: list[tuple[int, dt.date, str, str]] = []
    for start in range(0, len(ids), 1000):
        items += session.execute(sa.select(Dispatch.id, Dispatch.as_of, Dispatch.strategy_id, Dispatch.channel)
                                 .where(Dispatch.id.in_(ids[start:start + 1000]),
                                        Dispatch.status == "pending")).all()
    held: list[int] = []
    for as_of in sorted({i[1] for i in items}):
        per_strategy, per_channel = day_counts(session, as_of=as_of)
        last = latest(session, as_of=as_of)
        open_needs = [n for n in needs(per_strategy, per_channel, rules)
                      if not ((a := last.get((n.kind, n.scope))) and a.status == "approved"
                              and a.contacts >= n.contacts)]
        day_items = [i for i in items if i[1] == as_of]
        for need in open_needs:
            covered = [i[0] for i in day_items if covers(need.kind, need.scope, strategy=i[2], channel=i[3])]
            if not covered:
                continue
            held += covered
            _request(session, as_of, need, last.get((need.kind, need.scope)), requested_by, now)
    held = sorted(set(held))
    for start in range(0, len(held), 1000):
        session.execute(sa.update(Dispatch).where(Dispatch.id.in_(held[start:start + 1000]),
                                                  Dispatch.status == "pending")
                        .values(status="held", updated_at=now).execution_options(synchronize_session=False))
    return len(held)


def _request(session: Session, as_of: dt.date, need: Need, last: Approval | None, requested_by: str,
             now: dt.datetime) -> Approval:
    why = (f"{need.contacts:,} contacts > {need.threshold:,}" if need.threshold is not None
           else f"{need.contacts:,} contacts exported with personal data unmasked")
    details = {"as_of": as_of.isoformat(), "kind": need.kind, "scope": need.scope, "contacts": need.contacts,
               "threshold": need.threshold}
    if last is not None and last.status == "pending":
        if last.contacts != need.contacts:   # the same day grew (a re-plan): the open request says so
            audit.record(session, actor=requested_by, action="approval.request.grown", target_type="approval",
                         target_id=last.id, reason=why, details={**details, "was": last.contacts}, at=now)
            last.contacts = need.contacts
            session.flush()
        return last
    approval = Approval(as_of=as_of, kind=need.kind, scope=need.scope, contacts=need.contacts,
                        threshold=need.threshold, status="pending", requested_by=requested_by, requested_at=now,
                        details=details)
    session.add(approval)
    session.flush()
    audit.record(session, actor=requested_by, action="approval.request", target_type="approval",
                 target_id=approval.id, reason=why, details=details, at=now)
    return approval


def requests(session: Session, *, as_of: dt.date | None = None, status: str | None = "pending") -> list[Approval]:
    """Requests (of a day, of a status; None: any), oldest first."""
    query = sa.select(Approval)
    if as_of is not None:
        query = query.where(Approval.as_of == as_of)
    if status is not None:
        query = query.where(Approval.status == status)
    return list(session.scalars(query.order_by(Approval.as_of, Approval.id)))


def held_counts(session: Session) -> dict[dt.date, int]:
    """How many outbox items are held, per day."""
    return dict(session.execute(sa.select(Dispatch.as_of, sa.func.count()).where(Dispatch.status == "held")
                                .group_by(Dispatch.as_of)).all())


def decide(session: Session, *, as_of: dt.date, approve: bool, by: str, reason: str, strategy: str | None = None,
           channel: str | None = None, approvers: Iterable[str] = (), now: dt.datetime | None = None) -> Settled:
    """Approve or reject a day's pending requests (or those of one strategy / channel), then settle its items."""
    now = as_utc(now or utcnow())
    if not (reason or "").strip():
        raise ApprovalError("an approval or rejection needs a reason", hint="add --reason TEXT; it is audited")
    wanted = [a for a in requests(session, as_of=as_of)
              if (strategy is None or (a.kind == "strategy_volume" and a.scope == strategy))
              and (channel is None or (a.kind == "unmasked_export" and a.scope == channel))]
    if not wanted:
        what = f" for strategy {strategy}" if strategy else f" for channel {channel}" if channel else ""
        raise NotFoundError(f"no approval is pending on {as_of}{what}", hint="see `lifeloop approve list`")
    allowed = sorted(set(approvers))
    if allowed and by not in allowed:
        raise ApprovalError(f"{by} may not approve sends", hint=f"approvers (channels.yaml approvals.approvers): "
                                                                f"{', '.join(allowed)}")
    own = [a for a in wanted if a.requested_by == by]
    if own:
        raise ApprovalError(f"{by} requested {_label(own[0])} and cannot also decide it (four eyes)",
                            hint="another approver approves or rejects it (`lifeloop whoami` shows who you are)")
    for a in wanted:
        a.status, a.decided_by, a.decided_at, a.reason = (("approved" if approve else "rejected"), by, now,
                                                          reason.strip())
        audit.record(session, actor=by, action="approval.approve" if approve else "approval.reject",
                     target_type="approval", target_id=a.id, reason=reason.strip(),
                     details={"as_of": as_of.isoformat(), "kind": a.kind, "scope": a.scope, "contacts": a.contacts,
                              "requested_by": a.requested_by}, at=now)
    session.flush()
    done = settle(session, as_of=as_of, now=now)
    done.approvals = wanted
    return done


def settle(session: Session, *, as_of: dt.date, now: dt.datetime | None = None) -> Settled:
    """Release held items whose requests are all approved; cancel those with a rejected request."""
    now = as_utc(now or utcnow())
    last = latest(session, as_of=as_of)
    held = session.execute(sa.select(Dispatch.id, Dispatch.strategy_id, Dispatch.channel)
                           .where(Dispatch.as_of == as_of, Dispatch.status == "held")).all()
    release: list[int] = []
    cancel: dict[str, list[int]] = {}
    for item_id, strategy, channel in held:
        mine = [a for (kind, scope), a in last.items() if covers(kind, scope, strategy=strategy, channel=channel)]
        rejected = [a for a in mine if a.status == "rejected"]
        if rejected:
            a = rejected[0]
            cancel.setdefault(f"{_label(a)} rejected by {a.decided_by}: {a.reason}", []).append(item_id)
        elif mine and all(a.status == "approved" for a in mine):
            release.append(item_id)
    for start in range(0, len(release), 1000):
        session.execute(sa.update(Dispatch).where(Dispatch.id.in_(release[start:start + 1000]),
                                                  Dispatch.status == "held")
                        .values(status="pending", updated_at=now).execution_options(synchronize_session=False))
    for why, ids in cancel.items():
        for start in range(0, len(ids), 1000):
            session.execute(sa.update(Dispatch).where(Dispatch.id.in_(ids[start:start + 1000]),
                                                      Dispatch.status == "held")
                            .values(status="cancelled", blocked_reason=why[:256], updated_at=now)
                            .execution_options(synchronize_session=False))
    session.expire_all()
    return Settled(released=len(release), cancelled=sum(len(v) for v in cancel.values()))


def _label(a: Approval) -> str:
    if a.kind == "strategy_volume":
        return f"the send of strategy {a.scope} on {a.as_of}"
    if a.kind == "day_volume":
        return f"the whole send of {a.as_of}"
    return f"the unmasked {a.scope} export of {a.as_of}"


def describe(a: Approval) -> str:
    """One line for people: what waits, how big, who asked."""
    size = f"{a.contacts:,} contacts" + (f" (limit {a.threshold:,})" if a.threshold is not None else "")
    return f"#{a.id} {_label(a)}: {size}, requested by {a.requested_by}"
