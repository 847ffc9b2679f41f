"""Questions and feedback to a strategy's owner, and referrals to another product line.

Revision ID: 0012_strategy_threads
Revises: 0011_strategy_versions

``strategy_threads``: one question about a strategy (营销人员问题反馈), with the asker's book and branch (who may
read it), the customer it is about if any, and its status (open, answered, closed). ``strategy_thread_posts``:
the question and its replies, the text encrypted like the feedback's notes. ``leads.product_line``: a referral
(转介) to another product line names it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_strategy_threads"
down_revision: str | None = "0011_strategy_versions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table("strategy_threads",
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("strategy_id", sa.String(length=64), nullable=False),
    sa.Column("subject", sa.String(length=200), nullable=False),
    sa.Column("asked_by", sa.String(length=64), nullable=False),
    sa.Column("rm_id", sa.String(length=64), nullable=True),
    sa.Column("branch_id", sa.String(length=64), nullable=True),
    sa.Column("customer_id", sa.String(length=64), nullable=True),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('open', 'answered', 'closed')", name=op.f("ck_strategy_threads_status")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_strategy_threads"))
    )
    op.create_index(op.f("ix_strategy_threads_strategy_id_updated_at"), "strategy_threads",
                    ["strategy_id", "updated_at"], unique=False)
    op.create_index(op.f("ix_strategy_threads_branch_id_rm_id"), "strategy_threads", ["branch_id", "rm_id"],
                    unique=False)
    op.create_table("strategy_thread_posts",
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("thread_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("author", sa.String(length=64), nullable=False),
    sa.Column("body", sa.Text(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["thread_id"], ["strategy_threads.id"],
                            name=op.f("fk_strategy_thread_posts_thread_id_strategy_threads"), ondelete="RESTRICT"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_strategy_thread_posts"))
    )
    op.create_index(op.f("ix_strategy_thread_posts_thread_id"), "strategy_thread_posts", ["thread_id"], unique=False)
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("product_line", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("product_line")
    op.drop_index(op.f("ix_strategy_thread_posts_thread_id"), table_name="strategy_thread_posts")
    op.drop_table("strategy_thread_posts")
    op.drop_index(op.f("ix_strategy_threads_branch_id_rm_id"), table_name="strategy_threads")
    op.drop_index(op.f("ix_strategy_threads_strategy_id_updated_at"), table_name="strategy_threads")
    op.drop_table("strategy_threads")
