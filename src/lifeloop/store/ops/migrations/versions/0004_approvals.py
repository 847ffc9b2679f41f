"""Approvals (双人复核) and inbound replies: the ``approvals`` and ``inbound_replies`` tables, and the outbox
status ``held`` (an item that waits for a second person's approval and is never claimed until released).

Revision ID: 0004_approvals
Revises: 0001

Written out in full, like every revision. On SQLite the status constraint of ``dispatches`` is changed by
Alembic's batch mode (copy-and-move); on PostgreSQL by dropping and re-adding the constraint.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004_approvals'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES_BEFORE = "status IN ('pending', 'claimed', 'sent', 'failed', 'blocked', 'cancelled')"
STATUSES_AFTER = "status IN ('pending', 'claimed', 'sent', 'failed', 'blocked', 'cancelled', 'held')"


def upgrade() -> None:
    op.create_table('approvals',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('scope', sa.String(length=64), nullable=False),
    sa.Column('contacts', sa.Integer(), nullable=False),
    sa.Column('threshold', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('requested_by', sa.String(length=64), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=64), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.CheckConstraint("kind IN ('strategy_volume', 'day_volume', 'unmasked_export')", name=op.f('ck_approvals_kind')),
    sa.CheckConstraint("status IN ('pending', 'approved', 'rejected')", name=op.f('ck_approvals_status')),
    sa.CheckConstraint('decided_by IS NULL OR decided_by != requested_by', name=op.f('ck_approvals_four_eyes')),
    sa.CheckConstraint("status = 'pending' OR decided_by IS NOT NULL", name=op.f('ck_approvals_decided_by_someone')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_approvals'))
    )
    op.create_index(op.f('ix_approvals_as_of_status'), 'approvals', ['as_of', 'status'], unique=False)

    op.create_table('inbound_replies',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=True),
    sa.Column('mobile', sa.String(length=32), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('consent_change_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('source_ref', sa.String(length=256), nullable=True),
    sa.Column('idempotency_key', sa.String(length=128), nullable=False),
    sa.CheckConstraint("channel IN ('sms', 'push', 'email', 'call', 'rm', 'wechat', 'branch')",
                       name=op.f('ck_inbound_replies_channel')),
    sa.CheckConstraint("outcome IN ('opted_out', 'review', 'unmatched')", name=op.f('ck_inbound_replies_outcome')),
    sa.ForeignKeyConstraint(['consent_change_id'], ['consent_changes.id'],
                            name=op.f('fk_inbound_replies_consent_change_id_consent_changes'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_replies')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_inbound_replies_idempotency_key'))
    )
    op.create_index(op.f('ix_inbound_replies_customer_id'), 'inbound_replies', ['customer_id'], unique=False)
    op.create_index(op.f('ix_inbound_replies_outcome_received_at'), 'inbound_replies', ['outcome', 'received_at'],
                    unique=False)

    with op.batch_alter_table('dispatches') as batch:
        batch.drop_constraint(op.f('ck_dispatches_status'), type_='check')
        batch.create_check_constraint(op.f('ck_dispatches_status'), sa.text(STATUSES_AFTER))


def downgrade() -> None:
    # a held item has no place in the older schema: it was never sent, so it is withdrawn
    op.execute("UPDATE dispatches SET status = 'cancelled', blocked_reason = 'held for approval when the schema "
               "was downgraded' WHERE status = 'held'")
    with op.batch_alter_table('dispatches') as batch:
        batch.drop_constraint(op.f('ck_dispatches_status'), type_='check')
        batch.create_check_constraint(op.f('ck_dispatches_status'), sa.text(STATUSES_BEFORE))
    op.drop_index(op.f('ix_inbound_replies_outcome_received_at'), table_name='inbound_replies')
    op.drop_index(op.f('ix_inbound_replies_customer_id'), table_name='inbound_replies')
    op.drop_table('inbound_replies')
    op.drop_index(op.f('ix_approvals_as_of_status'), table_name='approvals')
    op.drop_table('approvals')
