"""The operations database's tables (SQLAlchemy 2 typed declarative models).

State that is not a daily snapshot (docs/operations-db.md): contact history and the dispatch outbox,
feedback (营销表单) and referred leads (转介), consent changes and do-not-disturb (免打扰), RM tasks,
the append-only audit log, and idempotency keys. Times are UTC and timezone-aware (:class:`UtcDateTime`),
money is NUMERIC(18,2) (:class:`Money`), codes are closed sets checked by the database.

The schema itself is created by the Alembic migrations in ``migrations/versions``; a test checks that
these models and the migrations agree.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from lifeloop.data.schema import CONSENT_PURPOSES, CONTACT_CHANNELS
from lifeloop.errors import DataError
from lifeloop.store.ops.types import Money, UtcDateTime, one_of, utcnow

# stable constraint names, so later migrations (and SQLite batch mode) can address them
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Outbox life of a dispatch: pending -> claimed -> sent | pending (retry) | failed (gave up);
# blocked: the dispatch-time consent / do-not-disturb check stopped it; cancelled: withdrawn by a person.
DISPATCH_STATUSES = ("pending", "claimed", "sent", "failed", "blocked", "cancelled")
# Outcomes a relationship manager, call centre or provider reports for one contact (营销表单).
OUTCOMES = ("reached", "no_answer", "interested", "purchased", "refused", "referral")
TASK_STATUSES = ("open", "in_progress", "done", "cancelled", "expired")
LEAD_STATUSES = ("new", "contacted", "converted", "closed")
ALL_CHANNELS = "*"  # a consent change for every channel of a purpose

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base of every operations table."""

    metadata = sa.MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: UtcDateTime(), Decimal: Money(), dict[str, Any]: sa.JSON()}


class Dispatch(Base):
    """One contact to one customer (contact history), and its place in the outbox until it is sent."""

    __tablename__ = "dispatches"
    __table_args__ = (
        one_of("status", DISPATCH_STATUSES, "status"),
        one_of("channel", CONTACT_CHANNELS, "channel"),
        one_of("purpose", CONSENT_PURPOSES, "purpose"),
        sa.CheckConstraint(sa.column("attempts") >= 0, name="attempts"),
        sa.Index(None, "status", "next_attempt_at"),
        sa.Index(None, "customer_id", "created_at"),
        sa.Index(None, "as_of", "strategy_id", "wave"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(sa.String(128), unique=True)
    as_of: Mapped[dt.date] = mapped_column(sa.Date)  # the date of the list it came from
    customer_id: Mapped[str] = mapped_column(sa.String(64))
    strategy_id: Mapped[str] = mapped_column(sa.String(64))
    wave: Mapped[str] = mapped_column(sa.String(64))
    channel: Mapped[str] = mapped_column(sa.String(16))
    purpose: Mapped[str] = mapped_column(sa.String(16), default="marketing")
    script_id: Mapped[str | None] = mapped_column(sa.String(64))
    rm_id: Mapped[str | None] = mapped_column(sa.String(64))
    # what the channel adapter needs (rendered script, variables); may hold personal data
    payload: Mapped[dict[str, Any] | None]
    unit_cost: Mapped[Decimal | None]
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=5)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(sa.String(64))
    claim_token: Mapped[str | None] = mapped_column(sa.String(32))
    claim_expires_at: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]
    provider_ref: Mapped[str | None] = mapped_column(sa.String(128))
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    blocked_reason: Mapped[str | None] = mapped_column(sa.String(256))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # the contact's validity ends here (its list's date + the wave's valid days, local midnight); NULL: never
    expires_at: Mapped[dt.datetime | None]

    feedback: Mapped[list[Feedback]] = relationship(back_populates="dispatch")


class ContactReservation(Base):
    """A contact's place in the customer's contact ledger (frequency caps at send time), one per local day.

    Reserved by the send-time gate right before the contact goes out, under a per-customer lock (the
    database write lock on SQLite, a transaction-scoped advisory lock on PostgreSQL), after counting the
    customer's reservations in every cap window; released (deleted) when the send fails for good and no
    earlier attempt may have reached the customer. See lifeloop.store.ops.ledger.
    """

    __tablename__ = "contact_ledger"
    __table_args__ = (
        one_of("channel", CONTACT_CHANNELS, "channel"),
        sa.UniqueConstraint("dispatch_id", "contact_day"),
        sa.Index(None, "customer_id", "contact_day"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    dispatch_id: Mapped[int] = mapped_column(sa.ForeignKey("dispatches.id", ondelete="CASCADE"))
    customer_id: Mapped[str] = mapped_column(sa.String(64))
    channel: Mapped[str] = mapped_column(sa.String(16))
    strategy_id: Mapped[str] = mapped_column(sa.String(64))
    contact_day: Mapped[dt.date] = mapped_column(sa.Date)   # the customer's local date of the contact
    reserved_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    reserved_by: Mapped[str | None] = mapped_column(sa.String(64))


class Lead(Base):
    """A person referred by a customer (转介): a new lead for a relationship manager."""

    __tablename__ = "leads"
    __table_args__ = (one_of("status", LEAD_STATUSES, "status"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(128))                 # C2 personal data
    phone: Mapped[str | None] = mapped_column(sa.String(32))          # C2 personal data
    referred_by_customer_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    rm_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    note: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16), default="new")
    converted_customer_id: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Feedback(Base):
    """The outcome of one contact: reached, no answer, interested, purchased, refused, referral."""

    __tablename__ = "feedback"
    __table_args__ = (
        one_of("outcome", OUTCOMES, "outcome"),
        one_of("channel", CONTACT_CHANNELS, "channel"),
        # a referral names the referred person; nothing else does
        sa.CheckConstraint(sa.or_(sa.column("outcome") == "referral", sa.column("referred_lead_id").is_(None)),
                           name="lead_only_on_referral"),
        sa.CheckConstraint(sa.or_(sa.column("outcome") != "referral", sa.column("referred_lead_id").is_not(None)),
                           name="referral_names_lead"),
        sa.Index(None, "customer_id", "outcome", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    dispatch_id: Mapped[int] = mapped_column(sa.ForeignKey("dispatches.id", ondelete="RESTRICT"), index=True)
    customer_id: Mapped[str] = mapped_column(sa.String(64))  # the dispatch's, kept here for fast reads
    channel: Mapped[str] = mapped_column(sa.String(16))      # the dispatch's, kept here for fast reads
    outcome: Mapped[str] = mapped_column(sa.String(16))
    occurred_at: Mapped[dt.datetime]
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    recorded_by: Mapped[str] = mapped_column(sa.String(64))
    product_id: Mapped[str | None] = mapped_column(sa.String(64))
    amount: Mapped[Decimal | None]
    referred_lead_id: Mapped[int | None] = mapped_column(sa.ForeignKey("leads.id", ondelete="RESTRICT"))
    note: Mapped[str | None] = mapped_column(sa.Text)
    source: Mapped[str] = mapped_column(sa.String(16), default="api")
    source_ref: Mapped[str | None] = mapped_column(sa.String(256))
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(128), unique=True)

    dispatch: Mapped[Dispatch] = relationship(back_populates="feedback")
    referred_lead: Mapped[Lead | None] = relationship()


class ConsentChange(Base):
    """A customer granted or withdrew consent for a purpose on a channel (``*``: every channel)."""

    __tablename__ = "consent_changes"
    __table_args__ = (
        one_of("purpose", CONSENT_PURPOSES, "purpose"),
        one_of("channel", (*CONTACT_CHANNELS, ALL_CHANNELS), "channel"),
        sa.Index(None, "customer_id", "purpose", "effective_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[str] = mapped_column(sa.String(64))
    purpose: Mapped[str] = mapped_column(sa.String(16))
    channel: Mapped[str] = mapped_column(sa.String(16))
    granted: Mapped[bool]
    effective_at: Mapped[dt.datetime]
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(sa.String(32))  # customer, rm, sms_reply, branch, import, ...
    recorded_by: Mapped[str] = mapped_column(sa.String(64))
    reason: Mapped[str | None] = mapped_column(sa.Text)


class DoNotDisturb(Base):
    """A do-not-disturb entry (免打扰) for a customer, on one channel or all, with reason and expiry."""

    __tablename__ = "do_not_disturb"
    __table_args__ = (
        one_of("channel", CONTACT_CHANNELS, "channel"),
        sa.CheckConstraint(sa.or_(sa.column("expires_at").is_(None), sa.column("expires_at") > sa.column("starts_at")),
                           name="expires_after_start"),
        sa.Index(None, "customer_id", "starts_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[str] = mapped_column(sa.String(64))
    channel: Mapped[str | None] = mapped_column(sa.String(16))  # NULL: every channel
    reason: Mapped[str] = mapped_column(sa.String(256))
    starts_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime | None]                     # NULL: until lifted
    created_by: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    lifted_at: Mapped[dt.datetime | None]
    lifted_by: Mapped[str | None] = mapped_column(sa.String(64))
    lift_reason: Mapped[str | None] = mapped_column(sa.Text)


class Task(Base):
    """A relationship manager's task (客户经理任务): call or meet one customer, with a script."""

    __tablename__ = "tasks"
    __table_args__ = (
        one_of("status", TASK_STATUSES, "status"),
        sa.Index(None, "rm_id", "status", "due_on"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    rm_id: Mapped[str] = mapped_column(sa.String(64))
    customer_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    dispatch_id: Mapped[int | None] = mapped_column(sa.ForeignKey("dispatches.id", ondelete="RESTRICT"), unique=True)
    strategy_id: Mapped[str | None] = mapped_column(sa.String(64))
    wave: Mapped[str | None] = mapped_column(sa.String(64))
    title: Mapped[str] = mapped_column(sa.String(200))
    script: Mapped[str | None] = mapped_column(sa.Text)
    priority: Mapped[int] = mapped_column(default=0)
    due_on: Mapped[dt.date] = mapped_column(sa.Date)
    status: Mapped[str] = mapped_column(sa.String(16), default="open")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    started_at: Mapped[dt.datetime | None]
    completed_at: Mapped[dt.datetime | None]
    note: Mapped[str | None] = mapped_column(sa.Text)

    dispatch: Mapped[Dispatch | None] = relationship()


class AuditEntry(Base):
    """One line of the append-only audit log: who did what to which thing, when, and why."""

    __tablename__ = "audit_log"
    __table_args__ = (sa.Index(None, "target_type", "target_id"), sa.Index(None, "at"))

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(sa.String(64))
    action: Mapped[str] = mapped_column(sa.String(64))
    target_type: Mapped[str | None] = mapped_column(sa.String(32))
    target_id: Mapped[str | None] = mapped_column(sa.String(128))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    details: Mapped[dict[str, Any] | None]


class IdempotencyKey(Base):
    """A request already handled (an import file, an API call): replaying it returns the first result."""

    __tablename__ = "idempotency_keys"

    scope: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    request_hash: Mapped[str | None] = mapped_column(sa.String(64))
    result: Mapped[dict[str, Any] | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


@sa.event.listens_for(AuditEntry, "before_update")
@sa.event.listens_for(AuditEntry, "before_delete")
def _audit_is_append_only(mapper, connection, target) -> None:
    # the database refuses too (triggers in the initial migration); this names the mistake earlier
    raise DataError(f"audit entry {target.id} cannot be changed or deleted: the audit log is append-only",
                    hint="record a new entry that corrects or annuls the earlier one")
