"""Suitability checked again at dispatch (投资者适当性): the plan's pure rule, applied to the lists once more."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from lifeloop.execution.dispatch import DispatchSummary


def suitable_only(ctx: Any, lists: "pa.Table", as_of: dt.date) -> tuple["pa.Table", list[dict[str, Any]]]:
    """Suitability again at dispatch (投资者适当性): treated product offers the customer may not buy are held back.

    The plan already dropped them; checking again here means no edited list, stale plan or
    configuration can send an unsuitable offer. Returns the lists without those rows, and the rows.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from lifeloop.strategy import suitability
    from lifeloop.config.contact_policy import ContactPolicy

    names = lists.column_names
    if "offer" not in names or lists.num_rows == 0:
        return lists, []
    treated = pc.equal(lists["group"], "treated") if "group" in names else pa.repeat(True, lists.num_rows)
    if "dropped_by" in names:
        treated = pc.and_(treated, pc.is_null(lists["dropped_by"]))
    if not pc.any(treated).as_py():
        return lists, []
    customers, products = _bank_table(ctx.lake, as_of, "customers"), _bank_table(ctx.lake, as_of, "products")
    rules = ctx.load_config("contact_policy", ContactPolicy)[0].suitability.extra_rules if (ctx.config_dir / "contact_policy.yaml").exists() else None
    offers = pa.table({"customer_id": lists["customer_id"], "offer": lists["offer"],
                       "product_offer": pc.is_valid(lists["suitability"]) if "suitability" in lists.column_names
                       else pa.nulls(lists.num_rows, pa.bool_()).fill_null(False)})
    verdict = suitability.check(customers, products, offers, as_of, rules)
    refused = pc.and_(treated, pa.array([not ok for ok in verdict.allowed]))
    if not pc.any(refused).as_py():
        return lists, []
    rows = [dict(r, detail=verdict.detail[i]) for i, (r, bad) in
            enumerate(zip(lists.to_pylist(), refused.to_pylist())) if bad]
    return lists.filter(pc.invert(refused)), rows


def _bank_table(lake: Any, as_of: dt.date, name: str) -> "pa.Table | None":
    """A state table of the bank as of a date (newest batch), with every canonical column (missing: NULL)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lifeloop.data.schema import arrow_schema

    files = lake.bank_files(as_of).get(name)
    if not files:
        return None
    table = pq.read_table(files[-1])
    schema = arrow_schema(name)
    return pa.table({f.name: table[f.name].cast(f.type) if f.name in table.column_names
                     else pa.nulls(table.num_rows, f.type) for f in schema})


def record_unsuitable(sessions: Any, rows: list[dict[str, Any]], summary: "DispatchSummary") -> None:
    """Count offers held back for suitability as blocked, and leave an audit entry for each."""
    from lifeloop.store.ops import audit
    from lifeloop.store.ops.database import unit_of_work

    if not rows:
        return
    with unit_of_work(sessions) as session:
        for r in rows:
            summary.count(r["channel"] or "-", "blocked")
            audit.record(session, actor="dispatch", action="dispatch.blocked.suitability", target_type="customer",
                         target_id=r["customer_id"], reason=r["detail"] or "unsuitable offer",
                         details={"as_of": str(r["as_of"]), "strategy": r["strategy"], "wave": r["wave"],
                                  "offer": r["offer"], "channel": r["channel"]})
