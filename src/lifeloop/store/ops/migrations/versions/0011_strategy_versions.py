"""Strategy versions: the strategy editor's drafts, submissions and decisions (maker-checker).

Revision ID: 0011_strategy_versions
Revises: 0010_web_sessions

``strategy_versions``: one row per version of one strategy (or of one branch's variant of it), with its full
YAML text, its author, status (draft, submitted, approved, rejected, reverted), the checker who decided and
their comment. The database refuses a decision by the author (``four_eyes``). docs/operations-db.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_strategy_versions"
down_revision: str | None = "0010_web_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table("strategy_versions",
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("strategy_id", sa.String(length=64), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("branch_id", sa.String(length=64), nullable=True),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("definition", sa.Text(), nullable=False),
    sa.Column("base_version", sa.Integer(), nullable=True),
    sa.Column("reverts_version", sa.Integer(), nullable=True),
    sa.Column("author", sa.String(length=64), nullable=False),
    sa.Column("note", sa.Text(), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("decided_by", sa.String(length=64), nullable=True),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("comment", sa.Text(), nullable=True),
    sa.CheckConstraint("status IN ('draft', 'submitted', 'approved', 'rejected', 'reverted')",
                       name=op.f("ck_strategy_versions_status")),
    sa.CheckConstraint("decided_by IS NULL OR decided_by != author", name=op.f("ck_strategy_versions_four_eyes")),
    sa.CheckConstraint("status IN ('draft', 'submitted') OR decided_by IS NOT NULL",
                       name=op.f("ck_strategy_versions_decided_by_someone")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_strategy_versions")),
    sa.UniqueConstraint("strategy_id", "version", name=op.f("uq_strategy_versions_strategy_id_version"))
    )
    op.create_index(op.f("ix_strategy_versions_status_strategy_id"), "strategy_versions", ["status", "strategy_id"],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_strategy_versions_status_strategy_id"), table_name="strategy_versions")
    op.drop_table("strategy_versions")
