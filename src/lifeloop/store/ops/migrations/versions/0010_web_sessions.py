"""The web app's sign-in: passwords, lock-out and server-side sessions.

Revision ID: 0010_web_sessions
Revises: 0007_encryption

``users`` gains ``password_hash`` (argon2id, for the web sign-in; empty until `lifeloop users set-password`),
``failed_sign_ins`` (consecutive failures) and ``locked_until`` (lock-out after too many). ``web_sessions``:
one row per signed-in browser, keyed by the SHA-256 of the session id (the id itself is only in the
user's cookie), with when it was last used (idle timeout) and when it was revoked (sign-out).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_web_sessions"
down_revision: str | None = "0007_encryption"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("password_hash", sa.String(length=256), nullable=True))
        batch.add_column(sa.Column("failed_sign_ins", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
    op.create_table("web_sessions",
    sa.Column("id_hash", sa.String(length=64), nullable=False),
    sa.Column("user_id", sa.String(length=64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("revoked_why", sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_web_sessions_user_id_users"),
                            ondelete="RESTRICT"),
    sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_web_sessions"))
    )
    op.create_index(op.f("ix_web_sessions_user_id"), "web_sessions", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_web_sessions_user_id"), table_name="web_sessions")
    op.drop_table("web_sessions")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("locked_until")
        batch.drop_column("failed_sign_ins")
        batch.drop_column("password_hash")
