"""Delivery semantics: outbox statuses ``sending`` and ``unknown``; a claim records its owner.

Revision ID: 0003_delivery
Revises: 0005_audit_chain

- ``sending``: committed just before an item is handed to its provider, so a crash between the request
  and its record is seen afterwards (and not re-sent to a provider that does not de-duplicate);
- ``unknown``: the provider may or may not have the message (``unknown_since``, ``unknown_reason``);
- ``claim_host``, ``claim_pid``, ``claim_started``: the dispatcher process holding a claim, so claims of a
  process that is gone on this host are taken back at once instead of after the lease.

Downgrading turns ``sending`` items back into ``claimed`` (the lease returns them) and ``unknown`` ones
into ``failed`` with their reason, since the older schema has neither status.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_delivery"
down_revision: str | None = "0005_audit_chain"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = "status IN ('pending', 'claimed', 'sent', 'failed', 'blocked', 'cancelled', 'held')"   # as 0004_approvals left it
NEW = ("status IN ('pending', 'claimed', 'sending', 'sent', 'failed', 'blocked', 'cancelled', 'held', "
       "'unknown')")


def upgrade() -> None:
    with op.batch_alter_table("dispatches") as batch:
        batch.drop_constraint(op.f("ck_dispatches_status"), type_="check")
        batch.create_check_constraint("status", sa.text(NEW))
        batch.add_column(sa.Column("claim_host", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("claim_pid", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("claim_started", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("unknown_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("unknown_reason", sa.String(length=512), nullable=True))


def downgrade() -> None:
    dispatches = sa.table("dispatches", sa.column("status", sa.String), sa.column("last_error", sa.Text),
                          sa.column("unknown_reason", sa.String))
    op.execute(dispatches.update().where(dispatches.c.status == "sending").values(status="claimed"))
    op.execute(dispatches.update().where(dispatches.c.status == "unknown")
               .values(status="failed", last_error=sa.func.coalesce(dispatches.c.unknown_reason, "outcome unknown")))
    with op.batch_alter_table("dispatches") as batch:
        batch.drop_column("unknown_reason")
        batch.drop_column("unknown_since")
        batch.drop_column("claim_started")
        batch.drop_column("claim_pid")
        batch.drop_column("claim_host")
        batch.drop_constraint(op.f("ck_dispatches_status"), type_="check")
        batch.create_check_constraint("status", sa.text(OLD))
