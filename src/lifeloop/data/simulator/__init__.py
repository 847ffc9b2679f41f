"""A simulated retail bank (模拟银行) whose customers live through hidden lifecycle states and answer
Lifeloop's contacts with a known, configurable response truth (docs/simulator.md).

``simulate(out, customers=..., days=..., seed=...)`` writes canonical extracts;
``SimulatedBank.open(out).advance(contacts)`` steps the bank forward one day.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifeloop.data.schema import TABLES
from lifeloop.data.simulator import stepping as S
from lifeloop.data.simulator import writer as W
from lifeloop.data.simulator.bank import BankEngine
from lifeloop.data.simulator.response import DEFAULT_TRUTH, load_truth
from lifeloop.data.simulator.stepping import advance, expected_effect, open_bank, open_meta, save
from lifeloop.data.simulator.summary import describe_simulation, summarise
from lifeloop.errors import ConfigError

DEFAULT_START = dt.date(2024, 1, 1)
FORMATS = ("parquet", "csv")


@dataclass
class SimulationResult:
    """What ``simulate`` wrote: where, up to which date, and a summary of the bank."""

    out: Path
    start: dt.date
    as_of: dt.date
    customers: int
    days: int
    seed: int
    rows: dict[str, int]
    summary: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def describe(self):
        """A short rich-printable summary: customers, tiers, stages, transactions, days."""

        return describe_simulation(self)


class SimulatedBank:
    """Step a simulated bank forward: ``bank = SimulatedBank.open(out); bank.advance(contacts)``."""

    def __init__(self, engine: Any, meta: dict[str, Any]):
        self._bank = engine
        self._meta = meta

    @classmethod
    def open(cls, out: str | Path) -> SimulatedBank:
        """Reopen the bank that ``simulate`` (and earlier ``advance`` calls) left in ``out``."""

        return cls(*open_bank(Path(out)))

    @property
    def next_date(self) -> dt.date:
        """The date the next ``advance`` simulates."""
        return self._bank.cal.date(self._bank.day)

    @property
    def as_of(self) -> dt.date:
        """The last simulated date."""
        return self._bank.cal.date(self._bank.day - 1)

    def advance(self, contacts: Any = None):
        """Simulate the next day with the day's contacts (customer_id, offer, channel, treated)."""

        return advance(self._bank, contacts)

    def reseed(self, seed: int) -> None:
        """Give the bank fresh chance from here on (a what-if branch of the same history); saved at once."""
        import numpy as np


        self._bank.rng = np.random.default_rng(seed)
        # the id counters on disk, not the ones read at open: an advance since then has moved them on
        _, meta = open_meta(self._bank.out)
        save(self._bank, self._bank.out, {k: v for k, v in meta.items() if k not in self._bank.meta()})

    def expected_effect(self, contacts: Any):
        """For verification only: the true expected incremental conversions and money of contacts."""

        return expected_effect(self._bank, contacts)


def simulate(out: Path, *, customers: int = 2000, days: int = 365, seed: int = 7, start: dt.date | None = None,
             format: str = "parquet", truth: str | Path | None = None, arrival_share: float | None = None,
             progress: Any = None) -> SimulationResult:
    """Simulate a bank for ``days`` days from ``start`` and write its canonical extracts to ``out``."""

    if customers < 1 or days < 1:
        raise ConfigError(f"cannot simulate {customers} customers over {days} days",
                          hint="use --customers and --days of at least 1")
    if format not in FORMATS:
        raise ConfigError(f"unknown format {format!r}", hint=f"choose one of: {', '.join(FORMATS)}")
    started = time.perf_counter()
    out = Path(out)
    start = start or DEFAULT_START
    truth_path = Path(truth) if truth else DEFAULT_TRUTH
    truth_model = load_truth(truth_path)
    if (out / "_sim" / "meta.json").exists():   # a previous simulation: none of its files apply any more
        for sub in ("days", "_sim", "_truth"):
            shutil.rmtree(out / sub, ignore_errors=True)

        for name in TABLES:
            for ext in FORMATS:
                (out / f"{name}.{ext}").unlink(missing_ok=True)
    bank, pop = BankEngine.create(customers=customers, days=days, seed=seed, start=start, truth=truth_model,
                                  arrival_share=arrival_share)
    for d in range(days):
        bank.step(snapshot_all=d == days - 1)
        if progress is not None:
            progress(d + 1, days)
    bank.out = out
    last = days - 1
    tables = {"branches": W.branches_table(pop), "relationship_managers": W.rms_table(pop),
              "customers": W.customers_table(pop, start, bank.c["prospect"], last), "products": W.products_table(),
              "consent": W.consent_table(pop, start, last)}
    bank.c["prospect_written"] = bank.c["prospect"].copy()   # what the customers extract says
    rows: dict[str, int] = {}
    sim_tables = out / "_sim" / "tables"
    for name, table in tables.items():
        W.write_table(table, sim_tables, name)
        if format == "parquet":
            out.mkdir(parents=True, exist_ok=True)
            S.link_or_copy(sim_tables / f"{name}.parquet", out / f"{name}.parquet")
        else:
            W.write_table(table, out, name, format)
        rows[name] = table.num_rows
    summary = summarise(bank)
    truth = W.truth_tables(bank)
    meta = {"format": format, "seed": seed, "customers": customers, "days": days, "next_txn": 1, "next_event": 1}
    rows.update(S.write_facts(bank, out, out, format, meta, changed_only=False))
    for name, table in truth.items():
        W.write_table(table, out / "_truth", name)
    (out / "_sim").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(truth_path, out / "_sim" / "truth.yaml")
    for buf in (bank.conversions, bank.changes, bank.states):
        buf.chunks.clear()
    S.save(bank, out, meta)
    as_of = start + dt.timedelta(days=last)
    (out / "_sim" / "summary.json").write_text(json.dumps({"as_of": as_of.isoformat(), "rows": rows, **summary},
                                                          indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return SimulationResult(out, start, as_of, customers, days, seed, rows, summary,
                            round(time.perf_counter() - started, 2))
