"""Real-time moments of truth: the ``events``, ``moments``, ``moment_decisions`` and ``timers`` tables.

Revision ID: 0009_events
Revises: 0006_principals

``events``: what an event source sent, once per ``event_id`` (the unique constraint makes intake idempotent
under concurrency on SQLite and PostgreSQL alike); ``moments``: a detector's trigger, once per moment key;
``moment_decisions``: per moment and strategy, what was decided and why; ``timers``: moments set ahead by the
daily batch (maturity - 7 / - 1 / + 1 days), fired once on their local date (docs/realtime.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_events"
down_revision: str | None = "0006_principals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
KINDS = "kind IN ('transaction', 'app', 'card_swipe', 'core_notice')"
OUTCOMES = ("outcome IN ('treated', 'control', 'suppressed', 'not_in_audience', 'unsuitable', 'no_snapshot', "
            "'inactive')")


def upgrade() -> None:
    op.create_table("events",
    sa.Column("id", ID, nullable=False),
    sa.Column("event_id", sa.String(length=128), nullable=False),
    sa.Column("source", sa.String(length=64), nullable=False),
    sa.Column("kind", sa.String(length=16), nullable=False),
    sa.Column("customer_id", sa.String(length=64), nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("local_date", sa.Date(), nullable=False),
    sa.Column("body", sa.JSON(), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint(KINDS, name=op.f("ck_events_kind")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    sa.UniqueConstraint("event_id", name=op.f("uq_events_event_id")),
    )
    op.create_index(op.f("ix_events_customer_id_kind_occurred_at"), "events", ["customer_id", "kind", "occurred_at"],
                    unique=False)
    op.create_index(op.f("ix_events_decided_at_id"), "events", ["decided_at", "id"], unique=False)
    op.create_table("moments",
    sa.Column("id", ID, nullable=False),
    sa.Column("moment_key", sa.String(length=64), nullable=False),
    sa.Column("detector", sa.String(length=64), nullable=False),
    sa.Column("customer_id", sa.String(length=64), nullable=False),
    sa.Column("local_date", sa.Date(), nullable=False),
    sa.Column("scope", sa.String(length=128), nullable=False),
    sa.Column("event_id", sa.String(length=128), nullable=True),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reason", sa.String(length=512), nullable=False),
    sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_moments")),
    sa.UniqueConstraint("moment_key", name=op.f("uq_moments_moment_key")),
    )
    op.create_index(op.f("ix_moments_customer_id_detector_local_date"), "moments",
                    ["customer_id", "detector", "local_date"], unique=False)
    op.create_table("moment_decisions",
    sa.Column("id", ID, nullable=False),
    sa.Column("moment_key", sa.String(length=64), nullable=False),
    sa.Column("customer_id", sa.String(length=64), nullable=False),
    sa.Column("strategy_id", sa.String(length=64), nullable=False),
    sa.Column("outcome", sa.String(length=16), nullable=False),
    sa.Column("reason", sa.String(length=512), nullable=False),
    sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("wave", sa.String(length=64), nullable=True),
    sa.Column("channel", sa.String(length=16), nullable=True),
    sa.Column("dispatch_key", sa.String(length=128), nullable=True),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint(OUTCOMES, name=op.f("ck_moment_decisions_outcome")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_moment_decisions")),
    sa.UniqueConstraint("moment_key", "strategy_id", name=op.f("uq_moment_decisions_moment_key_strategy_id")),
    )
    op.create_index(op.f("ix_moment_decisions_customer_id_strategy_id_entered_at"), "moment_decisions",
                    ["customer_id", "strategy_id", "entered_at"], unique=False)


    op.create_table("timers",
    sa.Column("id", ID, nullable=False),
    sa.Column("timer_key", sa.String(length=64), nullable=False),
    sa.Column("moment", sa.String(length=64), nullable=False),
    sa.Column("customer_id", sa.String(length=64), nullable=False),
    sa.Column("scope", sa.String(length=128), nullable=False),
    sa.Column("fire_on", sa.Date(), nullable=False),
    sa.Column("reason", sa.String(length=512), nullable=False),
    sa.Column("status", sa.String(length=8), nullable=False),
    sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("fired_at", sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'fired', 'missed')", name=op.f("ck_timers_status")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_timers")),
    sa.UniqueConstraint("timer_key", name=op.f("uq_timers_timer_key")),
    )
    op.create_index(op.f("ix_timers_status_fire_on"), "timers", ["status", "fire_on"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_timers_status_fire_on"), table_name="timers")
    op.drop_table("timers")
    op.drop_index(op.f("ix_moment_decisions_customer_id_strategy_id_entered_at"), table_name="moment_decisions")
    op.drop_table("moment_decisions")
    op.drop_index(op.f("ix_moments_customer_id_detector_local_date"), table_name="moments")
    op.drop_table("moments")
    op.drop_index(op.f("ix_events_decided_at_id"), table_name="events")
    op.drop_index(op.f("ix_events_customer_id_kind_occurred_at"), table_name="events")
    op.drop_table("events")
