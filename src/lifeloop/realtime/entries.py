"""Real-time entries for the review (实时策略后评估): the decider's treated and control entries as lake rows.

The review's ``outcomes`` step is pure: it reads declared lake snapshots only, never the operations database.
So the daily run, before its steps (``pipeline.run_steps``, when ``outcomes`` is among them), publishes
``lake/moment_entries/as_of=D/moment_entries.parquet``: every real-time entry — a ``moment_decisions`` row with
outcome ``treated`` or ``control`` — on a moment of a local date before D, in the columns of the day's lists
that outcomes reads (``as_of`` is the moment's local date, the event's day: treated and control entered then).
``outcomes`` declares the read (latest on or before D) and adds these rows to the lists' rows, so a real-time
strategy's entries are measured like the batch's: over the strategy's window from the bank's own data, treated
against the control group held out by the same hash, once per ``reentry_days`` per customer — a batch entry and
a real-time one of the same strategy and customer within that many days are one journey.

The snapshot is cumulative (all entries before D), so a re-run of D publishes the same rows, and a late event
decided after D's run is in D+1's snapshot. The offer is the strategy's in the current map; the cell is the one
the decider recorded in the decision's reason.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lifeloop.config.strategies import StrategiesConfig
from lifeloop.store.ops import events as event_store

if TYPE_CHECKING:
    import pyarrow as pa

AREA = "moment_entries"
_CELL = re.compile(r"treated, cell (\S+)$")


def schema() -> pa.Schema:
    """Columns of ``lake/moment_entries/as_of=D/moment_entries.parquet`` (the lists' columns outcomes reads, and
    the entry's time)."""
    import pyarrow as pa

    s = pa.string()
    return pa.schema([("as_of", pa.date32()), ("customer_id", s), ("strategy", s), ("wave", s), ("group", s),
                      ("cell", s), ("status", s), ("channel", s), ("dropped_by", s), ("rm_id", s), ("offer", s),
                      ("cost", pa.float64()), ("entered_at", pa.timestamp("us", tz="UTC"))])


def table(rows: Sequence[dict[str, Any]], config: StrategiesConfig | None) -> pa.Table:
    """``store.ops.events.entered_before`` rows as lake rows (the offer from the strategy map, when it has it)."""
    import pyarrow as pa

    offers = {s.id: s.offer.product_id or s.offer.code for s in (config.strategies if config else ())}
    out: dict[str, list[Any]] = {f.name: [] for f in schema()}
    for r in rows:
        treated = r["outcome"] == "treated"
        cell = _CELL.search(r["reason"] or "") if treated else None
        out["as_of"].append(r["local_date"])
        out["customer_id"].append(r["customer_id"])
        out["strategy"].append(r["strategy_id"])
        out["wave"].append(r["wave"])
        out["group"].append(r["outcome"])
        out["cell"].append(cell.group(1) if cell else None)
        out["status"].append("contact" if treated else "control")
        out["channel"].append(r["channel"])
        out["dropped_by"].append(None)
        out["rm_id"].append(r["rm_id"])
        out["offer"].append(offers.get(r["strategy_id"]))
        out["cost"].append(float(r["unit_cost"] or 0.0) if treated else 0.0)
        out["entered_at"].append(r["entered_at"])
    return pa.table({f.name: pa.array(out[f.name], f.type) for f in schema()})


def publish(lake: Any, sessions: Any, config: StrategiesConfig | None, as_of: dt.date) -> int | None:
    """Publish the real-time entries before ``as_of`` (cumulative); returns how many, or None when there has been
    no real-time entry at all (nothing is published then)."""
    import pyarrow.parquet as pq

    with sessions() as session:
        rows = event_store.entered_before(session, before=as_of)
    if not rows and not lake.dates(AREA):
        return None
    t = table(rows, config)
    lake.publish(AREA, as_of, lambda staging: pq.write_table(t, staging / f"{AREA}.parquet"),
                 manifest={"step": AREA, "rows": t.num_rows, "source": "operations database: moment_decisions"})
    return t.num_rows


def read(path: Any, as_of: dt.date, strategies: Sequence[str]) -> pa.Table:
    """The published entries before ``as_of`` of the strategies in the map, in the lists' columns."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    t = pq.read_table(path)
    keep = pc.and_(pc.less(t["as_of"], pa.scalar(as_of, pa.date32())),
                   pc.is_in(t["strategy"], value_set=pa.array(sorted(strategies), pa.string())))
    return t.filter(keep).drop_columns(["entered_at"])
