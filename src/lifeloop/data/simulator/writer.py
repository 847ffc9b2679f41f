"""Turn the simulated bank into canonical extracts (``lifeloop.data.schema``) and hidden-truth files.

Every canonical table is cast to ``arrow_schema(name)`` before it is written, in a fixed row order,
so the same seed gives the same bytes. Money is built from integer cents straight into DECIMAL(18,2).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lifeloop.data.schema import arrow_schema
from lifeloop.data.simulator import ledger as G
from lifeloop.data.simulator import population as PO
from lifeloop.data.simulator import products as P
from lifeloop.data.simulator.bank import SOURCES
from lifeloop.data.simulator.lifecycle import STAGES

if TYPE_CHECKING:
    from lifeloop.data.simulator.bank import BankEngine

EPOCH = dt.date(1970, 1, 1).toordinal()
ACCOUNT_PREFIX = {"time_deposit": "TD", "wealth": "WM", "fund": "FD", "insurance": "IN", "loan": "LN", "other": "OT"}
CONSENT_COLUMNS = (("marketing", "sms"), ("marketing", "push"), ("marketing", "email"), ("marketing", "call"),
                   ("marketing", "rm"), ("marketing", "wechat"), ("service", "sms"))


def decimal_from_cents(cents: np.ndarray, precision: int = 18, scale: int = 2) -> pa.Array:
    """Integer cents -> a DECIMAL array without going through floats (exact)."""
    c = np.ascontiguousarray(np.asarray(cents, np.int64))
    buf = np.empty((len(c), 2), np.int64)
    buf[:, 0] = c
    buf[:, 1] = c >> 63     # sign extension into the high 64 bits (little-endian 128-bit integers)
    return pa.Array.from_buffers(pa.decimal128(precision, scale), len(c), [None, pa.py_buffer(buf.tobytes())])


def dates(start: dt.date, day: np.ndarray, never: int | None = None) -> pa.Array:
    """Day numbers -> DATE values (``never`` -> NULL)."""
    day = np.asarray(day, np.int64)
    values = (day + start.toordinal() - EPOCH).astype(np.int32)
    mask = day == never if never is not None else None
    return pa.array(values, type=pa.int32(), mask=mask).cast(pa.date32())


def fixed_strings(mat: np.ndarray) -> pa.Array:
    """An (n, k) matrix of ASCII codes -> a string array, built straight from the bytes (no Python objects)."""
    mat = np.ascontiguousarray(mat.astype(np.uint8))
    n, k = mat.shape
    offsets = np.arange(n + 1, dtype=np.int32) * k
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(mat.tobytes()))


def _prefixed_codes(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    head = np.tile(np.frombuffer(prefix.encode(), np.uint8), (len(numbers), 1))
    return np.hstack([head, PO._digits(np.asarray(numbers), width) + 48])


def prefixed(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """'C' + zero-padded numbers, vectorised (Arrow kernels, no Python strings)."""
    digits = pc.utf8_lpad(pc.cast(pa.array(np.asarray(numbers), pa.int64()), pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


def customer_ids(idx: np.ndarray) -> pa.Array:
    """Customer numbers: C + 9 digits (index + 1)."""
    return _via_unique(np.asarray(idx, np.int64), lambda u: prefixed("C", u + 1, 9))


def _via_unique(idx: np.ndarray, build) -> pa.Array:
    # long columns repeat few ids: format each distinct id once and gather
    if len(idx) < 50_000:
        return build(idx)
    # ids are dense non-negative integers: a presence mask beats sorting or hashing
    present = np.zeros(int(idx.max()) + 1, bool)
    present[idx] = True
    uniq = np.flatnonzero(present)
    if len(uniq) == len(idx) and (np.diff(idx) > 0).all():
        return build(idx)
    rank = np.cumsum(present, dtype=np.int64) - 1
    return build(uniq).take(pa.array(rank[idx].astype(np.int32)))


def account_ids(idx: np.ndarray, prod: np.ndarray) -> pa.Array:
    """16-character account numbers: Luhn-valid card numbers for debit and credit cards, typed codes otherwise.

    ``prod`` holds the product code of every account (indexed by account number).
    """
    return _via_unique(np.asarray(idx, np.int64), lambda u: _account_ids(u, prod))


def _account_ids(idx: np.ndarray, prod_of: np.ndarray) -> pa.Array:
    prod = prod_of[idx]
    out = np.zeros((len(idx), 16), np.uint8)
    type_names = sorted(set(P.TYPES.tolist()))
    type_code = np.array([type_names.index(t) for t in P.TYPES], np.int8)[prod]   # small ints: fast masks
    for code, kind in enumerate(type_names):
        m = type_code == code
        if not m.any():
            continue
        if kind in ("demand_deposit", "credit_card"):
            out[m] = PO.card_codes(PO.DEBIT_BIN if kind == "demand_deposit" else PO.CREDIT_BIN, idx[m])
        else:
            out[m] = _prefixed_codes(ACCOUNT_PREFIX.get(str(kind), "OT"), idx[m], 14)
    return fixed_strings(out)


def take(names: tuple[str, ...] | list[str], codes: np.ndarray) -> pa.Array:
    """Codes -> their names (negative codes -> NULL)."""
    codes = np.asarray(codes)
    return pc.take(pa.array(list(names), pa.string()), pa.array(codes, pa.int32(), mask=codes < 0))


def _cast(name: str, cols: dict[str, pa.Array]) -> pa.Table:
    schema = arrow_schema(name)
    return pa.table([cols[f.name].cast(f.type) if f.name in cols else pa.nulls(len(next(iter(cols.values()))), f.type)
                     for f in schema], schema=schema)


def branches_table(pop: PO.Population) -> pa.Table:
    """Branches (网点): one or more per city."""
    n = len(pop.branch_city)
    city = [PO.CITIES[c] for c in pop.branch_city]
    return _cast("branches", {
        "branch_id": prefixed("BR", np.arange(1, n + 1), 4),
        "name": pa.array([f"{c[0]}第{i + 1}支行" for i, c in enumerate(city)]),
        "city": pa.array([c[0] for c in city]), "region": pa.array([c[1] for c in city])})


def rms_table(pop: PO.Population) -> pa.Table:
    """Relationship managers (客户经理)."""
    n = len(pop.rm_branch)
    return _cast("relationship_managers", {
        "rm_id": prefixed("RM", np.arange(1, n + 1), 5), "name": pa.array(pop.rm_names),
        "branch_id": prefixed("BR", pop.rm_branch + 1, 4), "daily_capacity": pa.array(np.full(n, 20, np.int32))})


def customers_table(pop: PO.Population, start: dt.date, prospect: np.ndarray, upto: int) -> pa.Table:
    """Customers who have arrived by day ``upto``, with their fake personal data."""
    idx = np.flatnonzero(pop.open_day <= upto)
    ids = np.array(PO.id_numbers(pop), dtype=object)[idx]
    mobile = np.array(PO.mobiles(pop), dtype=object)[idx]
    email = [f"user{i + 1}@example.com" if e else None
             for i, e in zip(idx.tolist(), pop.has_email[idx].tolist(), strict=False)]
    risk = pop.risk[idx].astype(np.int64) - 1
    # most customers renew their risk assessment every year; a fixed ~3 in 10 let it lapse (suitability
    # then blocks their R2+ offers and asks for a re-assessment)
    lapses = (idx.astype(np.int64) * 2654435761 % 100) < 30
    risk_day = pop.risk_day[idx].astype(np.int64)
    risk_day = np.where(lapses, risk_day, risk_day + 365 * np.maximum(0, (upto - risk_day) // 365))
    return _cast("customers", {
        "customer_id": customer_ids(idx), "name": pa.array([pop.names[i] for i in idx.tolist()]),
        "gender": pa.array(pop.gender[idx].tolist()),
        "birth_date": pa.array((pop.birth[idx] - EPOCH).astype(np.int32)).cast(pa.date32()),
        "id_number": pa.array(ids.tolist(), pa.string()), "mobile": pa.array(mobile.tolist(), pa.string()),
        "email": pa.array(email, pa.string()),
        "city": take([c[0] for c in PO.CITIES], pop.city[idx]),
        "occupation": take(PO.OCCUPATIONS, pop.occupation[idx]),
        "branch_id": prefixed("BR", pop.branch[idx] + 1, 4),
        "rm_id": pc.if_else(pa.array(pop.rm[idx] < 0), pa.scalar(None, pa.string()),
                            prefixed("RM", np.maximum(pop.rm[idx], 0) + 1, 5)),
        "open_date": dates(start, pop.open_day[idx]),
        "is_prospect": pa.array(prospect[idx]),
        "risk_level": take(("C1", "C2", "C3", "C4", "C5"), risk),
        "risk_assessed_on": dates(start, np.where(risk >= 0, risk_day, G.NEVER), G.NEVER),
        "risk_expires_on": dates(start, np.where(risk >= 0, risk_day + 365, G.NEVER), G.NEVER),
    })


def consent_table(pop: PO.Population, start: dt.date, upto: int) -> pa.Table:
    """Consent per customer, purpose and channel (授权)."""
    idx = np.flatnonzero(pop.open_day <= upto)
    k = len(CONSENT_COLUMNS)
    cust = np.repeat(idx, k)
    col = np.tile(np.arange(k), len(idx))
    return _cast("consent", {
        "customer_id": customer_ids(cust),
        "purpose": take([p for p, _ in CONSENT_COLUMNS], col), "channel": take([c for _, c in CONSENT_COLUMNS], col),
        "granted": pa.array(pop.consent[idx].ravel()), "updated_on": dates(start, np.repeat(pop.open_day[idx], k))})


def products_table() -> pa.Table:
    """The product catalogue."""
    rows = P.catalogue_rows()
    cols = {k: [r[k] for r in rows] for k in rows[0]}
    fee = pa.array([f"{r:.6f}" for r in cols.pop("fee_rate")]).cast(pa.decimal128(9, 6))
    return _cast("products", {**{k: pa.array(v) for k, v in cols.items()}, "fee_rate": fee})


def holdings_table(bank: BankEngine, snaps: dict[str, np.ndarray]) -> pa.Table:
    """Balance snapshots of accounts."""
    acc = bank.books.acc
    a = snaps["acc"]
    prod = acc.prod[a]
    return _cast("holdings", {
        "account_id": account_ids(a, acc.prod), "customer_id": customer_ids(acc.cust[a]),
        "product_id": take(P.PRODUCT_IDS, prod), "snapshot_date": dates(bank.start, snaps["day"]),
        "balance": decimal_from_cents(np.maximum(snaps["bal"], 0)),
        "open_date": dates(bank.start, acc.open_day[a]), "maturity_date": dates(bank.start, acc.maturity[a], G.NEVER),
        "status": take(("closed", "open"), snaps["is_open"].astype(np.int8))})


def transactions_table(bank: BankEngine, t: dict[str, np.ndarray], first_id: int) -> pa.Table:
    """Transactions (交易流水), numbered T + 12 digits from ``first_id``."""
    acc = bank.books.acc
    n = len(t["day"])
    return _cast("transactions", {
        "transaction_id": prefixed("T", np.arange(first_id, first_id + n), 12),
        "account_id": account_ids(t["acc"], acc.prod), "customer_id": customer_ids(t["cust"]),
        "txn_date": dates(bank.start, t["day"]), "amount": decimal_from_cents(t["amount"]),
        "direction": take(("debit", "credit"), t["credit"].astype(np.int8)),
        "txn_type": take(G.TXN_TYPES, t["type"]), "channel": take(G.CHANNELS, t["channel"]),
        "counterparty_kind": take(G.COUNTERPARTIES, t["cp"]), "customer_initiated": pa.array(t["initiated"]),
        "balance_after": decimal_from_cents(t["after"])})


def events_table(bank: BankEngine, e: dict[str, np.ndarray], first_id: int) -> pa.Table:
    """Digital and business events: app logins, product page views, complaints, leads."""
    n = len(e["day"])
    epoch_s = (e["day"].astype(np.int64) + bank.start.toordinal() - EPOCH) * 86400 + e["second"]
    return _cast("events", {
        "event_id": prefixed("E", np.arange(first_id, first_id + n), 12),
        "customer_id": customer_ids(e["cust"]), "event_date": dates(bank.start, e["day"]),
        "event_time": pa.array(epoch_s * 1_000_000, pa.int64()).cast(pa.timestamp("us")),
        "event_type": take(G.EVENT_TYPES, e["type"]), "channel": take(G.EVENT_CHANNELS, e["type"]),
        "detail": take(P.PRODUCT_IDS, e["detail"])})


def write_table(table: pa.Table, folder: Path, name: str, fmt: str = "parquet") -> Path:
    """Write one table as Parquet (deterministic bytes) or canonical CSV (comma, header, UTF-8, ISO dates)."""
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        import pyarrow.csv as pcsv

        path = folder / f"{name}.csv"
        with open(path, "wb") as fh:
            # a plain header (column names never need quotes); values are quoted only when needed
            fh.write((",".join(table.column_names) + "\n").encode("utf-8"))
            pcsv.write_csv(table, fh, pcsv.WriteOptions(include_header=False, quoting_style="needed"))
        return path
    import pyarrow.parquet as pq

    path = folder / f"{name}.parquet"
    pq.write_table(table, path, compression="zstd")
    return path


def truth_tables(bank: BankEngine) -> dict[str, pa.Table]:
    """The hidden truth for verification: customers' states, state changes, conversions."""

    c = bank.c
    idx = np.flatnonzero(c["stage"] >= 0)
    tier = PO.tier_of(c["wealth"][idx])
    customers = pa.table({
        "customer_id": customer_ids(idx), "stage": take(STAGES, c["stage"][idx]), "value_tier": take(PO.TIERS, tier),
        "payroll": pa.array(c["payroll"][idx]),
        "employer_id": pa.array(c["employer"][idx], mask=c["employer"][idx] < 0),
        "salary_day": pa.array(c["salary_code"][idx].astype(np.int32), mask=~c["payroll"][idx]),
        "wealth_target": pa.array(np.round(c["wealth"][idx], 2)),
        "monthly_income": pa.array(np.round(c["income"][idx], 2)),
        "activity_per_day": pa.array(c["activity"][idx].astype(np.float64)),
    })
    st = bank.states.concat()
    states = pa.table({"date": dates(bank.start, st["day"]), "customer_id": customer_ids(st["cust"]),
                       "stage": take(STAGES, st["stage"]), "value_tier": take(PO.TIERS, st["tier"]),
                       "payroll": pa.array(st["payroll"])})
    ch = bank.changes.concat()
    changes = pa.table({"date": dates(bank.start, ch["day"]), "customer_id": customer_ids(ch["cust"]),
                        "before": take(STAGES, ch["before"]), "after": take(STAGES, ch["after"])})
    cv = bank.conversions.concat()
    conversions = pa.table({"date": dates(bank.start, cv["day"]), "customer_id": customer_ids(cv["cust"]),
                            "offer": take(bank.truth.offers, cv["offer"]), "amount": decimal_from_cents(cv["amount"]),
                            "source": take(SOURCES, cv["source"])})
    return {"customers": customers, "states": states, "stage_changes": changes, "conversions": conversions}
