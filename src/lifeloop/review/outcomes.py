"""Outcomes (效果归因): what each customer who entered a strategy did over its evaluation window.

An **entry** is a customer's first appearance in a strategy's journey (a row of an entry wave — a wave
that depends on no other — in the day's lists), once per ``reentry_days``. Both arms enter the same
way: the treated group (``group = treated``) and the control group (held out by hash), counting every
candidate that passed the customer-level checks (do-not-disturb, consent, refusal memory, quiet days and quiet
hours, suitability). Treated candidates later stopped by a cap or by capacity stay in the treated arm:
the control group never meets caps or capacity, so dropping them would compare a selected treated
group with an unselected control (intention to treat; ``contacted`` says who was actually reached).

Real-time strategies (docs/realtime.md) enter the same way: the decider's treated and control entries, published
by the daily run as ``lake/moment_entries`` (:mod:`lifeloop.realtime.entries`), are added to the lists' rows
with the moment's local date as the entry date.

Each entry is measured from the bank's own data over (entry date, entry date + window], the window
being the strategy's ``objective.window_days``, and cut at the as-of date while it is still running
(``complete`` false). Control customers are measured on the same window, as if contacted:

``cell`` is the treated entry's cell (A/B test inside a strategy; null for control and without cells);
with selection cells (``select:``) control entries carry the cell their selection put them in too.

* ``purchased`` / ``purchase_amount`` — opened the offered product (product offers; null otherwise),
  and the opening balance;
* ``fee_income`` — fee / margin income of every holding opened in the window: opening balance x the
  product's annual ``fee_rate`` x min(term, 365 days) / 365 (a product without a term counts a year);
* ``inflow`` — customer-initiated money in (credit transfers and cash deposits) over the window;
* ``aum_before`` / ``aum_after`` / ``aum_change`` — asset balances (deposits, wealth, funds,
  insurance) at the entry date and at the end of the window; ``aum_before`` is the pre-period
  covariate CUPED uses;
* ``active`` — made at least one transaction of their own; ``reactivated`` — the same, for customers
  dormant at entry (null for the others); ``retained`` — still holds assets with us at the end, for
  customers who held assets at entry (null for the others: nothing to keep, and a chance imbalance of empty
  accounts between the arms would otherwise read as an effect).

The step writes ``lake/outcomes/as_of=D/outcomes.parquet``. Complete entries of the previous
snapshot are carried over unchanged (their window is closed); open ones are measured again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifeloop.config.loader import load_model
from lifeloop.config.strategies import StrategiesConfig, selection_cells
from lifeloop.contract import Inputs, Output, Read, Step, Table
from lifeloop.data.areas import lists_schema
from lifeloop.engine.adapters.base import write_arrow
from lifeloop.errors import LifeloopError
from lifeloop.realtime import entries as realtime_entries
from lifeloop.review import measures

if TYPE_CHECKING:
    import pyarrow as pa

    from lifeloop.config.strategies import StrategiesConfig

AREA = "outcomes"
# dropped before the holdout mattered: the control group meets these checks too, so neither arm keeps them
BEFORE_ASSIGNMENT = ("dnd", "consent", "refusal_memory", "quiet_day", "quiet_hours", "suitability")


def output_schema() -> pa.Schema:
    """Columns of ``lake/outcomes/as_of=D/outcomes.parquet``."""
    import pyarrow as pa

    s, f, d, b = pa.string(), pa.float64(), pa.date32(), pa.bool_()
    return pa.schema([
        ("customer_id", s), ("strategy", s), ("wave", s), ("entry_date", d), ("arm", s), ("planned_holdout", f),
        ("cell", s),
        ("channel", s),
        ("segment", s), ("stage", s), ("rm_id", s), ("offer", s), ("product_offer", b), ("window_days", pa.int32()),
        ("window_end", d), ("observed_through", d), ("complete", b), ("contacted", b),
        ("contacts", pa.int32()), ("cost", f),
        ("purchased", b), ("purchase_amount", f), ("fee_income", f), ("inflow", f),
        ("aum_before", f), ("aum_after", f), ("aum_change", f),
        ("active", b), ("reactivated", b), ("retained", b)])


# ------------------------------------------------------------------------------------------ entries
def entries(lists: pa.Table, config: StrategiesConfig, as_of: dt.date,
            holdouts: Mapping[tuple[dt.date, str], float] | None = None) -> pa.Table:
    """Pure: one row per strategy entry from the lists of every day up to ``as_of`` (see module doc).

    ``holdouts`` gives the control share each strategy was planned with on each day (the map the
    audiences step stored that day); without it, or for a day it lacks, the current map's share."""
    import pyarrow as pa
    import pyarrow.compute as pc

    strategies = {s.id: s for s in config.strategies}
    entry_waves = {(s.id, w.id) for s in config.strategies for w in s.waves if w.depends_on is None}
    keep = pc.and_(pc.less_equal(lists["as_of"], pa.scalar(as_of, pa.date32())),
                   pc.or_(pc.is_in(lists["status"], pa.array(["contact", "control"])),
                          pc.invert(pc.fill_null(pc.is_in(lists["dropped_by"], pa.array(BEFORE_ASSIGNMENT)), False))))
    rows = lists.filter(keep)
    contacts = rows.filter(pc.equal(rows["status"], "contact"))
    pair = pc.binary_join_element_wise(rows["strategy"], rows["wave"], "\x1f")
    is_entry = pc.is_in(pair, value_set=pa.array(["\x1f".join(k) for k in entry_waves], pa.string()))
    rows = rows.filter(is_entry).sort_by([("strategy", "ascending"), ("customer_id", "ascending"),
                                                    ("as_of", "ascending"), ("wave", "ascending")])
    cols = {c: rows[c].to_pylist() for c in ("customer_id", "strategy", "wave", "as_of", "group", "status",
                                             "channel", "rm_id", "offer")}
    cols["cell"] = rows["cell"].to_pylist() if "cell" in rows.column_names else [None] * rows.num_rows
    # contacts (every wave) per (strategy, customer): their dates and costs, to add up inside each window
    spent: dict[tuple[str, str], list[tuple[dt.date, float]]] = {}
    for s, c, d, cost in zip(contacts["strategy"].to_pylist(), contacts["customer_id"].to_pylist(),
                             contacts["as_of"].to_pylist(), contacts["cost"].to_pylist(), strict=False):
        spent.setdefault((s, c), []).append((d, float(cost or 0.0)))
    out: dict[str, list[Any]] = {k: [] for k in ("customer_id", "strategy", "wave", "entry_date", "arm",
                                                 "planned_holdout", "cell", "channel",
                                                 "rm_id", "offer", "product_offer", "window_days", "window_end",
                                                 "observed_through", "complete", "contacted", "contacts", "cost")}
    kept: list[int] = []
    last: tuple[str, str] | None = None
    started: dt.date | None = None
    for i in range(rows.num_rows):
        sid, cid, day = cols["strategy"][i], cols["customer_id"][i], cols["as_of"][i]
        if (sid, cid) == last and started is not None and (day - started).days < strategies[sid].reentry_days:
            continue  # the same journey: a treated candidate stopped by a cap yesterday comes back today
        last, started = (sid, cid), day
        kept.append(i)
    for k, i in enumerate(kept):
        sid, cid, day = cols["strategy"][i], cols["customer_id"][i], cols["as_of"][i]
        s = strategies[sid]
        window = s.objective.window_days
        end = day + dt.timedelta(days=window)
        # a contact belongs to one entry: the window's, or the next entry's once that has begun
        following = kept[k + 1] if k + 1 < len(kept) else None
        stop = end
        if following is not None and (cols["strategy"][following], cols["customer_id"][following]) == (sid, cid):
            stop = min(end, cols["as_of"][following] - dt.timedelta(days=1))
        mine = [(d, c) for d, c in spent.get((sid, cid), []) if day <= d <= stop]
        out["customer_id"].append(cid)
        out["strategy"].append(sid)
        out["wave"].append(cols["wave"][i])
        out["entry_date"].append(day)
        out["arm"].append(cols["group"][i])
        out["planned_holdout"].append((holdouts or {}).get((day, sid), s.holdout))
        # selection cells: control entries carry the cell their selection put them in (the comparison is per cell)
        out["cell"].append(cols["cell"][i] if cols["group"][i] == "treated" or selection_cells(s) else None)
        out["channel"].append(cols["channel"][i] or "none")
        out["rm_id"].append(cols["rm_id"][i])
        out["offer"].append(cols["offer"][i])
        out["product_offer"].append(s.offer.product_id is not None)
        out["window_days"].append(window)
        out["window_end"].append(end)
        out["observed_through"].append(min(end, as_of))
        out["complete"].append(end <= as_of)
        out["contacted"].append(bool(mine))
        out["contacts"].append(len(mine))
        out["cost"].append(round(sum(c for _, c in mine), 6))
    types = {"entry_date": pa.date32(), "window_end": pa.date32(), "observed_through": pa.date32(),
             "window_days": pa.int32(), "contacts": pa.int32(), "cost": pa.float64(), "product_offer": pa.bool_(),
             "complete": pa.bool_(), "contacted": pa.bool_(), "planned_holdout": pa.float64()}
    return pa.table({k: pa.array(v, types.get(k, pa.string())) for k, v in out.items()})


def at_entry(entries_table: pa.Table, lake: Any, area: str, column: str) -> pa.Array:
    """Each entry's ``column`` (stage, tier) from the ``area`` snapshot of its entry date (null if none)."""
    import pyarrow as pa
    import pyarrow.parquet as pq


    days = entries_table["entry_date"].to_pylist()
    ids = entries_table["customer_id"].to_pylist()
    values: list[str | None] = [None] * len(days)
    published = set(lake.dates(area))
    by_day: dict[dt.date, list[int]] = {}
    for i, d in enumerate(days):
        by_day.setdefault(d, []).append(i)
    for d, rows in by_day.items():
        if d not in published:
            continue
        t = pq.read_table(lake.snapshot_file(area, d), columns=["customer_id", column])
        lookup = dict(zip(t["customer_id"].to_pylist(), t[column].to_pylist(), strict=False))
        for i in rows:
            values[i] = lookup.get(ids[i])
    return pa.array(values, pa.string())


# ------------------------------------------------------------------------------------------ measuring
def measure(engine: Any, entries_table: pa.Table, entries_file: Path) -> pa.Table:
    """Add the outcome columns to ``entries_table`` (written to ``entries_file``) from the registered bank views."""

    return measures.measure(engine, entries_table, entries_file).select(output_schema().names).cast(output_schema())


# ------------------------------------------------------------------------------------------ the step
def read_lists(lake: Any, as_of: dt.date) -> pa.Table:
    """Every day's lists strictly before ``as_of`` (only the columns entries need).

    Strictly before: the day's own lists are written later in the same run, so reading them would make
    a re-run of D differ from its first run; a day's entries are measured from the next day on."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = ["as_of", "customer_id", "strategy", "wave", "group", "cell", "status", "channel", "dropped_by", "rm_id",
               "offer", "cost"]
    parts = [_with_cell(pq.read_table(lake.snapshot_dir("lists", d) / "lists.parquet",
                                      columns=[c for c in columns if c != "cell"] + ["cell"] * _has_cell(lake, d)))
             for d in lake.dates("lists") if d < as_of]
    if not parts:

        return lists_schema().empty_table().select(columns)
    return pa.concat_tables(parts, promote_options="permissive")


def _has_cell(lake: Any, day: dt.date) -> bool:
    import pyarrow.parquet as pq

    return "cell" in pq.read_schema(lake.snapshot_dir("lists", day) / "lists.parquet").names


def _with_cell(t: pa.Table) -> pa.Table:
    """Lists written before cells existed have no ``cell`` column: every entry there is cell-less."""
    import pyarrow as pa

    return t if "cell" in t.column_names else t.append_column("cell", pa.nulls(t.num_rows, pa.string()))


def planned_holdouts(lake: Any, as_of: dt.date) -> dict[tuple[dt.date, str], float]:
    """(day, strategy) -> the control share of the map the audiences step stored that day (before ``as_of``).

    A bank that raises a holdout from 10% to 20% mid-flight has entries planned under both: the
    sample-ratio check must expect each entry's own share, not today's."""

    out: dict[tuple[dt.date, str], float] = {}
    shares: dict[bytes, dict[str, float]] = {}  # most days store the same map: parse each version once
    for day in lake.dates("audiences"):
        stored = lake.snapshot_dir("audiences", day) / "strategies.yaml"
        if day >= as_of or not stored.exists():
            continue  # audiences written before the copy was kept: the current map's share is used
        raw = stored.read_bytes()
        if raw not in shares:
            try:
                shares[raw] = {s.id: s.holdout for s in load_model(StrategiesConfig, stored)[0].strategies}
            except LifeloopError:
                shares[raw] = {}
        out.update({(day, sid): share for sid, share in shares[raw].items()})
    return out


def carried_over(lake: Any, as_of: dt.date) -> pa.Table | None:
    """The complete entries of the newest outcomes snapshot before ``as_of`` (their windows are closed)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq


    day = lake.previous_date(AREA, as_of)
    if day is None:
        return None
    t = pq.read_table(lake.snapshot_file(AREA, day))
    if t.schema.names != output_schema().names:
        return None  # written by an older release: measure everything again
    return t.filter(pc.equal(t["complete"], True))


def entries_with_outcomes(lake: Any, engine: Any, config: StrategiesConfig, as_of: dt.date, scratch: Path,
                          realtime: Path | None = None) -> pa.Table:
    """Entries before ``as_of`` with their outcomes (measuring only the entries not closed before).

    ``realtime``: the published real-time entries (``lifeloop.realtime.entries``), added to the lists' rows."""
    import pyarrow as pa
    import pyarrow.compute as pc


    rows = read_lists(lake, as_of)
    if realtime is not None:
        moments = realtime_entries.read(realtime, as_of, [s.id for s in config.strategies])
        rows = pa.concat_tables([rows, moments.select(rows.column_names).cast(rows.schema)])
    todo = entries(rows, config, as_of, planned_holdouts(lake, as_of))
    done = carried_over(lake, as_of)
    if done is not None and done.num_rows:
        key = lambda t: pc.binary_join_element_wise(  # noqa: E731
            t["strategy"], t["customer_id"], pc.cast(t["entry_date"], pa.string()),
            pc.cast(t["window_days"], pa.string()), "\x1f")
        closed = pc.is_in(key(todo), value_set=key(done))
        todo = todo.filter(pc.invert(closed))
    todo = todo.append_column("segment", at_entry(todo, lake, "segments", "tier"))
    todo = todo.append_column("stage", at_entry(todo, lake, "lifecycle", "stage"))
    if todo.num_rows:  # the bank's tables as of D are registered on the engine (the step declares bank=True)
        entries_file = scratch / "entries.parquet"  # no leading "_": Spark skips such files as hidden
        write_arrow(todo, entries_file)
        measured = measure(engine, todo, entries_file)
        entries_file.unlink()
    else:
        measured = output_schema().empty_table()
    if done is not None and done.num_rows:
        measured = pa.concat_tables([done, measured])
    return measured.sort_by([("strategy", "ascending"), ("entry_date", "ascending"), ("customer_id", "ascending")])


def summary(table: pa.Table) -> dict[str, Any]:
    """Entries per strategy and arm, and how many windows are still open."""
    import pyarrow.compute as pc

    out: dict[str, Any] = {"entries": table.num_rows,
                           "in_window": int(pc.sum(pc.invert(table["complete"])).as_py() or 0), "strategies": {}}
    for r in table.group_by(["strategy", "arm"]).aggregate([("customer_id", "count")]).to_pylist():
        out["strategies"].setdefault(r["strategy"], {})[r["arm"]] = r["customer_id_count"]
    return out


def compute(inputs: Inputs) -> Output:
    """Every strategy entry before D, treated and control, with its outcomes over its window so far."""
    with inputs.scratch() as scratch:
        moments = inputs.snapshots.get(realtime_entries.AREA)
        table = entries_with_outcomes(inputs.lake, inputs.engine, inputs.config("strategies"), inputs.as_of, scratch,
                                      moments.file if moments is not None else None)
    return Output(tables=[Table(AREA, table, (), output_schema())], summary=summary(table))


# Besides the declared snapshots, entries read every earlier day's lists, the map stored with that day's
# audiences (its planned holdout) and the stage and tier at entry: all strictly before D. The real-time entries
# (published by the daily run from the decider's records before its steps) are a declared read.
STEP = Step(AREA, compute, reads=(Read("lists", "before", optional=True), Read(AREA, "before"),
                                  Read(realtime_entries.AREA, "latest", optional=True)),
            configs={"strategies": StrategiesConfig}, writes=AREA, bank=True,
            doc="outcomes (效果): every strategy entry measured from the bank's data over its evaluation window")
