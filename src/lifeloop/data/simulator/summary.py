"""Summaries of a simulated bank: counts by hidden stage and value tier, and a rich table for the terminal."""

from __future__ import annotations

from typing import Any

import numpy as np

from lifeloop.data.simulator import products as P
from lifeloop.data.simulator.lifecycle import STAGES
from lifeloop.data.simulator.population import TIERS, tier_of


def summarise(bank: Any) -> dict[str, Any]:
    """Counts by hidden stage and value tier at the end (for describe())."""
    c = bank.c
    here = c["stage"] >= 0
    stages = np.bincount(c["stage"][here], minlength=len(STAGES))
    acc = bank.books.acc
    aum = np.zeros(len(c["stage"]))
    m = acc.is_open & P.IS_ASSET[acc.prod]
    np.add.at(aum, acc.cust[m], acc.bal[m] / 100)
    holders = here & (c["primary"] >= 0) & (c["stage"] != STAGES.index("churned"))
    tiers = np.bincount(tier_of(aum[holders]), minlength=4)
    return {"stages": {s: int(v) for s, v in zip(STAGES, stages, strict=False)},
            "tiers": {t: int(v) for t, v in zip(TIERS, tiers, strict=False)},
            "payroll": int(c["payroll"][here].sum()), "aum": float(aum.sum())}


def describe_simulation(result: Any) -> Any:
    """A short summary table: customers, tiers, stages, rows written, days."""
    from rich.table import Table

    s = result.summary
    t = Table(title=f"Simulated bank: {result.customers:,} customers, {result.days} days "
                    f"({result.start} .. {result.as_of}), seed {result.seed}", title_justify="left")
    t.add_column("what")
    t.add_column("count", justify="right")
    t.add_column("share", justify="right")
    tiers = s.get("tiers", {})
    total_t = sum(tiers.values()) or 1
    for name, v in tiers.items():
        t.add_row(f"tier {name}", f"{v:,}", f"{v / total_t:.1%}")
    stages = s.get("stages", {})
    total_s = sum(stages.values()) or 1
    for name, v in stages.items():
        t.add_row(f"hidden stage {name}", f"{v:,}", f"{v / total_s:.1%}")
    t.add_row("payroll customers (代发)", f"{s.get('payroll', 0):,}", f"{s.get('payroll', 0) / total_s:.1%}")
    for name, v in result.rows.items():
        t.add_row(f"rows {name}", f"{v:,}", "")
    t.caption = f"written to {result.out} in {result.seconds:.1f}s; hidden truth in {result.out}/_truth"
    return t
