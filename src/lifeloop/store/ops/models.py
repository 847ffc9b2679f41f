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
from lifeloop.store.ops.encrypted import EncryptedJSON, EncryptedText, blind_index, normalise_phone
from lifeloop.store.ops.types import Money, UtcDateTime, one_of, utcnow

# stable constraint names, so later migrations (and SQLite batch mode) can address them
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Outbox life of a dispatch: pending -> claimed -> sending -> sent | pending (retry) | failed (gave up)
# | unknown (the provider may or may not have it, and does not de-duplicate: reconciled or resolved by a
# person, never re-sent blindly); blocked: the dispatch-time check stopped it; cancelled: withdrawn by a
# person; held: waits for a second person's approval (a big send, an unmasked export) — never claimed until released.
DISPATCH_STATUSES = ("pending", "claimed", "sending", "sent", "failed", "blocked", "cancelled", "held", "unknown")
# Outcomes a relationship manager, call centre or provider reports for one contact (营销表单).
OUTCOMES = ("reached", "no_answer", "interested", "purchased", "refused", "referral")
TASK_STATUSES = ("open", "in_progress", "done", "cancelled", "expired")
LEAD_STATUSES = ("new", "contacted", "converted", "closed")
ALL_CHANNELS = "*"  # a consent change for every channel of a purpose
# What needs a second person (双人复核): a strategy's day above its size, the whole day above its size, or a
# file export that shows personal data unmasked to its recipient.
APPROVAL_KINDS = ("strategy_volume", "day_volume", "unmasked_export")
APPROVAL_STATUSES = ("pending", "approved", "rejected")
# What became of an inbound reply (短信回复): an opt-out applied, kept for a person to read, or no customer found.
REPLY_OUTCOMES = ("opted_out", "review", "unmatched")

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
    # what the channel adapter needs (rendered script, variables); may hold personal data: encrypted
    payload: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON("dispatches.payload"))
    unit_cost: Mapped[Decimal | None]
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=5)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(sa.String(64))
    claim_token: Mapped[str | None] = mapped_column(sa.String(32))
    claim_expires_at: Mapped[dt.datetime | None]
    # the claim's owner: a dispatcher process (host, pid, process start), so a dead one's claims come back at once
    claim_host: Mapped[str | None] = mapped_column(sa.String(64))
    claim_pid: Mapped[int | None]
    claim_started: Mapped[dt.datetime | None]
    # why and since when the outcome of a send is unknown (kept after it is reconciled or resolved)
    unknown_since: Mapped[dt.datetime | None]
    unknown_reason: Mapped[str | None] = mapped_column(sa.String(512))
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
    name: Mapped[str] = mapped_column(EncryptedText("leads.name", sa.String(128)))  # C2: encrypted
    phone: Mapped[str | None] = mapped_column(EncryptedText("leads.phone", sa.String(32)))  # C2: encrypted
    phone_hash: Mapped[str | None] = mapped_column(sa.String(64), index=True)  # blind index of phone
    referred_by_customer_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    rm_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    note: Mapped[str | None] = mapped_column(EncryptedText("leads.note"))
    status: Mapped[str] = mapped_column(sa.String(16), default="new")
    converted_customer_id: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # a referral to another product line (转介: e.g. insurance, loans) names it; null: the referring RM's own line
    product_line: Mapped[str | None] = mapped_column(sa.String(64))


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
    note: Mapped[str | None] = mapped_column(EncryptedText("feedback.note"))   # free text about a person
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
    script: Mapped[str | None] = mapped_column(EncryptedText("tasks.script"))   # rendered: may name the customer
    priority: Mapped[int] = mapped_column(default=0)
    due_on: Mapped[dt.date] = mapped_column(sa.Date)
    status: Mapped[str] = mapped_column(sa.String(16), default="open")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    started_at: Mapped[dt.datetime | None]
    completed_at: Mapped[dt.datetime | None]
    note: Mapped[str | None] = mapped_column(EncryptedText("tasks.note"))

    dispatch: Mapped[Dispatch | None] = relationship()


AUDIT_RESULTS = ("ok", "refused", "failed")


class AuditEntry(Base):
    """One line of the append-only audit log: who did what to which thing, when, where, why, with what result.

    ``entry_hash`` is the sha256 of the entry's canonical JSON and ``prev_hash`` (the previous entry's
    hash): a hash chain that ``lifeloop audit verify`` walks (:mod:`lifeloop.store.ops.audit`).
    """

    __tablename__ = "audit_log"
    __table_args__ = (sa.Index(None, "target_type", "target_id"), sa.Index(None, "at"),
                      one_of("result", AUDIT_RESULTS, "result"))

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(sa.String(64))
    action: Mapped[str] = mapped_column(sa.String(64))
    target_type: Mapped[str | None] = mapped_column(sa.String(32))
    target_id: Mapped[str | None] = mapped_column(sa.String(128))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    details: Mapped[dict[str, Any] | None]
    host: Mapped[str | None] = mapped_column(sa.String(128))      # where: the machine
    client: Mapped[str | None] = mapped_column(sa.String(128))    # where: the process or the client's address
    result: Mapped[str] = mapped_column(sa.String(16), default="ok", server_default="ok")
    prev_hash: Mapped[str | None] = mapped_column(sa.String(64))
    entry_hash: Mapped[str | None] = mapped_column(sa.String(64))


class AuditHead(Base):
    """The audit chain's last entry (one row). Appends update it first: that serialises them.

    Derived state, never trusted: ``verify`` recomputes the chain and only reports a head that disagrees.
    """

    __tablename__ = "audit_head"
    __table_args__ = (sa.CheckConstraint(sa.column("id") == 1, name="one_row"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    last_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    last_hash: Mapped[str] = mapped_column(sa.String(64))
    appends: Mapped[int] = mapped_column(sa.BigInteger)


class AuditArchive(Base):
    """An anchor of pruned audit entries: everything up to ``last_id`` was exported to an archive, then deleted.

    The chain stays verifiable from here: the first remaining entry's ``prev_hash`` is ``last_hash``.
    """

    __tablename__ = "audit_archives"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_id: Mapped[int] = mapped_column(sa.BigInteger)
    last_hash: Mapped[str] = mapped_column(sa.String(64))
    before: Mapped[dt.datetime]
    entries: Mapped[int]
    archive_name: Mapped[str] = mapped_column(sa.String(256))
    archive_sha256: Mapped[str] = mapped_column(sa.String(64))
    pruned_by: Mapped[str] = mapped_column(sa.String(64))


class Approval(Base):
    """A request for a second person's approval of a day's send (or an unmasked export), and its decision.

    ``scope`` is the strategy (``strategy_volume``), ``*`` (``day_volume``) or the channel (``unmasked_export``).
    The outbox items it covers wait in status ``held``; approving releases them, rejecting cancels them.
    The database itself refuses a decision by the requester (four eyes).
    """

    __tablename__ = "approvals"
    __table_args__ = (
        one_of("kind", APPROVAL_KINDS, "kind"),
        one_of("status", APPROVAL_STATUSES, "status"),
        sa.CheckConstraint(sa.or_(sa.column("decided_by").is_(None),
                                  sa.column("decided_by") != sa.column("requested_by")),
                           name="four_eyes"),
        sa.CheckConstraint(sa.or_(sa.column("status") == "pending", sa.column("decided_by").is_not(None)),
                           name="decided_by_someone"),
        sa.Index(None, "as_of", "status"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    as_of: Mapped[dt.date] = mapped_column(sa.Date)
    kind: Mapped[str] = mapped_column(sa.String(24))
    scope: Mapped[str] = mapped_column(sa.String(64))
    contacts: Mapped[int]                                   # how many contacts the request is for
    threshold: Mapped[int | None]                           # the configured size it exceeds (None: an export)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    requested_by: Mapped[str] = mapped_column(sa.String(64))
    requested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(sa.String(64))
    decided_at: Mapped[dt.datetime | None]
    reason: Mapped[str | None] = mapped_column(sa.Text)    # the decision's reason
    details: Mapped[dict[str, Any] | None]


class InboundReply(Base):
    """A customer's reply on a channel (an SMS "TD" / "退订"), kept whatever became of it."""

    __tablename__ = "inbound_replies"
    __table_args__ = (
        one_of("outcome", REPLY_OUTCOMES, "outcome"),
        one_of("channel", CONTACT_CHANNELS, "channel"),
        sa.Index(None, "outcome", "received_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel: Mapped[str] = mapped_column(sa.String(16), default="sms")
    customer_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    mobile: Mapped[str | None] = mapped_column(EncryptedText("inbound_replies.mobile", sa.String(32)))   # C2: encrypted
    mobile_hash: Mapped[str | None] = mapped_column(sa.String(64), index=True)  # blind index of the mobile
    text: Mapped[str] = mapped_column(EncryptedText("inbound_replies.text"))   # the customer's own words
    received_at: Mapped[dt.datetime]
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    outcome: Mapped[str] = mapped_column(sa.String(16))
    note: Mapped[str | None] = mapped_column(sa.Text)                  # why it was not applied
    consent_change_id: Mapped[int | None] = mapped_column(sa.ForeignKey("consent_changes.id", ondelete="RESTRICT"))
    source: Mapped[str] = mapped_column(sa.String(16))                 # file, webhook
    source_ref: Mapped[str | None] = mapped_column(sa.String(256))
    idempotency_key: Mapped[str] = mapped_column(sa.String(128), unique=True)


# The customer's rights (PIPL Arts. 24, 47; 算法推荐管理规定 Art. 17): see lifeloop.store.ops.rights.
RIGHTS_REQUEST_KINDS = ("delete_tags", "purge")
RIGHTS_REQUEST_STATUSES = ("pending", "applied")
SUPPRESSION_KINDS = ("customer_id", "id_number", "mobile")


class PersonalisationChange(Base):
    """A customer opted out of personalised marketing (个性化推荐退出), or back in: history, never overwritten.

    The latest change effective at a time wins. An opted-out customer gets only strategies declared
    ``personalised: false``; the plan drops them from the others and the send-time gate blocks them.
    """

    __tablename__ = "personalisation_changes"
    __table_args__ = (sa.Index(None, "customer_id", "effective_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[str] = mapped_column(sa.String(64))
    opted_out: Mapped[bool]
    effective_at: Mapped[dt.datetime]
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(sa.String(32))     # customer, rm, branch, app, complaint, ...
    recorded_by: Mapped[str] = mapped_column(sa.String(64))
    reason: Mapped[str] = mapped_column(sa.Text)


class RightsRequest(Base):
    """A customer's request that the bank acts on their data: delete their derived tags, or purge them.

    ``delete_tags`` is honoured from the next run (derived snapshots leave the customer out) and in retained
    snapshots when ``apply-retention`` rewrites them (then ``applied``). ``purge`` is applied at once; its
    ``customer_id`` is then replaced by the keyed hash (``purged:<hmac>``).
    """

    __tablename__ = "rights_requests"
    __table_args__ = (
        one_of("kind", RIGHTS_REQUEST_KINDS, "kind"),
        one_of("status", RIGHTS_REQUEST_STATUSES, "status"),
        sa.Index(None, "customer_id", "kind"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[str] = mapped_column(sa.String(80))
    kind: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    reason: Mapped[str] = mapped_column(sa.Text)
    requested_by: Mapped[str] = mapped_column(sa.String(64))
    requested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    applied_by: Mapped[str | None] = mapped_column(sa.String(64))
    applied_at: Mapped[dt.datetime | None]
    details: Mapped[dict[str, Any] | None]


class Suppression(Base):
    """A purged person, kept only as keyed hashes (HMAC-SHA256) of their customer id, ID number and mobile.

    A later ingest that brings them back is matched against these, and the matched customers are kept out
    of marketing (:class:`MarketingSuppressed`). Nothing here can be turned back into the person.
    """

    __tablename__ = "suppressions"
    __table_args__ = (one_of("kind", SUPPRESSION_KINDS, "kind"), sa.UniqueConstraint("kind", "digest"))

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    digest: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    request_id: Mapped[int | None] = mapped_column(sa.ForeignKey("rights_requests.id", ondelete="RESTRICT"))


class MarketingSuppressed(Base):
    """A customer of an ingested batch who matches a suppression record: never a marketing contact."""

    __tablename__ = "marketing_suppressed"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    customer_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    matched_on: Mapped[str] = mapped_column(sa.String(64))     # which hashes matched: customer_id,id_number,...
    batch_as_of: Mapped[dt.date] = mapped_column(sa.Date)      # the ingest batch that brought them back
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class IdempotencyKey(Base):
    """A request already handled (an import file, an API call): replaying it returns the first result."""

    __tablename__ = "idempotency_keys"

    scope: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    request_hash: Mapped[str | None] = mapped_column(sa.String(64))
    result: Mapped[dict[str, Any] | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


@sa.event.listens_for(Lead, "before_insert")
@sa.event.listens_for(Lead, "before_update")
def _lead_blind_index(mapper, connection, target) -> None:
    target.phone_hash = blind_index(connection.dialect, "leads.phone", target.phone, normalise_phone)


@sa.event.listens_for(InboundReply, "before_insert")
@sa.event.listens_for(InboundReply, "before_update")
def _reply_blind_index(mapper, connection, target) -> None:
    target.mobile_hash = blind_index(connection.dialect, "inbound_replies.mobile", target.mobile, normalise_phone)


@sa.event.listens_for(AuditEntry, "before_update")
@sa.event.listens_for(AuditEntry, "before_delete")
@sa.event.listens_for(AuditArchive, "before_update")
@sa.event.listens_for(AuditArchive, "before_delete")
def _audit_is_append_only(mapper, connection, target) -> None:
    # the database refuses too (triggers in the initial migration); this names the mistake earlier
    raise DataError(f"audit entry {target.id} cannot be changed or deleted: the audit log is append-only",
                    hint="record a new entry that corrects or annuls the earlier one")


# Who may sign in and what they may do (data/access.py holds the role -> permission matrix and the scopes).
ROLE_NAMES = ("admin", "analyst", "compliance", "branch_manager", "rm", "approver")


class User(Base):
    """A Lifeloop user: signs in with a token (only its scrypt hash is kept) or as a mapped OS user."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)          # the name audit entries carry
    display_name: Mapped[str] = mapped_column(sa.String(200))
    active: Mapped[bool] = mapped_column(default=True)
    secret_hash: Mapped[str] = mapped_column(sa.String(256))                  # scrypt$n$r$p$salt$hash, never the token
    os_user: Mapped[str | None] = mapped_column(sa.String(64), unique=True)  # sign in as this OS user (if enabled)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    created_by: Mapped[str] = mapped_column(sa.String(64))
    # the web sign-in (lifeloop.web): an argon2id hash of the password, never the password; lock-out state
    password_hash: Mapped[str | None] = mapped_column(sa.String(256))
    failed_sign_ins: Mapped[int] = mapped_column(default=0, server_default="0")
    locked_until: Mapped[dt.datetime | None]

    grants: Mapped[list[RoleGrant]] = relationship(back_populates="user", order_by="RoleGrant.id")


class WebSession(Base):
    """A signed-in browser (lifeloop.web): only the SHA-256 of the session id is kept; revocable, idle-timed."""

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None]
    revoked_why: Mapped[str | None] = mapped_column(sa.String(32))   # sign_out, idle, disabled, admin


class RoleGrant(Base):
    """One role a user holds; ``scope`` is the branch (branch_manager) or the RM id (rm), else ''."""

    __tablename__ = "role_grants"
    __table_args__ = (
        one_of("role", ROLE_NAMES, "role"),
        sa.CheckConstraint(sa.or_(sa.and_(sa.column("role").in_(("rm", "branch_manager")), sa.column("scope") != ""),
                                  sa.and_(sa.column("role").not_in(("rm", "branch_manager")),
                                          sa.column("scope") == "")),
                           name="scope_fits_role"),
        sa.UniqueConstraint("user_id", "role", "scope"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    role: Mapped[str] = mapped_column(sa.String(16))
    scope: Mapped[str] = mapped_column(sa.String(64), default="")
    granted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    granted_by: Mapped[str] = mapped_column(sa.String(64))

    user: Mapped[User] = relationship(back_populates="grants")


class UnmaskGrant(Base):
    """A time-limited permission to see some of one customer's personal fields unmasked, for a reason."""

    __tablename__ = "unmask_grants"
    __table_args__ = (
        sa.CheckConstraint(sa.column("expires_at") > sa.column("granted_at"), name="ends_after_it_starts"),
        sa.Index(None, "user_id", "customer_id", "expires_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[str] = mapped_column(sa.String(64))      # a user, or a system principal (system:<name>)
    customer_id: Mapped[str] = mapped_column(sa.String(64))
    fields: Mapped[str] = mapped_column(sa.String(200))       # comma-separated customers columns, e.g. id_number
    reason: Mapped[str] = mapped_column(sa.Text)
    granted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
# Real-time moments of truth (关键时刻, docs/realtime.md): what an event source sent, which moments fired, and
# what was decided for each strategy whose scene is that moment.
EVENT_KINDS = ("transaction", "app", "card_swipe", "core_notice")
MOMENT_OUTCOMES = ("treated", "control", "suppressed", "not_in_audience", "unsuitable", "no_snapshot", "inactive")


class Event(Base):
    """One event as its source sent it, validated; stored once per ``event_id`` (intake is idempotent on it).

    Committed before the source is told it was accepted. ``decided_at`` is set once the detectors and the
    decision have run over it (NULL: still to decide — a restart picks it up).
    """

    __tablename__ = "events"
    __table_args__ = (
        one_of("kind", EVENT_KINDS, "kind"),
        sa.Index(None, "customer_id", "kind", "occurred_at"),
        sa.Index(None, "decided_at", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.String(128), unique=True)
    source: Mapped[str] = mapped_column(sa.String(64))
    kind: Mapped[str] = mapped_column(sa.String(16))
    customer_id: Mapped[str] = mapped_column(sa.String(64))
    occurred_at: Mapped[dt.datetime]
    local_date: Mapped[dt.date] = mapped_column(sa.Date)     # the bank's local date of occurred_at
    body: Mapped[dict[str, Any]]                              # the validated event (may hold personal data)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[dt.datetime | None]


class Moment(Base):
    """A moment of truth that fired (a detector's trigger), once per ``moment_key`` whatever the events' order."""

    __tablename__ = "moments"
    __table_args__ = (sa.Index(None, "customer_id", "detector", "local_date"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    moment_key: Mapped[str] = mapped_column(sa.String(64), unique=True)
    detector: Mapped[str] = mapped_column(sa.String(64))
    customer_id: Mapped[str] = mapped_column(sa.String(64))
    local_date: Mapped[dt.date] = mapped_column(sa.Date)
    scope: Mapped[str] = mapped_column(sa.String(128), default="")   # e.g. the product viewed, the card swiped
    event_id: Mapped[str | None] = mapped_column(sa.String(128))     # the event that made it fire (none: a timer)
    occurred_at: Mapped[dt.datetime]                                  # entry time for the review: the event's time
    reason: Mapped[str] = mapped_column(sa.String(512))
    fired_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class MomentDecision(Base):
    """What was decided for one strategy on one moment, and why (``lifeloop why`` and the review read it)."""

    __tablename__ = "moment_decisions"
    __table_args__ = (
        one_of("outcome", MOMENT_OUTCOMES, "outcome"),
        sa.UniqueConstraint("moment_key", "strategy_id"),
        sa.Index(None, "customer_id", "strategy_id", "entered_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    moment_key: Mapped[str] = mapped_column(sa.String(64))
    customer_id: Mapped[str] = mapped_column(sa.String(64))
    strategy_id: Mapped[str] = mapped_column(sa.String(64))
    outcome: Mapped[str] = mapped_column(sa.String(16))
    reason: Mapped[str] = mapped_column(sa.String(512))
    entered_at: Mapped[dt.datetime]                       # the event's time (treated and control enter then)
    wave: Mapped[str | None] = mapped_column(sa.String(64))
    channel: Mapped[str | None] = mapped_column(sa.String(16))
    dispatch_key: Mapped[str | None] = mapped_column(sa.String(128))   # the outbox item (treated and control)
    decided_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Timer(Base):
    """A moment set ahead by the daily batch (到期前后: maturity - 7, - 1, + 1), firing once on its local date."""

    __tablename__ = "timers"
    __table_args__ = (
        one_of("status", ("pending", "fired", "missed"), "status"),
        sa.Index(None, "status", "fire_on"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    timer_key: Mapped[str] = mapped_column(sa.String(64), unique=True)   # the moment key it fires
    moment: Mapped[str] = mapped_column(sa.String(64))
    customer_id: Mapped[str] = mapped_column(sa.String(64))
    scope: Mapped[str] = mapped_column(sa.String(128))                   # account and offset
    fire_on: Mapped[dt.date] = mapped_column(sa.Date)                    # the bank's local date
    reason: Mapped[str] = mapped_column(sa.String(512))
    status: Mapped[str] = mapped_column(sa.String(8), default="pending")
    set_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    fired_at: Mapped[dt.datetime | None]


# Questions and feedback to a strategy's owner (营销人员问题反馈与沟通): an RM (or a branch manager) asks about a
# strategy, head office answers, in one thread per question.
THREAD_STATUSES = ("open", "answered", "closed")


class StrategyThread(Base):
    """A question about a strategy, asked by an RM or branch manager; its posts are the conversation.

    ``rm_id`` and ``branch_id`` are the asker's book and branch when they asked: who else may read it (their
    branch manager, head office) is decided on them. ``customer_id``: the customer the question is about, if any
    (one of the asker's own)."""

    __tablename__ = "strategy_threads"
    __table_args__ = (
        one_of("status", THREAD_STATUSES, "status"),
        sa.Index(None, "strategy_id", "updated_at"),
        sa.Index(None, "branch_id", "rm_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    strategy_id: Mapped[str] = mapped_column(sa.String(64))
    subject: Mapped[str] = mapped_column(sa.String(200))
    asked_by: Mapped[str] = mapped_column(sa.String(64))
    rm_id: Mapped[str | None] = mapped_column(sa.String(64))
    branch_id: Mapped[str | None] = mapped_column(sa.String(64))
    customer_id: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16), default="open")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    posts: Mapped[list[StrategyThreadPost]] = relationship(back_populates="thread", order_by="StrategyThreadPost.id")


class StrategyThreadPost(Base):
    """One message of a thread: the question, a reply from head office, a follow-up by the asker."""

    __tablename__ = "strategy_thread_posts"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    thread_id: Mapped[int] = mapped_column(sa.ForeignKey("strategy_threads.id", ondelete="RESTRICT"), index=True)
    author: Mapped[str] = mapped_column(sa.String(64))
    body: Mapped[str] = mapped_column(EncryptedText("strategy_thread_posts.body"))   # free text: may name a person
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    thread: Mapped[StrategyThread] = relationship(back_populates="posts")
# Strategy versions (策略版本, maker-checker 双人复核; docs/strategies.md "Versions"): draft -> submitted ->
# approved | rejected; an approved version a later approved revert rolled back becomes reverted.
STRATEGY_VERSION_STATUSES = ("draft", "submitted", "approved", "rejected", "reverted")


class StrategyVersion(Base):
    """One version of one strategy (a head-office version, or a branch's variant when ``branch_id`` is set).

    ``definition`` is the strategy's full YAML text as its author wrote it; ``version`` counts per strategy
    across head office and branches (``approve S 4`` names one row); ``base_version`` is the version it was
    drafted from (0: config/strategies.yaml); ``reverts_version`` the one a revert copies. The database itself
    refuses a decision by the author (four eyes) and a decided version without its checker."""

    __tablename__ = "strategy_versions"
    __table_args__ = (
        one_of("status", STRATEGY_VERSION_STATUSES, "status"),
        sa.CheckConstraint(sa.or_(sa.column("decided_by").is_(None), sa.column("decided_by") != sa.column("author")),
                           name="four_eyes"),
        sa.CheckConstraint(sa.or_(sa.column("status").in_(("draft", "submitted")),
                                  sa.column("decided_by").is_not(None)), name="decided_by_someone"),
        sa.UniqueConstraint("strategy_id", "version"),
        sa.Index(None, "status", "strategy_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    strategy_id: Mapped[str] = mapped_column(sa.String(64))
    version: Mapped[int]
    branch_id: Mapped[str | None] = mapped_column(sa.String(64))        # None: head office's own version
    status: Mapped[str] = mapped_column(sa.String(16), default="draft")
    definition: Mapped[str] = mapped_column(sa.Text)                    # the strategy as YAML text
    base_version: Mapped[int | None]
    reverts_version: Mapped[int | None]
    author: Mapped[str] = mapped_column(sa.String(64))
    note: Mapped[str | None] = mapped_column(sa.Text)                   # the author's why
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    submitted_at: Mapped[dt.datetime | None]
    decided_by: Mapped[str | None] = mapped_column(sa.String(64))       # the checker (approver)
    decided_at: Mapped[dt.datetime | None]
    comment: Mapped[str | None] = mapped_column(sa.Text)                # the checker's comment


