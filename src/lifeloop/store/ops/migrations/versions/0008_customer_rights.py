"""The customer's rights: opting out of personalised marketing, tag deletion and purge requests, suppressions.

Revision ID: 0008_customer_rights
Revises: 0009_events

``personalisation_changes``: a customer's opt-out of personalised marketing (PIPL Art. 24), as history.
``rights_requests``: tag deletion (算法推荐管理规定 Art. 17) and purge (PIPL Art. 47) requests and when they
were applied. ``suppressions``: keyed hashes of purged people. ``marketing_suppressed``: customers of a later
batch who match a suppression (kept out of marketing).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_customer_rights"
down_revision: str | None = "0009_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table("personalisation_changes",
    sa.Column("id", ID, nullable=False),
    sa.Column("customer_id", sa.String(length=64), nullable=False),
    sa.Column("opted_out", sa.Boolean(), nullable=False),
    sa.Column("effective_at", WHEN, nullable=False),
    sa.Column("recorded_at", WHEN, nullable=False),
    sa.Column("source", sa.String(length=32), nullable=False),
    sa.Column("recorded_by", sa.String(length=64), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_personalisation_changes"))
    )
    op.create_index(op.f("ix_personalisation_changes_customer_id_effective_at"), "personalisation_changes",
                    ["customer_id", "effective_at"], unique=False)

    op.create_table("rights_requests",
    sa.Column("id", ID, nullable=False),
    sa.Column("customer_id", sa.String(length=80), nullable=False),
    sa.Column("kind", sa.String(length=16), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("requested_by", sa.String(length=64), nullable=False),
    sa.Column("requested_at", WHEN, nullable=False),
    sa.Column("applied_by", sa.String(length=64), nullable=True),
    sa.Column("applied_at", WHEN, nullable=True),
    sa.Column("details", sa.JSON(), nullable=True),
    sa.CheckConstraint("kind IN ('delete_tags', 'purge')", name=op.f("ck_rights_requests_kind")),
    sa.CheckConstraint("status IN ('pending', 'applied')", name=op.f("ck_rights_requests_status")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_rights_requests"))
    )
    op.create_index(op.f("ix_rights_requests_customer_id_kind"), "rights_requests", ["customer_id", "kind"],
                    unique=False)

    op.create_table("suppressions",
    sa.Column("id", ID, nullable=False),
    sa.Column("kind", sa.String(length=16), nullable=False),
    sa.Column("digest", sa.String(length=64), nullable=False),
    sa.Column("created_at", WHEN, nullable=False),
    sa.Column("request_id", ID, nullable=True),
    sa.CheckConstraint("kind IN ('customer_id', 'id_number', 'mobile')", name=op.f("ck_suppressions_kind")),
    sa.ForeignKeyConstraint(["request_id"], ["rights_requests.id"],
                            name=op.f("fk_suppressions_request_id_rights_requests"), ondelete="RESTRICT"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_suppressions")),
    sa.UniqueConstraint("kind", "digest", name=op.f("uq_suppressions_kind_digest"))
    )

    op.create_table("marketing_suppressed",
    sa.Column("id", ID, nullable=False),
    sa.Column("customer_id", sa.String(length=64), nullable=False),
    sa.Column("matched_on", sa.String(length=64), nullable=False),
    sa.Column("batch_as_of", sa.Date(), nullable=False),
    sa.Column("recorded_at", WHEN, nullable=False),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_marketing_suppressed")),
    sa.UniqueConstraint("customer_id", name=op.f("uq_marketing_suppressed_customer_id"))
    )


def downgrade() -> None:
    op.drop_table("marketing_suppressed")
    op.drop_table("suppressions")
    op.drop_index(op.f("ix_rights_requests_customer_id_kind"), table_name="rights_requests")
    op.drop_table("rights_requests")
    op.drop_index(op.f("ix_personalisation_changes_customer_id_effective_at"), table_name="personalisation_changes")
    op.drop_table("personalisation_changes")
