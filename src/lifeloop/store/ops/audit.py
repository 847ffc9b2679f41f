"""The audit log (审计日志): who did what to which thing, when, and why. Append-only.

This module can only add and read entries; the ORM refuses to flush a changed or deleted entry, and
the database itself refuses UPDATE and DELETE with triggers (created by the initial migration).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from lifeloop.store.ops.models import AuditEntry
from lifeloop.store.ops.types import as_utc, utcnow


def record(session: Session, *, actor: str, action: str, target_type: str | None = None,
           target_id: str | int | None = None, reason: str | None = None, details: dict[str, Any] | None = None,
           at: dt.datetime | None = None) -> AuditEntry:
    """Append one entry (e.g. actor="rm042", action="consent.withdraw", target_type="customer")."""
    entry = AuditEntry(at=as_utc(at or utcnow()), actor=actor, action=action, target_type=target_type,
                       target_id=None if target_id is None else str(target_id), reason=reason, details=details)
    session.add(entry)
    session.flush()
    return entry


def entries(session: Session, *, target_type: str | None = None, target_id: str | int | None = None,
            actor: str | None = None, since: dt.datetime | None = None, limit: int = 1000) -> list[AuditEntry]:
    """Entries matching the filters, oldest first (at most ``limit``)."""
    query = sa.select(AuditEntry)
    if target_type is not None:
        query = query.where(AuditEntry.target_type == target_type)
    if target_id is not None:
        query = query.where(AuditEntry.target_id == str(target_id))
    if actor is not None:
        query = query.where(AuditEntry.actor == actor)
    if since is not None:
        query = query.where(AuditEntry.at >= as_utc(since))
    return list(session.scalars(query.order_by(AuditEntry.at, AuditEntry.id).limit(limit)))
