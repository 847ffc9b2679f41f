"""Strategy versions in the operations database (table ``strategy_versions``): drafts, submissions, decisions.

The rules (which transition, who may make it) are :mod:`lifeloop.strategy.versions`' and are checked by the
caller (``Context``); this module stores what was decided and puts every transition on the audit log
(``strategy.draft``, ``strategy.save``, ``strategy.submit``, ``strategy.approve``, ``strategy.reject``,
``strategy.revert``, ``strategy.reverted``). The database keeps the author from deciding their own version
(CHECK ``four_eyes``). Services take a session and never commit (the caller's unit of work does).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from lifeloop.store.ops import audit
from lifeloop.store.ops.models import StrategyVersion
from lifeloop.store.ops.types import utcnow

LIVE_STATUS = "approved"


def row(v: StrategyVersion) -> dict[str, Any]:
    """A version as data (the CLI's JSON, the web API)."""
    return {"strategy_id": v.strategy_id, "version": v.version, "branch_id": v.branch_id, "status": v.status,
            "author": v.author, "note": v.note, "base_version": v.base_version, "reverts_version": v.reverts_version,
            "created_at": v.created_at, "updated_at": v.updated_at, "submitted_at": v.submitted_at,
            "decided_by": v.decided_by, "decided_at": v.decided_at, "comment": v.comment,
            "definition": v.definition}


def versions(session: Session, strategy_id: str | None = None) -> list[StrategyVersion]:
    """Every version (of one strategy), oldest first."""
    q = sa.select(StrategyVersion).order_by(StrategyVersion.strategy_id, StrategyVersion.version)
    if strategy_id is not None:
        q = q.where(StrategyVersion.strategy_id == strategy_id)
    return list(session.scalars(q))


def get(session: Session, strategy_id: str, version: int) -> StrategyVersion | None:
    return session.scalar(sa.select(StrategyVersion).where(StrategyVersion.strategy_id == strategy_id,
                                                           StrategyVersion.version == version))


def approved(session: Session) -> list[StrategyVersion]:
    """Every approved version (the live map takes the newest per strategy x branch)."""
    return list(session.scalars(sa.select(StrategyVersion).where(StrategyVersion.status == LIVE_STATUS)
                                .order_by(StrategyVersion.strategy_id, StrategyVersion.version)))


def live_stamp(session: Session) -> str:
    """A cheap fingerprint of what is approved (changes with every approval or revert)."""
    found = session.execute(sa.select(sa.func.count(), sa.func.max(StrategyVersion.decided_at),
                                      sa.func.max(StrategyVersion.id))
                            .where(StrategyVersion.status == LIVE_STATUS)).one()
    return "" if not found[0] else f"{found[0]}:{found[2]}:{found[1]}"


def _next_version(session: Session, strategy_id: str) -> int:
    top = session.scalar(sa.select(sa.func.max(StrategyVersion.version))
                         .where(StrategyVersion.strategy_id == strategy_id))
    return (top or 0) + 1


def _audit(session: Session, v: StrategyVersion, action: str, actor: str, at: dt.datetime,
           reason: str | None = None, **details: Any) -> None:
    audit.record(session, actor=actor, action=f"strategy.{action}", target_type="strategy_version",
                 target_id=f"{v.strategy_id}@{v.version}", reason=reason, at=at,
                 details={"strategy": v.strategy_id, "version": v.version, "branch": v.branch_id,
                          "status": v.status, **details})


def create(session: Session, *, strategy_id: str, branch_id: str | None, definition: str, author: str,
           base_version: int | None, note: str | None = None, status: str = "draft",
           reverts_version: int | None = None, now: dt.datetime | None = None) -> StrategyVersion:
    """A new version (a draft; a revert is created submitted), numbered after the strategy's newest; audited."""
    now = now or utcnow()
    v = StrategyVersion(strategy_id=strategy_id, version=_next_version(session, strategy_id), branch_id=branch_id,
                        status=status, definition=definition, base_version=base_version,
                        reverts_version=reverts_version, author=author, note=note, created_at=now, updated_at=now,
                        submitted_at=now if status == "submitted" else None)
    session.add(v)
    session.flush()
    if reverts_version is not None:
        _audit(session, v, "revert", author, now, note, reverts=reverts_version)
    else:
        _audit(session, v, "draft", author, now, note, base=base_version)
    return v


def save(session: Session, v: StrategyVersion, *, definition: str, note: str | None, actor: str,
         now: dt.datetime | None = None) -> StrategyVersion:
    """The author's draft, edited (only a draft is; the caller checked); audited."""
    now = now or utcnow()
    v.definition, v.note, v.updated_at = definition, note if note is not None else v.note, now
    session.flush()
    _audit(session, v, "save", actor, now, note)
    return v


def submit(session: Session, v: StrategyVersion, *, actor: str, now: dt.datetime | None = None) -> StrategyVersion:
    now = now or utcnow()
    v.status, v.submitted_at, v.updated_at = "submitted", now, now
    session.flush()
    _audit(session, v, "submit", actor, now)
    return v


def decide(session: Session, v: StrategyVersion, *, approve: bool, actor: str, comment: str | None,
           now: dt.datetime | None = None) -> StrategyVersion:
    """The checker's decision. Approving a revert marks the approved versions it rolls back ``reverted``."""
    now = now or utcnow()
    v.status = "approved" if approve else "rejected"
    v.decided_by, v.decided_at, v.comment, v.updated_at = actor, now, comment, now
    session.flush()
    _audit(session, v, "approve" if approve else "reject", actor, now, comment, author=v.author)
    if approve and v.reverts_version is not None:
        rolled = session.scalars(sa.select(StrategyVersion).where(
            StrategyVersion.strategy_id == v.strategy_id, StrategyVersion.status == LIVE_STATUS,
            StrategyVersion.version > v.reverts_version, StrategyVersion.version < v.version,
            StrategyVersion.branch_id.is_(None) if v.branch_id is None else StrategyVersion.branch_id == v.branch_id))
        for old in rolled:
            old.status, old.updated_at = "reverted", now
            session.flush()
            _audit(session, old, "reverted", actor, now, f"rolled back by version {v.version}", by=v.version)
    return v
