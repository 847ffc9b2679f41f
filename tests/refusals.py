"""What a refusal must leave untouched: every file under lake/ (by hash) and the ops database (row for row)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, MetaData, Text, select

from tests.factories import lake_fingerprint


def ops_rows(ctx) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the workspace's operations database, in primary-key order.

    Sign-ins are left out: a refused command still signed its user in, and that is audited on purpose
    (``user.sign_in`` entries, and the chain's head row they move); anything else the refusal wrote is not.
    """
    engine = ctx.ops().kw["bind"]
    meta = MetaData()
    meta.reflect(engine)
    for table in meta.tables.values():   # the stored text, as it is (an encrypted JSON document is not JSON)
        for column in table.columns:
            if isinstance(column.type, JSON):
                column.type = Text()
    out = {}
    with engine.connect() as conn:
        for name, table in sorted(meta.tables.items()):
            if name == "audit_head":
                continue
            query = select(table).order_by(*table.primary_key.columns or table.columns)
            if name == "audit_log":
                query = query.where(table.c.action != "user.sign_in")
            out[name] = [tuple(r) for r in conn.execute(query)]
    return out


def state(ctx) -> tuple[dict[str, str], dict[str, list[tuple[Any, ...]]]]:
    """The lake's file hashes (the append-only run log aside) and the ops database's rows."""
    lake = {k: v for k, v in lake_fingerprint(ctx).items() if k != "_runs.jsonl"}
    return lake, ops_rows(ctx)
