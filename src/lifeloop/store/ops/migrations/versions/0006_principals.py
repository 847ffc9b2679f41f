"""Principals: Lifeloop users, their role grants and time-limited unmask grants.

Revision ID: 0006_principals
Revises: 0002_contact_ledger

``users``: who may sign in (a scrypt hash of their token, never the token; optionally the OS user they sign
in as). ``role_grants``: the roles each holds (admin, analyst, compliance, branch_manager of a branch, rm of a
book, approver). ``unmask_grants``: a user may see some of one customer's personal fields unmasked until a
time, for a reason (each grant is also on the audit log). Self-contained: three new tables, nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006_principals'
down_revision: str | None = '0002_contact_ledger'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('users',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('secret_hash', sa.String(length=256), nullable=False),
    sa.Column('os_user', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('os_user', name=op.f('uq_users_os_user'))
    )
    op.create_table('role_grants',
    sa.Column('id', ID, nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('scope', sa.String(length=64), nullable=False),
    sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('granted_by', sa.String(length=64), nullable=False),
    sa.CheckConstraint("role IN ('admin', 'analyst', 'compliance', 'branch_manager', 'rm', 'approver')",
                       name=op.f('ck_role_grants_role')),
    sa.CheckConstraint("role IN ('rm', 'branch_manager') AND scope != '' OR "
                       "(role NOT IN ('rm', 'branch_manager')) AND scope = ''",
                       name=op.f('ck_role_grants_scope_fits_role')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_role_grants_user_id_users'),
                            ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_role_grants')),
    sa.UniqueConstraint('user_id', 'role', 'scope', name=op.f('uq_role_grants_user_id_role_scope'))
    )
    op.create_index(op.f('ix_role_grants_user_id'), 'role_grants', ['user_id'], unique=False)
    op.create_table('unmask_grants',
    sa.Column('id', ID, nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('fields', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('granted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('expires_at > granted_at', name=op.f('ck_unmask_grants_ends_after_it_starts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_unmask_grants'))
    )
    op.create_index(op.f('ix_unmask_grants_user_id_customer_id_expires_at'), 'unmask_grants',
                    ['user_id', 'customer_id', 'expires_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_unmask_grants_user_id_customer_id_expires_at'), table_name='unmask_grants')
    op.drop_table('unmask_grants')
    op.drop_index(op.f('ix_role_grants_user_id'), table_name='role_grants')
    op.drop_table('role_grants')
    op.drop_table('users')
