"""Initial schema: dispatches (contact history and outbox), feedback and leads, consent changes,
do-not-disturb, RM tasks, the append-only audit log, idempotency keys.

Revision ID: 0001
Revises: (none)

Written out in full rather than built from the models, so that later model changes cannot alter what
this revision creates. The audit log gets database triggers that refuse UPDATE and DELETE (and, on
PostgreSQL, TRUNCATE): append-only even for someone with a SQL prompt.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Fixed DDL text (no user input): triggers have no portable construct in SQLAlchemy or sqlglot.
AUDIT_APPEND_ONLY = {
    "sqlite": [
        "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE is not allowed'); END",
        "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE is not allowed'); END",
    ],
    "postgresql": [
        "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION USING MESSAGE = 'audit_log is append-only: ' || TG_OP || ' is not allowed', "
        "ERRCODE = 'insufficient_privilege'; END $$",
        "CREATE TRIGGER audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
    ],
}
AUDIT_APPEND_ONLY_DROP = {
    "sqlite": ["DROP TRIGGER IF EXISTS audit_log_no_update", "DROP TRIGGER IF EXISTS audit_log_no_delete"],
    "postgresql": ["DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log",
                   "DROP TRIGGER IF EXISTS audit_log_no_update_or_delete ON audit_log",
                   "DROP FUNCTION IF EXISTS audit_log_append_only()"],
}


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target_type', sa.String(length=32), nullable=True),
    sa.Column('target_id', sa.String(length=128), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('details', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_index(op.f('ix_audit_log_at'), 'audit_log', ['at'], unique=False)
    op.create_index(op.f('ix_audit_log_target_type_target_id'), 'audit_log', ['target_type', 'target_id'], unique=False)

    op.create_table('consent_changes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('granted', sa.Boolean(), nullable=False),
    sa.Column('effective_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=32), nullable=False),
    sa.Column('recorded_by', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.CheckConstraint("channel IN ('sms', 'push', 'email', 'call', 'rm', 'wechat', 'branch', '*')",
                       name=op.f('ck_consent_changes_channel')),
    sa.CheckConstraint("purpose IN ('marketing', 'service', 'risk')", name=op.f('ck_consent_changes_purpose')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_changes'))
    )
    op.create_index(op.f('ix_consent_changes_customer_id_purpose_effective_at'), 'consent_changes',
                    ['customer_id', 'purpose', 'effective_at'], unique=False)

    op.create_table('dispatches',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('idempotency_key', sa.String(length=128), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('strategy_id', sa.String(length=64), nullable=False),
    sa.Column('wave', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('script_id', sa.String(length=64), nullable=True),
    sa.Column('rm_id', sa.String(length=64), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=True),
    sa.Column('unit_cost', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_by', sa.String(length=64), nullable=True),
    sa.Column('claim_token', sa.String(length=32), nullable=True),
    sa.Column('claim_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('provider_ref', sa.String(length=128), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('blocked_reason', sa.String(length=256), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("channel IN ('sms', 'push', 'email', 'call', 'rm', 'wechat', 'branch')",
                       name=op.f('ck_dispatches_channel')),
    sa.CheckConstraint("purpose IN ('marketing', 'service', 'risk')", name=op.f('ck_dispatches_purpose')),
    sa.CheckConstraint("status IN ('pending', 'claimed', 'sent', 'failed', 'blocked', 'cancelled')",
                       name=op.f('ck_dispatches_status')),
    sa.CheckConstraint('attempts >= 0', name=op.f('ck_dispatches_attempts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dispatches')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_dispatches_idempotency_key'))
    )
    op.create_index(op.f('ix_dispatches_as_of_strategy_id_wave'), 'dispatches', ['as_of', 'strategy_id', 'wave'],
                    unique=False)
    op.create_index(op.f('ix_dispatches_customer_id_created_at'), 'dispatches', ['customer_id', 'created_at'],
                    unique=False)
    op.create_index(op.f('ix_dispatches_status_next_attempt_at'), 'dispatches', ['status', 'next_attempt_at'],
                    unique=False)

    op.create_table('do_not_disturb',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('reason', sa.String(length=256), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lifted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lifted_by', sa.String(length=64), nullable=True),
    sa.Column('lift_reason', sa.Text(), nullable=True),
    sa.CheckConstraint("channel IN ('sms', 'push', 'email', 'call', 'rm', 'wechat', 'branch')",
                       name=op.f('ck_do_not_disturb_channel')),
    sa.CheckConstraint('expires_at IS NULL OR expires_at > starts_at',
                       name=op.f('ck_do_not_disturb_expires_after_start')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_do_not_disturb'))
    )
    op.create_index(op.f('ix_do_not_disturb_customer_id_starts_at'), 'do_not_disturb', ['customer_id', 'starts_at'],
                    unique=False)

    op.create_table('idempotency_keys',
    sa.Column('scope', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=True),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'key', name=op.f('pk_idempotency_keys'))
    )
    op.create_table('leads',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('referred_by_customer_id', sa.String(length=64), nullable=True),
    sa.Column('rm_id', sa.String(length=64), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('converted_customer_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('new', 'contacted', 'converted', 'closed')", name=op.f('ck_leads_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_leads'))
    )
    op.create_index(op.f('ix_leads_referred_by_customer_id'), 'leads', ['referred_by_customer_id'], unique=False)
    op.create_index(op.f('ix_leads_rm_id'), 'leads', ['rm_id'], unique=False)

    op.create_table('feedback',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('dispatch_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_by', sa.String(length=64), nullable=False),
    sa.Column('product_id', sa.String(length=64), nullable=True),
    sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=True),
    sa.Column('referred_lead_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('source_ref', sa.String(length=256), nullable=True),
    sa.Column('idempotency_key', sa.String(length=128), nullable=True),
    sa.CheckConstraint("channel IN ('sms', 'push', 'email', 'call', 'rm', 'wechat', 'branch')",
                       name=op.f('ck_feedback_channel')),
    sa.CheckConstraint("outcome != 'referral' OR referred_lead_id IS NOT NULL",
                       name=op.f('ck_feedback_referral_names_lead')),
    sa.CheckConstraint("outcome = 'referral' OR referred_lead_id IS NULL",
                       name=op.f('ck_feedback_lead_only_on_referral')),
    sa.CheckConstraint("outcome IN ('reached', 'no_answer', 'interested', 'purchased', 'refused', 'referral')",
                       name=op.f('ck_feedback_outcome')),
    sa.ForeignKeyConstraint(['dispatch_id'], ['dispatches.id'], name=op.f('fk_feedback_dispatch_id_dispatches'),
                            ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['referred_lead_id'], ['leads.id'], name=op.f('fk_feedback_referred_lead_id_leads'),
                            ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_feedback_idempotency_key'))
    )
    op.create_index(op.f('ix_feedback_customer_id_outcome_occurred_at'), 'feedback',
                    ['customer_id', 'outcome', 'occurred_at'], unique=False)
    op.create_index(op.f('ix_feedback_dispatch_id'), 'feedback', ['dispatch_id'], unique=False)

    op.create_table('tasks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('rm_id', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('dispatch_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('strategy_id', sa.String(length=64), nullable=True),
    sa.Column('wave', sa.String(length=64), nullable=True),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('script', sa.Text(), nullable=True),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.CheckConstraint("status IN ('open', 'in_progress', 'done', 'cancelled', 'expired')",
                       name=op.f('ck_tasks_status')),
    sa.ForeignKeyConstraint(['dispatch_id'], ['dispatches.id'], name=op.f('fk_tasks_dispatch_id_dispatches'),
                            ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tasks')),
    sa.UniqueConstraint('dispatch_id', name=op.f('uq_tasks_dispatch_id'))
    )
    op.create_index(op.f('ix_tasks_customer_id'), 'tasks', ['customer_id'], unique=False)
    op.create_index(op.f('ix_tasks_rm_id_status_due_on'), 'tasks', ['rm_id', 'status', 'due_on'], unique=False)

    for statement in AUDIT_APPEND_ONLY[op.get_context().dialect.name]:
        op.execute(statement)


def downgrade() -> None:
    for statement in AUDIT_APPEND_ONLY_DROP[op.get_context().dialect.name]:
        op.execute(statement)
    op.drop_index(op.f('ix_tasks_rm_id_status_due_on'), table_name='tasks')
    op.drop_index(op.f('ix_tasks_customer_id'), table_name='tasks')
    op.drop_table('tasks')
    op.drop_index(op.f('ix_feedback_dispatch_id'), table_name='feedback')
    op.drop_index(op.f('ix_feedback_customer_id_outcome_occurred_at'), table_name='feedback')
    op.drop_table('feedback')
    op.drop_index(op.f('ix_leads_rm_id'), table_name='leads')
    op.drop_index(op.f('ix_leads_referred_by_customer_id'), table_name='leads')
    op.drop_table('leads')
    op.drop_table('idempotency_keys')
    op.drop_index(op.f('ix_do_not_disturb_customer_id_starts_at'), table_name='do_not_disturb')
    op.drop_table('do_not_disturb')
    op.drop_index(op.f('ix_dispatches_status_next_attempt_at'), table_name='dispatches')
    op.drop_index(op.f('ix_dispatches_customer_id_created_at'), table_name='dispatches')
    op.drop_index(op.f('ix_dispatches_as_of_strategy_id_wave'), table_name='dispatches')
    op.drop_table('dispatches')
    op.drop_index(op.f('ix_consent_changes_customer_id_purpose_effective_at'), table_name='consent_changes')
    op.drop_table('consent_changes')
    op.drop_index(op.f('ix_audit_log_target_type_target_id'), table_name='audit_log')
    op.drop_index(op.f('ix_audit_log_at'), table_name='audit_log')
    op.drop_table('audit_log')
