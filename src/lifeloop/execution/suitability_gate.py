"""Suitability checked again at dispatch (投资者适当性): the plan's pure rule, applied to the lists once more."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from lifeloop.config.contact_policy import ContactPolicy
from lifeloop.data.schema import arrow_schema
from lifeloop.store.ops import audit
from lifeloop.store.ops.database import unit_of_work
from lifeloop.strategy import suitability

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    import pyarrow as pa

    from lifeloop.execution.dispatch import DispatchSummary


Inputs = tuple["pa.Table | None", "pa.Table | None", Any]  # the bank's customers, its products, extra rules


def suitability_inputs(ctx: Any, as_of: dt.date) -> Inputs:
    """What suitability reads: the bank's customers and products as of D, and the policy's extra rules."""

    rules = (ctx.load_config("contact_policy", ContactPolicy)[0].suitability.extra_rules
             if (ctx.config_dir / "contact_policy.yaml").exists() else None)
    return _bank_table(ctx.lake, as_of, "customers"), _bank_table(ctx.lake, as_of, "products"), rules


def suitable_only(ctx: Any, lists: pa.Table, as_of: dt.date,
                  inputs: Inputs | None = None) -> tuple[pa.Table, list[dict[str, Any]]]:
    """Suitability again at dispatch (投资者适当性): treated product offers the customer may not buy are held back.

    The plan already dropped them; checking again here means no edited list, stale plan or
    configuration can send an unsuitable offer. Returns the lists without those rows, and the rows.
    """
    import pyarrow as pa
    import pyarrow.compute as pc


    names = lists.column_names
    if "offer" not in names or lists.num_rows == 0:
        return lists, []
    # every row the outbox would send (status contact), whatever its group or dropped_by say: a hand-edited
    # list can pair them wrongly; never NULL, or filtering would drop the row from the lists unseen
    treated = (pc.fill_null(pc.equal(lists["status"], "contact"), False) if "status" in names
               else pa.repeat(True, lists.num_rows))
    if not pc.any(treated).as_py():
        return lists, []
    customers, products, rules = inputs or suitability_inputs(ctx, as_of)
    offers = pa.table({"customer_id": lists["customer_id"], "offer": lists["offer"],
                       "product_offer": pc.is_valid(lists["suitability"]) if "suitability" in lists.column_names
                       else pa.nulls(lists.num_rows, pa.bool_()).fill_null(False)})
    verdict = suitability.check(customers, products, offers, as_of, rules)
    refused = pc.and_(treated, pa.array([not ok for ok in verdict.allowed]))
    if not pc.any(refused).as_py():
        return lists, []
    rows = [dict(r, detail=verdict.detail[i]) for i, (r, bad) in
            enumerate(zip(lists.to_pylist(), refused.to_pylist(), strict=False)) if bad]
    return lists.filter(pc.invert(refused)), rows


def send_time_screen(ctx: Any, as_of: dt.date,
                     inputs: Inputs | None = None) -> Callable[[Sequence[dict[str, Any]]], dict[int, str]]:
    """Suitability once more for what the outbox is about to send, queued today or earlier (a retry).

    An offer queued on D and retried on D+1 is judged on D+1's customers and products: an assessment
    that expired overnight stops it. Returns a function of the claimed items giving {item id: why}."""
    import pyarrow as pa


    customers, products, rules = inputs or suitability_inputs(ctx, as_of)
    known = set(products["product_id"].to_pylist()) if products is not None else set()

    def screen(claimed: Sequence[dict[str, Any]]) -> dict[int, str]:
        offers = [(c.get("payload") or {}).get("offer") for c in claimed]
        subject = [o is not None and o in known for o in offers]
        if not any(subject):
            return {}
        table = pa.table({"customer_id": pa.array([c["customer_id"] for c in claimed], pa.string()),
                          "offer": pa.array(offers, pa.string()), "product_offer": pa.array(subject, pa.bool_())})
        verdict = suitability.check(customers, products, table, as_of, rules)
        return {c["id"]: f"suitability: {verdict.outcome[i]} ({verdict.detail[i]})"
                for i, c in enumerate(claimed) if not verdict.allowed[i]}

    return screen


def _bank_table(lake: Any, as_of: dt.date, name: str) -> pa.Table | None:
    """A state table of the bank as of a date (newest batch), with every canonical column (missing: NULL)."""
    import pyarrow as pa


    files = lake.bank_files(as_of).get(name)
    if not files:
        return None
    table = lake.read_table(files[-1])   # C2 columns (birth date) decrypted by the lake
    schema = arrow_schema(name)
    return pa.table({f.name: table[f.name].cast(f.type) if f.name in table.column_names
                     else pa.nulls(table.num_rows, f.type) for f in schema})


def record_unsuitable(sessions: Any, rows: list[dict[str, Any]], summary: DispatchSummary) -> None:
    """Count offers held back for suitability as blocked, and leave an audit entry for each."""

    if not rows:
        return
    with unit_of_work(sessions) as session:
        for r in rows:
            summary.count(r["channel"] or "-", "blocked")
            audit.record(session, actor="dispatch", action="dispatch.blocked.suitability", target_type="customer",
                         target_id=r["customer_id"], reason=r["detail"] or "unsuitable offer",
                         details={"as_of": str(r["as_of"]), "strategy": r["strategy"], "wave": r["wave"],
                                  "offer": r["offer"], "channel": r["channel"]})
