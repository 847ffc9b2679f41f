"""The audit log proves itself: a hash chain, where and result of each entry, archive anchors.

Revision ID: 0005_audit_chain
Revises: 0004_approvals

- ``audit_log`` gains ``host``, ``client`` (process or client address), ``result`` (ok, refused, failed),
  ``prev_hash`` and ``entry_hash``: each entry's sha256 over its canonical JSON and the previous entry's hash.
  Entries written before this revision are chained here, oldest first.
- ``audit_head``: one row, the chain's last entry; appends update it first, which serialises them (the
  SQLite write lock, a PostgreSQL row lock), so two writers can never fork the chain.
- ``audit_archives``: anchors of pruned (exported, then deleted) entries: the last pruned id and hash.
- The append-only triggers now let a DELETE through only for entries an anchor covers; UPDATE stays
  refused, and anchors themselves are append-only.

Written out in full (the hash included) so that later code changes cannot alter what it does.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_audit_chain"
down_revision: str | None = "0004_approvals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64
FIELDS = ("at", "actor", "action", "target_type", "target_id", "reason", "details", "host", "client", "result")

# Fixed DDL text (no user input): triggers have no portable construct in SQLAlchemy or sqlglot.
DROP_0001 = {
    "sqlite": ["DROP TRIGGER IF EXISTS audit_log_no_update", "DROP TRIGGER IF EXISTS audit_log_no_delete"],
    "postgresql": ["DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log",
                   "DROP TRIGGER IF EXISTS audit_log_no_update_or_delete ON audit_log",
                   "DROP FUNCTION IF EXISTS audit_log_append_only()"],
}
CREATE_0001 = {
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
CREATE_0005 = {
    "sqlite": [
        "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE is not allowed'); END",
        "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
        "WHEN NOT EXISTS (SELECT 1 FROM audit_archives a WHERE OLD.id <= a.last_id) "
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE is not allowed before export and prune'); END",
        "CREATE TRIGGER audit_archives_no_update BEFORE UPDATE ON audit_archives "
        "BEGIN SELECT RAISE(ABORT, 'audit_archives is append-only: UPDATE is not allowed'); END",
        "CREATE TRIGGER audit_archives_no_delete BEFORE DELETE ON audit_archives "
        "BEGIN SELECT RAISE(ABORT, 'audit_archives is append-only: DELETE is not allowed'); END",
    ],
    "postgresql": [
        "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF TG_OP = 'DELETE' THEN "
        "IF EXISTS (SELECT 1 FROM audit_archives a WHERE OLD.id <= a.last_id) THEN RETURN OLD; END IF; END IF; "
        "RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only: ' || TG_OP || ' is not allowed', "
        "ERRCODE = 'insufficient_privilege'; END $$",
        "CREATE TRIGGER audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
        "CREATE FUNCTION audit_archives_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION USING MESSAGE = 'audit_archives is append-only: ' || TG_OP || ' is not allowed', "
        "ERRCODE = 'insufficient_privilege'; END $$",
        "CREATE TRIGGER audit_archives_no_change BEFORE UPDATE OR DELETE ON audit_archives "
        "FOR EACH ROW EXECUTE FUNCTION audit_archives_append_only()",
        "CREATE TRIGGER audit_archives_no_truncate BEFORE TRUNCATE ON audit_archives "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_archives_append_only()",
    ],
}
DROP_0005 = {
    "sqlite": ["DROP TRIGGER IF EXISTS audit_log_no_update", "DROP TRIGGER IF EXISTS audit_log_no_delete",
               "DROP TRIGGER IF EXISTS audit_archives_no_update", "DROP TRIGGER IF EXISTS audit_archives_no_delete"],
    "postgresql": ["DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log",
                   "DROP TRIGGER IF EXISTS audit_log_no_update_or_delete ON audit_log",
                   "DROP FUNCTION IF EXISTS audit_log_append_only()",
                   "DROP TRIGGER IF EXISTS audit_archives_no_truncate ON audit_archives",
                   "DROP TRIGGER IF EXISTS audit_archives_no_change ON audit_archives",
                   "DROP FUNCTION IF EXISTS audit_archives_append_only()"],
}


def _hash(row: dict, prev: str) -> str:
    """sha256 of an entry's canonical JSON with the previous hash (the same as lifeloop.store.ops.audit)."""
    at = row["at"] if row["at"].tzinfo else row["at"].replace(tzinfo=dt.UTC)
    fields = {k: row.get(k) for k in FIELDS}
    fields["at"] = at.astimezone(dt.UTC).isoformat(timespec="microseconds")
    fields["prev_hash"] = prev
    body = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def upgrade() -> None:
    dialect = op.get_context().dialect.name
    for statement in DROP_0001[dialect]:
        op.execute(statement)
    op.create_table("audit_archives",
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_id", sa.BigInteger(), nullable=False),
    sa.Column("last_hash", sa.String(length=64), nullable=False),
    sa.Column("before", sa.DateTime(timezone=True), nullable=False),
    sa.Column("entries", sa.Integer(), nullable=False),
    sa.Column("archive_name", sa.String(length=256), nullable=False),
    sa.Column("archive_sha256", sa.String(length=64), nullable=False),
    sa.Column("pruned_by", sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_archives"))
    )
    op.create_table("audit_head",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("last_id", sa.BigInteger(), nullable=True),
    sa.Column("last_hash", sa.String(length=64), nullable=False),
    sa.Column("appends", sa.BigInteger(), nullable=False),
    sa.CheckConstraint("id = 1", name=op.f("ck_audit_head_one_row")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head"))
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("host", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("client", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("result", sa.String(length=16), server_default="ok", nullable=False))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("entry_hash", sa.String(length=64), nullable=True))
        batch_op.create_check_constraint(op.f("ck_audit_log_result"), "result IN ('ok', 'refused', 'failed')")

    # chain the entries written before this revision, oldest first
    types = {"at": sa.DateTime(timezone=True), "details": sa.JSON()}
    log = sa.table("audit_log", *[sa.column(c, types.get(c)) for c in ("id", *FIELDS, "prev_hash", "entry_hash")])
    prev, last_id = GENESIS, None
    if not op.get_context().as_sql:  # printed SQL (db upgrade --sql) cannot hash: such entries verify as unchained
        conn = op.get_bind()
        for row in conn.execute(sa.select(log).order_by(log.c.id)).mappings().all():
            digest = _hash(dict(row), prev)
            conn.execute(sa.update(log).where(log.c.id == row["id"]).values(prev_hash=prev, entry_hash=digest))
            prev, last_id = digest, row["id"]
    head = sa.table("audit_head", sa.column("id", sa.Integer()), sa.column("last_id", sa.BigInteger()),
                    sa.column("last_hash", sa.String()), sa.column("appends", sa.BigInteger()))
    op.execute(sa.insert(head).values(id=1, last_id=last_id, last_hash=prev, appends=0))
    for statement in CREATE_0005[dialect]:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_context().dialect.name
    for statement in DROP_0005[dialect]:
        op.execute(statement)
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_audit_log_result"), type_="check")
        batch_op.drop_column("entry_hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("result")
        batch_op.drop_column("client")
        batch_op.drop_column("host")
    op.drop_table("audit_head")
    op.drop_table("audit_archives")
    for statement in CREATE_0001[dialect]:
        op.execute(statement)
