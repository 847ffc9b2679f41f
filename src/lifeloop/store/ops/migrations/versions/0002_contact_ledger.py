"""The contact ledger (frequency caps at send time) and each contact's validity.

Revision ID: 0002_contact_ledger
Revises: 0001

``contact_ledger``: one row per contact and local day it went out (or is going out) on, reserved by the
send-time gate under a per-customer lock; caps are counted from it. ``dispatches.expires_at``: when a
contact's validity ends (it is never sent after). Contacts already sent or in flight are written into
the ledger on their list's date, so caps count them from the first gated send on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002_contact_ledger'
down_revision: str | None = "0003_delivery"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.add_column('dispatches', sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True))
    ledger = op.create_table('contact_ledger',
    sa.Column('id', ID, nullable=False),
    sa.Column('dispatch_id', ID, nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('strategy_id', sa.String(length=64), nullable=False),
    sa.Column('contact_day', sa.Date(), nullable=False),
    sa.Column('reserved_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reserved_by', sa.String(length=64), nullable=True),
    sa.CheckConstraint("channel IN ('sms', 'push', 'email', 'call', 'rm', 'wechat', 'branch')",
                       name=op.f('ck_contact_ledger_channel')),
    sa.ForeignKeyConstraint(['dispatch_id'], ['dispatches.id'], name=op.f('fk_contact_ledger_dispatch_id_dispatches'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_ledger')),
    sa.UniqueConstraint('dispatch_id', 'contact_day', name=op.f('uq_contact_ledger_dispatch_id_contact_day'))
    )
    op.create_index(op.f('ix_contact_ledger_customer_id_contact_day'), 'contact_ledger', ['customer_id', 'contact_day'],
                    unique=False)
    # what already went out (or may have: in flight) counts, on its list's date
    dispatches = sa.table('dispatches', sa.column('id'), sa.column('customer_id'), sa.column('channel'),
                          sa.column('strategy_id'), sa.column('as_of'), sa.column('status'), sa.column('updated_at'))
    op.execute(ledger.insert().from_select(
        ['dispatch_id', 'customer_id', 'channel', 'strategy_id', 'contact_day', 'reserved_at', 'reserved_by'],
        sa.select(dispatches.c.id, dispatches.c.customer_id, dispatches.c.channel, dispatches.c.strategy_id,
                  dispatches.c.as_of, dispatches.c.updated_at, sa.literal('migration 0002_contact_ledger'))
        .where(dispatches.c.status.in_(('sent', 'claimed')))))


def downgrade() -> None:
    op.drop_index(op.f('ix_contact_ledger_customer_id_contact_day'), table_name='contact_ledger')
    op.drop_table('contact_ledger')
    with op.batch_alter_table('dispatches') as batch:
        batch.drop_column('expires_at')
