"""The plan (执行名单): from audiences to lists — holdout, arbitration, contact policy, capacity.

Writes ``lake/lists/as_of=D/lists.parquet`` with one row per (customer, strategy, wave) of the day's
audiences:

* ``group`` — treated or control (holdout by hash, see holdout.py); ``cell`` — the treated customer's
  cell of a strategy with cells (a second hash draw, holdout.py; null for control and without cells);
  with selection cells (``select:``) the cell the audiences step found by the cells' rules, on the
  control rows too (the same holdout draw decides treated or control whatever the cell);
  ``status`` — contact (goes out), control (held out, would have been contactable), or dropped;
* ``channel``, ``send_at``, ``purpose`` (the consent purpose dispatch re-checks), ``script_id``, ``script_key``
  (the key dispatch renders the script under), ``offer``, ``priority``, ``expected_value``, ``cost``;
* ``dropped_by`` (the policy that stopped it) and ``detail`` (every channel tried and why), so "why
  wasn't this customer contacted?" always has an answer; ``reason`` says why they were eligible;
* rights (strategy/rights.py) run first: a customer kept out of marketing after a purge is dropped from
  marketing strategies (``suppressed``), one who opted out of personalised marketing from personalised
  strategies (``no_personalisation``); neither takes a cap, capacity or holdout slot;
* ``suitability`` — the suitability outcome of a product offer (see suitability.py; null for offers
  that are not products). Suitability runs on every candidate before arbitration: an unsuitable one
  is dropped with ``dropped_by = "suitability"`` and takes no cap, capacity or holdout slot. Customers
  whose missing or expired assessment blocked an offer get a task in ``reassessments.parquet``.

``expected_value`` is the learned value (learning.py) of the row's customer segment (value tier),
and ``values.parquet`` next to the lists keeps the whole learned-values table of the day (prior,
evidence, weight, uplift used), so ``lifeloop why`` can show it months later.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from lifeloop.config.contact_policy import ContactPolicy
from lifeloop.config.scripts import script_id
from lifeloop.config.strategies import StrategiesConfig, Strategy, Wave, selection_cells
from lifeloop.contract import Inputs, Output, Read, Snapshot, Step, Table
from lifeloop.data.areas import lists_schema
from lifeloop.strategy import rights, suitability
from lifeloop.strategy.arbitration import expected_value
from lifeloop.strategy.checks import check_structure
from lifeloop.strategy.history import History
from lifeloop.strategy.holdout import draws, in_cell_journey, row_cells
from lifeloop.strategy.learning import ValueLookup, learned_values, values_schema
from lifeloop.strategy.policy import decide

if TYPE_CHECKING:
    import pyarrow as pa

    from lifeloop.store.lake import Lake

AREA = "lists"


def output_schema() -> pa.Schema:
    """Columns of ``lake/lists/as_of=D/lists.parquet`` (declared with the data in lifeloop.data.areas)."""
    return lists_schema()


def strategy_waves(rows: pa.Table, config: StrategiesConfig) -> Iterator[tuple[Strategy, Wave, pa.Array]]:
    """Each (strategy, wave) of the rows that the map still has, with the mask of its rows."""
    import pyarrow.compute as pc

    keys = pc.binary_join_element_wise(rows["strategy"], rows["wave"], "\x1f")
    for key in pc.unique(keys).to_pylist():
        sid, wid = key.split("\x1f")
        s = config.strategy(sid)
        w = s.wave(wid) if s else None
        if s is None or w is None:
            continue  # a strategy (or wave) removed from the map since: nothing to plan
        yield s, w, pc.equal(keys, key)


def candidates(audiences: pa.Table, config: StrategiesConfig, policy: ContactPolicy,
               values: pa.Table | None = None, tiers: pa.Table | None = None) -> pa.Table:
    """One candidate per audience row: channels in priority order, values per channel, holdout draw.

    ``values`` is a learned-values table (learning.py; default: the configured priors) and ``tiers``
    (customer_id, tier) the day's value tiers, so a row's values are those of its customer's segment.
    """
    import numpy as np
    import pyarrow as pa

    lookup = ValueLookup(values) if values is not None else None
    segment = row_segments(audiences, tiers) if lookup is not None and lookup.varies else None
    parts = []
    for s, w, mask in strategy_waves(audiences, config):
        rows = audiences.filter(mask)
        n = rows.num_rows
        chans = s.channels_of(w)
        mat = value_matrix(s, w.id, chans, policy, lookup, segment.filter(mask) if segment is not None else None, n,
                           row_values(rows, s))
        k = len(chans)
        vals = pa.ListArray.from_arrays(pa.array(np.arange(0, n * k + 1, k, dtype=np.int32)),
                                        pa.array(mat.ravel(), pa.float64()))
        d = draws(rows["customer_id"].to_pylist(), s.id, config.holdout_salt)
        parts.append(pa.table({
            "customer_id": rows["customer_id"], "strategy": rows["strategy"], "wave": rows["wave"],
            "rm_id": rows["rm_id"], "reason": rows["reason"],
            "draw": pa.array(d, pa.float64()), "tie": pa.array(d, pa.float64()),
            "control": pa.array([x < s.holdout for x in d], pa.bool_()),
            "priority": pa.array([s.priority] * n, pa.int32()),
            "purpose": pa.array([policy.purpose(s.objective.kind, s.purpose)] * n, pa.string()),
            "channels": pa.array([chans] * n, pa.list_(pa.string())),
            "values": vals,
            "best_value": pa.array(mat.max(axis=1) if n else [], pa.float64()),
            "send_at": pa.array([w.send_at] * n, pa.string()),
            "offer": pa.array([s.offer.product_id or s.offer.code] * n, pa.string()),
            "product_offer": pa.array([s.offer.product_id is not None] * n, pa.bool_()),
            # a selection cell (the audiences step found it by its select rule, before the holdout draw)
            "cell": (rows["cell"] if "cell" in rows.column_names and selection_cells(s)
                     else pa.nulls(n, pa.string()))}))
    if not parts:
        return candidates_schema().empty_table()
    return pa.concat_tables(parts)


def row_segments(rows: pa.Table, tiers: pa.Table | None) -> pa.Array | None:
    """Each row's customer's value tier of the day (null when unknown), or None without tiers."""
    import pyarrow.compute as pc

    if tiers is None or not tiers.num_rows:
        return None
    return pc.take(tiers["tier"], pc.index_in(rows["customer_id"], value_set=tiers["customer_id"]))


def value_matrix(s: Any, wave_id: str, chans: list[str], policy: ContactPolicy, lookup: ValueLookup | None,
                 segment: pa.Array | None, n: int, value: pa.ChunkedArray | None = None) -> Any:
    """(n, channels) expected values of ``n`` rows of one strategy wave: learned per segment, else the priors.

    With ``value`` (each row's customer's value of a success, ``expected.value_by``; null: ``expected.value``)
    a row's expected value is the uplift (learned per segment, else the prior) x its value - the channel's cost.
    """
    import numpy as np
    import pyarrow.compute as pc

    if value is None:
        priors = [expected_value(s, ch, policy) for ch in chans]
        if lookup is None:
            return np.tile(np.asarray(priors, dtype=np.float64), (n, 1))
        return lookup.matrix(s.id, wave_id, chans, segment, n, priors)
    prior_uplift = [s.expected.uplift_for(ch) for ch in chans]
    uplift = (np.tile(np.asarray(prior_uplift, dtype=np.float64), (n, 1)) if lookup is None else
              lookup.matrix(s.id, wave_id, chans, segment, n, prior_uplift, column="uplift"))
    worth = pc.fill_null(value, float(s.expected.value)).to_numpy(zero_copy_only=False).astype(np.float64)
    cost = np.asarray([float(policy.channel(ch).cost) for ch in chans], dtype=np.float64)
    return np.round(uplift * worth[:, None] - cost[None, :], 6)


def row_values(rows: pa.Table, s: Any) -> pa.ChunkedArray | None:
    """The rows' values of a success when the strategy has ``expected.value_by`` and the rows carry them."""
    if s.expected.value_by is None or "value" not in rows.column_names:
        return None
    return rows["value"]


def best_values(rows: pa.Table, config: StrategiesConfig, policy: ContactPolicy, values: pa.Table | None,
                tiers: pa.Table | None) -> pa.Array:
    """The arbitration value (best channel's expected value) of each (customer_id, strategy, wave) row."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    lookup = ValueLookup(values) if values is not None else None
    segment = row_segments(rows, tiers) if lookup is not None and lookup.varies else None
    out = np.full(rows.num_rows, -np.inf)
    for s, w, mask in strategy_waves(rows, config):
        where = pc.indices_nonzero(mask).to_numpy()
        mat = value_matrix(s, w.id, s.channels_of(w), policy, lookup,
                           segment.filter(mask) if segment is not None else None, len(where),
                           row_values(rows.filter(mask), s))
        out[where] = mat.max(axis=1)
    return pa.array(out, pa.float64())


def candidates_schema() -> pa.Schema:
    """Columns of the candidates table that :func:`lifeloop.strategy.policy.decide` reads."""
    import pyarrow as pa

    s = pa.string()
    return pa.schema([("customer_id", s), ("strategy", s), ("wave", s), ("rm_id", s), ("reason", s),
                      ("draw", pa.float64()), ("tie", pa.float64()), ("control", pa.bool_()),
                      ("priority", pa.int32()), ("purpose", s), ("channels", pa.list_(s)),
                      ("values", pa.list_(pa.float64())), ("best_value", pa.float64()), ("send_at", s),
                      ("offer", s), ("product_offer", pa.bool_()), ("cell", s)])


def spent_so_far(history: History, policy: ContactPolicy) -> dict[str, float]:
    """Money each strategy has spent on contacts in the history window (channel unit costs)."""
    from collections import Counter

    c = history.contacts
    counts = Counter((s, ch) for s, ch, treated in zip(c["strategy"].to_pylist(), c["channel"].to_pylist(),
                                                       c["treated"].to_pylist(), strict=False) if treated)
    out: dict[str, float] = {}
    for (s, ch), k in counts.items():
        out[s] = out.get(s, 0.0) + k * policy.channel(ch).cost
    return out


def screened(cands: pa.Table, verdict: suitability.Verdict, decide_rest: Any,
             rights: list[tuple[str, str] | None] | None = None) -> pa.Table:
    """Run the policy on the candidates that pass the customer's rights and suitability only.

    A candidate ``rights`` names (``suppressed``, ``no_personalisation``: strategy/rights.py) is dropped by
    that policy; an unsuitable one by ``suitability``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rights = rights or [None] * cands.num_rows
    allowed = np.asarray(verdict.allowed, dtype=bool) & np.fromiter((r is None for r in rights), dtype=bool,
                                                                    count=len(rights))
    if allowed.all():
        return decide_rest(cands)
    rest = decide_rest(cands.filter(pa.array(allowed)))
    # row i of the day takes row where[i] of the decided ones (null: refused by the rights or suitability)
    where = pa.array(np.cumsum(allowed) - 1, pa.int64(), mask=~allowed)
    blocked = pa.array(~allowed)
    by = pa.array([None if ok else r[0] if r else "suitability" for ok, r in zip(allowed, rights, strict=True)],
                  pa.string())
    why = pa.array([None if ok else r[1] if r else f"suitability: {o} ({d})"
                    for ok, r, o, d in zip(allowed, rights, verdict.outcome, verdict.detail, strict=True)], pa.string())
    cols = {name: pc.take(rest[name], where) for name in rest.column_names}
    cols["status"] = pc.if_else(blocked, "dropped", cols["status"])
    cols["dropped_by"] = pc.if_else(blocked, by, cols["dropped_by"])
    cols["detail"] = pc.if_else(blocked, why, cols["detail"])
    cols["cost"] = pc.if_else(blocked, 0.0, cols["cost"])
    return pa.table({name: cols[name] for name in rest.column_names}, schema=rest.schema)


def make_lists(audiences: pa.Table, config: StrategiesConfig, policy: ContactPolicy, history: History,
               as_of: dt.date, rm_capacity: Mapping[str, int] | None = None,
               customers: pa.Table | None = None, products: pa.Table | None = None,
               values: pa.Table | None = None, tiers: pa.Table | None = None) -> pa.Table:
    """The day's lists from the audiences: pure, no I/O (the step below adds the reading and writing).

    ``customers`` and ``products`` feed suitability; without them no customer counts as assessed
    and no product is known, so only offers that are not products can go out. ``values`` is the
    learned-values table (:func:`lifeloop.strategy.learning.learned_values`; default: the priors) and
    ``tiers`` (customer_id, tier) the day's value tiers its segment rows apply to.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    active = {s.id: s for s in config.strategies}
    audiences = in_cell_journey(audiences, config)  # a cell's customers are no candidates for waves it skips
    cands = candidates(audiences, config, policy, values, tiers)
    verdict = suitability.check(customers, products, cands, as_of, policy.suitability.extra_rules)
    decided = screened(cands, verdict, lambda c: decide(c, history, policy, active, as_of, rm_capacity,
                                                        spent_so_far(history, policy)),
                       rights.blocks(cands, history, config))
    n = cands.num_rows
    cell = (row_cells(cands["customer_id"].to_pylist(), cands["strategy"].to_pylist(), cands["control"].to_pylist(),
                      config) if any(s.cells for s in config.strategies) else [None] * n)
    # selection cells: treated and control rows alike carry the cell their selection put them in
    cell = [own if own is not None else drawn for own, drawn in zip(cands["cell"].to_pylist(), cell, strict=True)]
    sid = [None if ch is None else script_id(s, ch, c if c is not None and own_script(config, s, c, ch) else None)
           for s, ch, c in zip(cands["strategy"].to_pylist(), decided["channel"].to_pylist(), cell, strict=False)]
    key = [None if i is None else f"{i}@{as_of.isoformat()}#{c}"
           for i, c in zip(sid, cands["customer_id"].to_pylist(), strict=False)]
    table = pa.table({
        "as_of": pa.array([as_of] * n, pa.date32()), "customer_id": cands["customer_id"],
        "strategy": cands["strategy"], "wave": cands["wave"],
        "group": pc.if_else(cands["control"], "control", "treated"), "cell": pa.array(cell, pa.string()),
        "status": decided["status"],
        "channel": decided["channel"], "send_at": decided["send_at"], "purpose": cands["purpose"],
        "script_id": pa.array(sid, pa.string()),
        "script_key": pa.array(key, pa.string()), "offer": cands["offer"], "priority": cands["priority"],
        "expected_value": decided["expected_value"], "cost": decided["cost"], "holdout_draw": cands["draw"],
        "dropped_by": decided["dropped_by"], "detail": decided["detail"], "reason": cands["reason"],
        "rm_id": cands["rm_id"],
        "suitability": pa.array([None if o == suitability.NOT_SUBJECT else o for o in verdict.outcome], pa.string())},
        schema=output_schema())
    return table.sort_by([("strategy", "ascending"), ("wave", "ascending"), ("customer_id", "ascending")])


def own_script(config: StrategiesConfig, strategy_id: str, cell: str, channel: str) -> bool:
    """The cell has its own script for the channel (then the script id names the cell)."""
    s = config.strategy(strategy_id)
    c = s.cell(cell) if s is not None else None
    return c is not None and channel in c.scripts


def summary(table: pa.Table) -> dict[str, Any]:
    """Counts per status, per dropping policy, and contacts per channel."""
    import pyarrow.compute as pc

    def vc(col: pa.ChunkedArray) -> dict[str, int]:
        return {r["values"]: r["counts"] for r in sorted(col.drop_null().value_counts().to_pylist(),
                                                          key=lambda r: r["values"])}

    contacts = table.filter(pc.equal(table["status"], "contact"))
    out = {"status": vc(table["status"]), "dropped_by": vc(table["dropped_by"]), "channels": vc(contacts["channel"]),
           "cost": round(float(pc.sum(table["cost"]).as_py() or 0.0), 2)}
    if table["cell"].null_count < table.num_rows:   # only maps with cells: a map without keeps its summary
        out["cells"] = vc(pc.binary_join_element_wise(table["strategy"], table["cell"], "/"))
    return out


def rm_capacity_of(relationship_managers: pa.Table) -> dict[str, int]:
    """Each relationship manager's daily task capacity (rm_id, daily_capacity); a null capacity is left out."""
    t = relationship_managers
    return {r: c for r, c in zip(t["rm_id"].to_pylist(), t["daily_capacity"].to_pylist(), strict=False)
            if c is not None}


def rm_capacities(engine: Any) -> dict[str, int]:
    """Each relationship manager's daily task capacity from the bank's data (registered bank views)."""
    return rm_capacity_of(engine.to_arrow(exp.select("rm_id", "daily_capacity").from_("relationship_managers")))


def suitability_inputs(engine: Any) -> tuple[pa.Table, pa.Table]:
    """Customers' risk assessments (and birth dates) and products' risk ratings, from the bank's data."""
    customers = engine.to_arrow(exp.select("customer_id", "risk_level", "risk_assessed_on", "risk_expires_on",
                                           "birth_date").from_("customers"))
    products = engine.to_arrow(exp.select("product_id", "product_type", "risk_level").from_("products"))
    return customers, products


@dataclass(frozen=True)
class BankLookups:
    """The small bank tables the plan looks things up in (Arrow): suitability and RM capacity.

    ``customers``: customer_id, risk_level, risk_assessed_on, risk_expires_on, birth_date;
    ``products``: product_id, product_type, risk_level; ``relationship_managers``: rm_id, daily_capacity.
    """

    customers: pa.Table
    products: pa.Table
    relationship_managers: pa.Table


def bank_lookups(engine: Any) -> BankLookups:
    """The plan's bank look-ups through the engine (the bank's views as of D are registered): the one I/O."""
    customers, products = suitability_inputs(engine)
    rms = engine.to_arrow(exp.select("rm_id", "daily_capacity").from_("relationship_managers"))
    return BankLookups(customers, products, rms)


def day_tiers(lake: Lake, as_of: dt.date) -> pa.Table | None:
    """(customer_id, tier) from the day's segments snapshot, or None when there is none (outside a step)."""
    if not lake.exists("segments", as_of):
        return None
    return tiers_of(Snapshot("segments", as_of, None, lake.snapshot_file("segments", as_of)))


def tier_names(tiers: pa.Table | None) -> list[str]:
    """The distinct value tiers of the day (the segments learned values are kept for)."""
    import pyarrow.compute as pc

    if tiers is None:
        return []
    return sorted(t for t in pc.unique(tiers["tier"]).to_pylist() if t is not None)


def day_evidence(lake: Lake, as_of: dt.date) -> pa.Table | None:
    """The review's treated-vs-control evidence (lake/evidence, newest on or before D), or None without one."""
    import pyarrow.parquet as pq

    day = lake.latest_date("evidence", as_of)
    return pq.read_table(lake.snapshot_file("evidence", day)) if day else None


def tiers_of(segments: Snapshot | None) -> pa.Table | None:
    """(customer_id, tier) from a segments snapshot, or None without one (or without tiers)."""
    if segments is None or "tier" not in segments.schema().names:
        return None
    return segments.read(["customer_id", "tier"])


def decide_lists(audiences: pa.Table, config: StrategiesConfig, policy: ContactPolicy, history: History,
                 as_of: dt.date, bank: BankLookups, evidence: pa.Table | None = None,
                 tiers: pa.Table | None = None) -> Output:
    """Pure: the plan step's output from Arrow tables (no lake, database or engine).

    Audiences -> lists (treated / control / dropped with reasons), suitability reassessment tasks, and the
    learned values of the day (from ``evidence``, per value tier of ``tiers``)."""
    import pyarrow.compute as pc

    values = learned_values(config, policy, evidence, tier_names(tiers))
    table = make_lists(audiences, config, policy, history, as_of, rm_capacity_of(bank.relationship_managers),
                       bank.customers, bank.products, values, tiers)
    tasks = suitability.reassessments(table, bank.customers, as_of)
    found = summary(table)
    found["reassessments"] = tasks.num_rows
    found["evidence_cells"] = int(pc.sum(values["evidence_used"]).as_py() or 0)
    return Output(tables=[Table(AREA, table, (), output_schema()),
                          Table("reassessments", tasks, (), suitability.reassessment_schema()),
                          Table("values", values, (), values_schema())],
                  manifest={"summary": found}, summary=found)


def compute(inputs: Inputs) -> Output:
    """Audiences -> treated / control / dropped lists (arbitration, contact policy, capacity, holdout).

    A thin wrapper: reads the declared ports (history, the bank's look-ups on the engine, snapshots),
    then hands Arrow tables to :func:`decide_lists`."""
    as_of = inputs.as_of
    config, doc = inputs.config("strategies"), inputs.doc("strategies")
    policy = inputs.config("contact_policy")
    check_structure(config, doc, policy)
    history = inputs.history.load(as_of, policy.lookback_days)
    found_evidence = inputs.snapshots.get("evidence")
    return decide_lists(inputs.snapshot("audiences").read(), config, policy, history, as_of,
                        bank_lookups(inputs.engine), found_evidence.read() if found_evidence is not None else None,
                        tiers_of(inputs.snapshots.get("segments")))


STEP = Step("plan", compute,
            reads=(Read("audiences"), Read("segments", optional=True), Read("evidence", "latest", optional=True)),
            configs={"strategies": StrategiesConfig, "contact_policy": ContactPolicy}, writes=AREA, bank=True,
            history=True, doc="plan (定策略): arbitration, caps, quiet hours, consent, DND, capacity, hashed holdout")
