"""Suitability is checked again at dispatch: an unsuitable offer in a list is never sent (投资者适当性)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy as sa

from lifeloop.context import Context
from lifeloop.store.ops.database import unit_of_work
from lifeloop.store.ops.models import AuditEntry, Dispatch


def test_an_unsuitable_offer_slipped_into_a_list_is_held_back_at_dispatch_and_audited(tmp_path):
    ctx = Context.init(tmp_path / "ws")
    sim = ctx.simulate(tmp_path / "ws" / "extracts", customers=400, days=60, seed=5)
    ctx.ingest(tmp_path / "ws" / "extracts", as_of=sim.as_of)
    with ctx:
        ctx.run(sim.as_of, steps=["features", "lifecycle", "segments", "clusters", "audiences", "plan"])
        customers = ctx.lake.read_table(next((ctx.lake.root / "bank").glob("as_of=*/customers.parquet")))
        unassessed = customers.filter(pc.is_null(customers["risk_level"]))["customer_id"][0].as_py()
        # a list edited after the plan (or a plan that went wrong): an R3 wealth product for a customer
        # with no risk assessment, and a harmless birthday greeting for the same customer
        row = dict(as_of=sim.as_of, customer_id=unassessed, strategy="maturity_reinvestment", wave="reminder",
                   group="treated", status="contact", channel="sms", send_at=None, purpose="marketing",
                   script_id="maturity_reinvestment.sms", script_key=None, offer="WM180", priority=70,
                   suitability="suitable", dropped_by=None)
        care = dict(row, strategy="birthday_care", wave="greeting", offer="BIRTHDAY_CARE", suitability=None,
                    script_id="birthday_care.sms", purpose="service", priority=30)
        path = ctx.lake.snapshot_dir("lists", sim.as_of) / "lists.parquet"
        lists = pq.read_table(path)
        extra = pa.Table.from_pylist([row, care]).cast(pa.schema([lists.schema.field(n) for n in row]))
        pq.write_table(_widen(extra, lists.schema), path)
        summary = ctx.dispatch(sim.as_of)
        assert summary.blocked >= 1
        with unit_of_work(ctx.ops()) as s:
            sent = [d.strategy_id for d in s.scalars(sa.select(Dispatch).where(Dispatch.customer_id == unassessed))]
            audit = s.scalars(sa.select(AuditEntry).where(AuditEntry.action == "dispatch.blocked.suitability")).all()
        assert "maturity_reinvestment" not in sent and "birthday_care" in sent
        assert [a.target_id for a in audit] == [unassessed]
        assert "WM180" in str(audit[0].details) and audit[0].reason


def _widen(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """The rows of ``table`` with every column of ``schema`` (missing ones NULL)."""
    cols = [table[f.name].cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
            for f in schema]
    return pa.Table.from_arrays(cols, schema=schema)
