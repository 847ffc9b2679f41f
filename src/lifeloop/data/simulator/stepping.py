"""Saving, reopening and stepping the simulated bank forward one day with Lifeloop's contacts.

The closed loop: Lifeloop plans -> dispatches contacts -> ``advance(contacts)`` simulates the next
day with the treatment effects and writes ``out/days/YYYY-MM-DD/`` (a canonical folder that
``lifeloop ingest out/days/YYYY-MM-DD --as-of YYYY-MM-DD`` loads as a new batch).
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lifeloop.data.simulator import writer as W
from lifeloop.data.simulator.bank import SOURCES, BankEngine
from lifeloop.data.simulator.response import CHANNELS, load_truth
from lifeloop.errors import DataError, Problem

if TYPE_CHECKING:
    import datetime as dt

    from lifeloop.data.simulator.bank import BankEngine

STATE_TABLES = ("branches", "relationship_managers", "customers", "products", "consent")
MAX_PROBLEMS = 20


@dataclass
class DayResult:
    """What one ``advance`` did: the date, the folder written, rows per table, contacts and conversions."""

    date: dt.date
    folder: Path
    rows: dict[str, int]
    contacts: int
    conversions: dict[str, int] = field(default_factory=dict)


@dataclass
class ExpectedEffect:
    """The true expected effect of contacts (for verification only): per row and in total."""

    rows: pa.Table
    incremental_conversions: float
    incremental_money: float
    treated_rate: float | None
    control_rate: float | None


def sim_dir(out: Path) -> Path:
    """Where the simulator keeps its state (ingest skips names starting with '_')."""
    return out / "_sim"


def save(bank: BankEngine, out: Path, extra: dict[str, Any]) -> None:
    """Persist the bank's state in ``out/_sim`` (NumPy arrays + JSON scalars)."""
    d = sim_dir(out)
    d.mkdir(parents=True, exist_ok=True)
    # write aside, then rename: a crash mid-save leaves the previous day's state intact
    with open(d / "state.tmp.npz", "wb") as fh:
        np.savez(fh, **bank.state_arrays())
    meta = {**bank.meta(), **extra}
    (d / "meta.tmp.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(d / "state.tmp.npz", d / "state.npz")
    os.replace(d / "meta.tmp.json", d / "meta.json")


def open_bank(out: Path) -> tuple[BankEngine, dict[str, Any]]:
    """Reopen a bank written by ``simulate`` (or a previous ``advance``)."""

    d = sim_dir(out)
    if not (d / "meta.json").exists():
        raise DataError(f"{out}: no simulated bank here (missing _sim/meta.json)",
                        hint="run `lifeloop simulate --out DIR` first, then advance that DIR")
    meta = json.loads((d / "meta.json").read_text(encoding="utf-8"))
    with np.load(d / "state.npz") as z:
        arrays = {k: z[k] for k in z.files}
    bank = BankEngine.from_state(arrays, meta, load_truth(d / "truth.yaml"))
    bank.out = out
    return bank, meta


def parse_contacts(bank: BankEngine, contacts: Any) -> dict[str, np.ndarray]:
    """Contacts (Arrow table, list of dicts or dict of lists) -> customer, offer, channel, treated arrays."""
    if contacts is None:
        contacts = []
    if isinstance(contacts, list):
        contacts = pa.Table.from_pylist(contacts) if contacts else pa.table(
            {"customer_id": pa.array([], pa.string()), "offer": pa.array([], pa.string()),
             "channel": pa.array([], pa.string()), "treated": pa.array([], pa.bool_())})
    elif isinstance(contacts, dict):
        contacts = pa.table(contacts)
    elif not isinstance(contacts, pa.Table):
        contacts = pa.Table.from_pandas(contacts)   # a pandas DataFrame from a notebook
    missing = [c for c in ("customer_id", "offer", "channel", "treated") if c not in contacts.column_names]
    if missing:
        raise DataError(f"contacts: required column {missing[0]} missing",
                        hint="contacts need customer_id, offer, channel and treated columns")
    ids = [str(x) for x in contacts["customer_id"].to_pylist()]
    offers = [str(x) for x in contacts["offer"].to_pylist()]
    channels = [str(x) for x in contacts["channel"].to_pylist()]
    treated = np.array([bool(x) for x in contacts["treated"].to_pylist()], bool)
    problems: list[Problem] = []
    n_cust = len(bank.c["stage"])
    cust = np.full(len(ids), -1, np.int64)
    for i, cid in enumerate(ids):
        if len(cid) == 10 and cid[0] == "C" and cid[1:].isdigit() and 0 < int(cid[1:]) <= n_cust \
                and bank.c["stage"][int(cid[1:]) - 1] >= 0:
            cust[i] = int(cid[1:]) - 1
        else:
            problems.append(Problem(f"unknown customer {cid!r}", table="contacts", row=i + 1, column="customer_id"))
    t = bank.truth
    by_product = {o.product_id: name for name, o in t.truth.offers.items() if o.product_id}
    offer = np.full(len(ids), -1, np.int64)
    for i, o in enumerate(offers):
        name = o if o in t.index else by_product.get(o)
        if name is None:
            close = difflib.get_close_matches(o, list(t.index) + list(by_product), n=1)
            msg = f"unknown offer {o!r}" + (f"; did you mean {close[0]!r}?" if close else "")
            problems.append(Problem(msg, table="contacts", row=i + 1, column="offer"))
        else:
            offer[i] = t.index[name]
    channel = np.full(len(ids), -1, np.int64)
    for i, ch in enumerate(channels):
        if ch in CHANNELS:
            channel[i] = CHANNELS.index(ch)
        else:
            problems.append(Problem(f"unknown channel {ch!r} (channels: {', '.join(CHANNELS)})", table="contacts",
                                    row=i + 1, column="channel"))
    if problems:
        problems.sort(key=lambda p: p.row or 0)
        raise DataError(f"contacts: {len(problems)} problem(s); first: {problems[0]}", problems=problems[:MAX_PROBLEMS],
                        total=len(problems), hint=f"offers are: {', '.join(t.offers)} (or their product ids)")
    return {"cust": cust, "offer": offer, "channel": channel, "treated": treated}


def expected_effect(bank: BankEngine, contacts: Any) -> ExpectedEffect:
    """True expected incremental conversions and money if ``contacts`` were dispatched on the next day."""
    k = parse_contacts(bank, contacts)
    p = bank.contact_probabilities(k["cust"], k["offer"], k["channel"], k["treated"], bank.day)
    live = ~p["decided"]
    inc = np.where(k["treated"] & live, p["treated"] - p["base"], 0.0)
    money = inc * p["amount"]
    expected = np.where(k["treated"], p["treated"], p["base"])
    rows = pa.table({"customer_id": W.customer_ids(k["cust"]), "offer": W.take(bank.truth.offers, k["offer"]),
                     "channel": W.take(CHANNELS, k["channel"]), "treated": pa.array(k["treated"]),
                     "base_probability": pa.array(p["base"]), "expected_probability": pa.array(expected),
                     "incremental_conversions": pa.array(inc), "amount": pa.array(p["amount"]),
                     "incremental_money": pa.array(money), "already_decided": pa.array(p["decided"])})
    tr, co = k["treated"] & live, ~k["treated"] & live
    return ExpectedEffect(rows, float(inc.sum()), float(money.sum()),
                          float(expected[tr].mean()) if tr.any() else None,
                          float(expected[co].mean()) if co.any() else None)


def advance(bank: BankEngine, contacts: Any) -> DayResult:
    """Simulate the next day with the contacts' effects; write ``out/days/DATE/``; save the state."""
    out = bank.out
    if out is None:
        raise DataError("this simulated bank has no folder to write to", hint="open it with SimulatedBank.open(out)")
    _, meta = open_meta(out)
    k = parse_contacts(bank, contacts)
    conv_before = len(bank.conversions)
    d = bank.step(k, snapshot_all=False)
    date = bank.cal.date(d)
    fmt = meta.get("format", "parquet")
    folder = out / "days" / date.isoformat()
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    rows = write_state_tables(bank, out, folder, fmt)
    rows.update(write_facts(bank, out, folder, fmt, meta, changed_only=True))
    cv = bank.conversions.concat()

    counts = {s: int((cv["source"][conv_before:] == i).sum()) for i, s in enumerate(SOURCES)} if len(cv["day"]) else {}
    truth_days = out / "_truth" / "days"
    for name, table in W.truth_tables(bank).items():
        if name == "customers":   # the hidden state of every customer as of the latest simulated day
            W.write_table(table, out / "_truth", name)
        elif table.num_rows:      # the day's state changes and conversions (and states on a month end)
            W.write_table(table, truth_days / date.isoformat(), name)
    bank.conversions.chunks.clear()
    bank.changes.chunks.clear()
    bank.states.chunks.clear()
    save(bank, out, {k2: v for k2, v in meta.items() if k2 not in bank.meta()})
    return DayResult(date, folder, rows, int(len(k["cust"])), counts)


def open_meta(out: Path) -> tuple[Path, dict[str, Any]]:
    """The state folder and its JSON scalars."""
    d = sim_dir(out)
    return d, json.loads((d / "meta.json").read_text(encoding="utf-8"))


def write_state_tables(bank: BankEngine, out: Path, folder: Path, fmt: str) -> dict[str, int]:
    """Full state tables for a day folder: copies, except customers when a prospect became a customer."""
    import pyarrow.parquet as pq

    tables = sim_dir(out) / "tables"
    rows: dict[str, int] = {}
    for name in STATE_TABLES:
        src = tables / f"{name}.parquet"
        written = bank.c.get("prospect_written")
        if name == "customers" and (written is None or not np.array_equal(written, bank.c["prospect"])):
            # a prospect became a customer today: the customers extract changes (is_prospect)
            t = pq.read_table(src)
            idx = pc.cast(pc.utf8_slice_codeunits(t["customer_id"], 1), pa.int64()).to_numpy() - 1
            flags = bank.c["prospect"][idx]
            if not np.array_equal(flags, t["is_prospect"].to_numpy(zero_copy_only=False)):
                t = t.set_column(t.schema.get_field_index("is_prospect"), t.schema.field("is_prospect"),
                                 pa.array(flags))
                # a new file, never rewritten in place: earlier day folders hold hard links to the old one
                tmp = src.with_suffix(".tmp")
                pq.write_table(t, tmp, compression="zstd")
                os.replace(tmp, src)
            bank.c["prospect_written"] = bank.c["prospect"].copy()
        if fmt == "parquet":
            link_or_copy(src, folder / f"{name}.parquet")
            rows[name] = pq.ParquetFile(src).metadata.num_rows
        else:
            t = pq.read_table(src)
            W.write_table(t, folder, name, fmt)
            rows[name] = t.num_rows
    return rows


def link_or_copy(src: Path, dst: Path) -> None:
    """A hard link where the file system allows it (state tables are large and unchanged), else a copy."""
    dst.unlink(missing_ok=True)   # never write through an old link
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def write_facts(bank: BankEngine, out: Path, folder: Path, fmt: str, meta: dict[str, Any],
                changed_only: bool) -> dict[str, int]:
    """The buffered facts (transactions, events, holdings snapshots) as canonical tables; clears the buffers."""
    books = bank.books
    snaps = books.snaps.concat()
    if changed_only:
        # a day folder also snapshots every account whose balance moved today
        moved = books.acc.changed.copy()
        moved[snaps["acc"]] = False
        extra = np.flatnonzero(moved)
        d = bank.day - 1
        snaps = {"day": np.r_[snaps["day"], np.full(len(extra), d, np.int32)],
                 "acc": np.r_[snaps["acc"], extra], "bal": np.r_[snaps["bal"], books.acc.bal[extra]],
                 "is_open": np.r_[snaps["is_open"], books.acc.is_open[extra]]}
        order = np.argsort(snaps["acc"], kind="stable")
        snaps = {k: v[order] for k, v in snaps.items()}
    txns, events = books.txns.concat(), books.events.concat()
    tables = {"holdings": W.holdings_table(bank, snaps),
              "transactions": W.transactions_table(bank, txns, meta["next_txn"]),
              "events": W.events_table(bank, events, meta["next_event"])}
    meta["next_txn"] += len(txns["day"])
    meta["next_event"] += len(events["day"])
    for name, table in tables.items():
        W.write_table(table, folder, name, fmt)
    for buf in (books.txns, books.events, books.snaps):
        buf.chunks.clear()
    return {name: t.num_rows for name, t in tables.items()}
