"""C2 fields encrypted at rest: room for ciphertext, and blind indexes for lookups by value.

Revision ID: 0007_encryption
Revises: 0008_customer_rights

Encrypted values (``lle1:<version>:<base64>``, lifeloop.store.ops.encrypted) are longer than the plaintext
they replace, so ``leads.name``, ``leads.phone`` and ``inbound_replies.mobile`` become TEXT, and
``dispatches.payload`` (JSON) becomes TEXT holding an encrypted JSON document. ``leads.phone_hash`` and
``inbound_replies.mobile_hash`` hold keyed-hash blind indexes. Rows already written stay plaintext and stay
readable; a migration has no keys, so `lifeloop keys reencrypt` encrypts them (and fills the indexes).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_encryption"
down_revision: str | None = "0008_customer_rights"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # SQLite keeps any text in a VARCHAR or JSON column (no length limit, TEXT affinity), and changing a type
    # there means copying the table and dropping the old one, which would cascade to (or be refused by) the rows
    # that reference it (contact_ledger, feedback): the declared types change on PostgreSQL only
    postgres = op.get_bind().dialect.name != "sqlite"
    with op.batch_alter_table("leads") as batch:
        if postgres:
            batch.alter_column("name", type_=sa.Text(), existing_type=sa.String(128), existing_nullable=False)
            batch.alter_column("phone", type_=sa.Text(), existing_type=sa.String(32), existing_nullable=True)
        batch.add_column(sa.Column("phone_hash", sa.String(64), nullable=True))
        batch.create_index(batch.f("ix_leads_phone_hash"), ["phone_hash"])
    with op.batch_alter_table("inbound_replies") as batch:
        if postgres:
            batch.alter_column("mobile", type_=sa.Text(), existing_type=sa.String(32), existing_nullable=True)
        batch.add_column(sa.Column("mobile_hash", sa.String(64), nullable=True))
        batch.create_index(batch.f("ix_inbound_replies_mobile_hash"), ["mobile_hash"])
    if postgres:
        op.alter_column("dispatches", "payload", type_=sa.Text(), existing_type=sa.JSON(), existing_nullable=True,
                        postgresql_using="payload::text")


def downgrade() -> None:
    # only plaintext rows can go back; encrypted ones would be meaningless to the older code
    postgres = op.get_bind().dialect.name != "sqlite"
    if postgres:
        op.alter_column("dispatches", "payload", type_=sa.JSON(), existing_type=sa.Text(), existing_nullable=True,
                        postgresql_using="payload::json")
    with op.batch_alter_table("inbound_replies") as batch:
        batch.drop_index(batch.f("ix_inbound_replies_mobile_hash"))
        batch.drop_column("mobile_hash")
        if postgres:
            batch.alter_column("mobile", type_=sa.String(32), existing_type=sa.Text(), existing_nullable=True)
    with op.batch_alter_table("leads") as batch:
        batch.drop_index(batch.f("ix_leads_phone_hash"))
        batch.drop_column("phone_hash")
        if postgres:
            batch.alter_column("phone", type_=sa.String(32), existing_type=sa.Text(), existing_nullable=True)
            batch.alter_column("name", type_=sa.String(128), existing_type=sa.Text(), existing_nullable=False)
