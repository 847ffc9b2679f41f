"""Evidence for the plan (复盘反哺): observed uplift per strategy, entry wave, channel and segment.

The review feeds the next plan: arbitration's expected uplift starts from each strategy's prior and
moves toward what Lifeloop measured (strategy/learning.py shrinks it while evidence is thin). This
module turns the newest ``outcomes`` snapshot on or before D into that evidence: for entries whose
window has closed, the success rate of treated and control customers and the difference, with its
standard error (sqrt(p1 (1 - p1) / n1 + p0 (1 - p0) / n0), the usual large-sample one — it only
weighs evidence against the prior; intervals shown to people come from review/evaluation.py).

Success is a purchase of the offered product for a product offer, else the strategy's primary
outcome when it is a yes/no one, else "made a transaction of their own". Channel is the entry's:
the channel the treated customer was contacted on, or the one a control customer would have been;
treated customers no channel reached (stopped by capacity) are left out of the per-channel rows.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any

from lifeloop.config.strategies import StrategiesConfig
from lifeloop.contract import Inputs, Output, Read, Step, Table
from lifeloop.review.lake_evaluation import primary_outcome
from lifeloop.review.outcomes import AREA

if TYPE_CHECKING:
    import pyarrow as pa

    from lifeloop.config.strategies import StrategiesConfig

EVIDENCE = "evidence"
BINARY = ("purchased", "active", "reactivated", "retained")


def schema() -> pa.Schema:
    """Columns of the evidence table."""
    import pyarrow as pa

    s, i, f = pa.string(), pa.int64(), pa.float64()
    return pa.schema([("strategy", s), ("wave", s), ("channel", s), ("segment", s), ("treated", i), ("control", i),
                      ("treated_rate", f), ("control_rate", f), ("uplift", f), ("se", f)])


def success_outcome(strategy: Any) -> str:
    """The yes/no outcome whose uplift arbitration values (see the module doc)."""

    if strategy.offer.product_id:
        return "purchased"
    primary = primary_outcome(strategy)
    return primary if primary in BINARY else "active"


def from_outcomes(outcomes: pa.Table, config: StrategiesConfig) -> pa.Table:
    """Pure: the evidence rows from an outcomes table (closed windows only)."""
    import pyarrow as pa

    known = {s.id: s for s in config.strategies}
    closed = outcomes.filter(outcomes["complete"]) if outcomes.num_rows else outcomes
    cols = {c: closed[c].to_pylist() for c in ("strategy", "wave", "channel", "segment", "arm")}
    found: dict[str, list[bool | None]] = {}
    counts: dict[tuple[str, str, str, str], list[int]] = {}
    for i, sid in enumerate(cols["strategy"]):
        s = known.get(sid)
        if s is None or cols["channel"][i] in (None, "none"):
            continue
        name = success_outcome(s)
        if name not in found:
            found[name] = closed[name].to_pylist()
        hit = found[name][i]
        if hit is None:
            continue
        key = (sid, cols["wave"][i], cols["channel"][i], cols["segment"][i] or "-")
        c = counts.setdefault(key, [0, 0, 0, 0])  # treated, treated successes, control, control successes
        j = 0 if cols["arm"][i] == "treated" else 2
        c[j] += 1
        c[j + 1] += int(bool(hit))
    rows = []
    for (sid, wave, channel, segment), (nt, st, nc, sc) in sorted(counts.items()):
        pt = st / nt if nt else None
        pc_ = sc / nc if nc else None
        uplift = pt - pc_ if pt is not None and pc_ is not None else None
        se = math.sqrt(pt * (1 - pt) / nt + pc_ * (1 - pc_) / nc) if uplift is not None else None
        rows.append({"strategy": sid, "wave": wave, "channel": channel, "segment": segment, "treated": nt,
                     "control": nc, "treated_rate": pt, "control_rate": pc_, "uplift": uplift, "se": se})
    return pa.Table.from_pylist(rows, schema=schema()) if rows else schema().empty_table()


def uplift_evidence(lake: Any, as_of: dt.date, config: StrategiesConfig) -> pa.Table:
    """The evidence from the newest outcomes snapshot on or before ``as_of`` (empty if there is none)."""
    import pyarrow.parquet as pq


    days = [d for d in lake.dates(AREA) if d <= as_of]
    if not days:
        return schema().empty_table()
    table = pq.read_table(lake.snapshot_file(AREA, days[-1]))
    return from_outcomes(table, config)


def compute(inputs: Inputs) -> Output:
    """The evidence the plan learns from, as of D: from the newest outcomes snapshot on or before D."""
    found = inputs.snapshots.get(AREA)
    config = inputs.config("strategies")
    table = from_outcomes(found.read(), config) if found is not None else schema().empty_table()
    return Output(tables=[Table(EVIDENCE, table, ("strategy", "wave", "channel", "segment"), schema())],
                  summary={"cells": table.num_rows})


STEP = Step(EVIDENCE, compute, reads=(Read(AREA, "latest", optional=True),), configs={"strategies": StrategiesConfig},
            writes=EVIDENCE,
            doc="evidence (复盘反哺): observed uplift per strategy, wave, channel and segment, for the plan")
