"""Benchmark: Lifeloop's feature step vs one hand-written DuckDB query, and the same step on Spark local.

    .venv/bin/python bench/features.py                         # 1M customers, 50M transactions
    .venv/bin/python bench/features.py --customers 100000 --transactions 5000000 --no-spark

Generates a synthetic bank straight to Parquet with DuckDB (hash-based pseudo-random values, so the
data is the same on every run) in a Lifeloop workspace under bench/out/, then times in one run:

  (a) the feature step on DuckDB (catalogue load, compile, compute, Arrow, write, publish);
  (b) a single hand-written DuckDB query computing the same columns, written to Parquet by DuckDB,
      with CASE WHEN inside the aggregates (the fastest form we found); (b2) the same query in the
      FILTER (WHERE ...) idiom, for context;
  (c) the same feature step on Spark local (JVM start-up reported separately);
  (d) the feature step on DuckDB over the same bank with its C2 columns encrypted at rest (Parquet modular
      encryption, docs/security.md), interleaved with (a) so both see the same machine: the ratio d/a is the
      price of encryption (the requirement is at most 1.10); wall and CPU (user + system, all threads) are
      reported for both, with the load average before and after.

It checks that (a) and (b) hold the same values and that (a) and (c) wrote identical bytes, and prints
a Markdown table with the ratios a/b and c/b. Figures go to docs/performance.md by hand.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import sys
import time
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lifeloop.context import Context  # noqa: E402

D = dt.date(2024, 6, 30)
HISTORY_DAYS = 730


def q(s: str) -> str:
    """A SQL string literal (bench paths only; this script is the hand-written baseline, not Lifeloop)."""
    return "'" + s.replace("'", "''") + "'"


def day(offset: int) -> str:
    return f"DATE '{(D - dt.timedelta(days=offset)).isoformat()}'"


# ------------------------------------------------------------------------------------------ data
def generate(db, folder: Path, customers: int, transactions: int) -> dict[str, int]:
    """Write a synthetic bank's canonical tables to ``folder`` (one Parquet file per table)."""
    n, t = customers, transactions

    def run(sql: str) -> None:
        # hash() is UBIGINT and list indexes must be BIGINT: cast them here rather than in every line
        db.execute(re.sub(r"\[1 \+ (hash\([^)]*\) % \d+)\]", r"[1 + (\1)::BIGINT]", sql))

    f = {name: q(str(folder / f"{name}.parquet")) for name in
         ("branches", "relationship_managers", "customers", "products", "holdings", "transactions", "events")}
    opts = "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 1000000)"
    run(f"""COPY (SELECT 'B' || lpad(i::VARCHAR, 3, '0') AS branch_id, 'Branch ' || i AS name,
        'City ' || (i % 7) AS city, 'Region ' || (i % 3) AS region FROM range(20) r(i)) TO {f['branches']} {opts}""")
    run(f"""COPY (SELECT 'RM' || lpad(i::VARCHAR, 4, '0') AS rm_id, 'Manager ' || i AS name,
        'B' || lpad((i % 20)::VARCHAR, 3, '0') AS branch_id, 20::INTEGER AS daily_capacity
        FROM range(200) r(i)) TO {f['relationship_managers']} {opts}""")
    run(f"""COPY (SELECT product_id, name, product_type, term_days::INTEGER AS term_days,
        fee_rate::DECIMAL(9,6) AS fee_rate, risk_level, 'CNY' AS currency FROM (VALUES
        ('P01', 'Demand deposit', 'demand_deposit', NULL, 0.001, 'R1'),
        ('P02', 'Time deposit 1y', 'time_deposit', 365, 0.004, 'R1'),
        ('P03', 'Time deposit 3y', 'time_deposit', 1095, 0.005, 'R1'),
        ('P04', 'Wealth 180d', 'wealth', 180, 0.010, 'R2'),
        ('P05', 'Bond fund', 'fund', NULL, 0.012, 'R3'),
        ('P06', 'Life insurance', 'insurance', 3650, 0.020, 'R2'),
        ('P07', 'Credit card', 'credit_card', NULL, 0.015, NULL),
        ('P08', 'Mortgage', 'loan', 7300, 0.010, NULL),
        ('P09', 'Equity fund', 'fund', NULL, 0.015, 'R4'),
        ('P10', 'Consumer loan', 'loan', 365, 0.030, NULL)) p(product_id, name, product_type, term_days, fee_rate,
        risk_level)) TO {f['products']} {opts}""")
    run(f"""COPY (SELECT 'C' || lpad(i::VARCHAR, 9, '0') AS customer_id, 'Name ' || i AS name,
        ['M', 'F', 'U'][1 + hash(i, 1) % 3] AS gender,
        CASE WHEN hash(i, 2) % 50 = 0 THEN NULL ELSE DATE '1940-01-01' + (hash(i, 3) % 23000)::INTEGER END AS birth_date,
        NULL::VARCHAR AS id_number, NULL::VARCHAR AS mobile, NULL::VARCHAR AS email,
        'City ' || (hash(i, 4) % 7) AS city, NULL::VARCHAR AS occupation,
        'B' || lpad((hash(i, 5) % 20)::VARCHAR, 3, '0') AS branch_id,
        CASE WHEN hash(i, 6) % 4 = 0 THEN 'RM' || lpad((hash(i, 7) % 200)::VARCHAR, 4, '0') END AS rm_id,
        DATE '2005-01-01' + (hash(i, 8) % 7200)::INTEGER AS open_date,
        hash(i, 9) % 20 = 0 AS is_prospect,
        ['C1', 'C2', 'C3', 'C4', 'C5'][1 + hash(i, 10) % 5] AS risk_level,
        NULL::DATE AS risk_assessed_on,
        DATE '2023-01-01' + (hash(i, 11) % 900)::INTEGER AS risk_expires_on
        FROM range({n}) r(i)) TO {f['customers']} {opts}""")  # noqa: E501
    # three accounts per customer, snapshots 120 and 10 days before D
    run(f"""COPY (SELECT 'A' || lpad((i * 3 + k)::VARCHAR, 10, '0') AS account_id,
        'C' || lpad(i::VARCHAR, 9, '0') AS customer_id,
        'P' || lpad((1 + hash(i, k, 20) % 10)::VARCHAR, 2, '0') AS product_id,
        {day(0)} - s AS snapshot_date,
        ((hash(i, k, s, 21) % 50000000) / 100)::DECIMAL(18,2) AS balance,
        NULL::DATE AS open_date,
        CASE WHEN hash(i, k, 22) % 3 = 0 THEN {day(0)} + (hash(i, k, 23) % 400)::INTEGER END AS maturity_date,
        CASE WHEN hash(i, k, s, 24) % 10 = 0 THEN 'closed' ELSE 'open' END AS status
        FROM range({n}) r(i), range(3) a(k), (VALUES (120), (10)) v(s)) TO {f['holdings']} {opts}""")
    run(f"""COPY (SELECT 'T' || lpad(i::VARCHAR, 11, '0') AS transaction_id,
        'A' || lpad(((i % {n}) * 3 + hash(i, 30) % 3)::VARCHAR, 10, '0') AS account_id,
        'C' || lpad((i % {n})::VARCHAR, 9, '0') AS customer_id,
        {day(0)} - (hash(i, 31) % {HISTORY_DAYS})::INTEGER AS txn_date,
        ((hash(i, 32) % 2000000) / 100)::DECIMAL(18,2) AS amount,
        CASE WHEN hash(i, 33) % 5 < 2 THEN 'credit' ELSE 'debit' END AS direction,
        CASE WHEN hash(i, 34) % 100 < 4 THEN 'salary'
             ELSE ['transfer', 'cash', 'card_payment', 'purchase', 'fee', 'interest'][1 + hash(i, 35) % 6] END AS txn_type,
        ['branch', 'atm', 'mobile', 'online', 'pos', 'counter', 'system'][1 + hash(i, 36) % 7] AS channel,
        ['employer', 'individual', 'merchant', 'bank'][1 + hash(i, 37) % 4] AS counterparty_kind,
        hash(i, 38) % 10 < 7 AS customer_initiated,
        NULL::DECIMAL(18,2) AS balance_after
        FROM range({t}) r(i)) TO {f['transactions']} {opts}""")  # noqa: E501
    events = n * 5
    run(f"""COPY (SELECT 'E' || lpad(i::VARCHAR, 11, '0') AS event_id,
        'C' || lpad((hash(i, 40) % {n})::VARCHAR, 9, '0') AS customer_id,
        {day(0)} - (hash(i, 41) % 365)::INTEGER AS event_date, NULL::TIMESTAMP AS event_time,
        ['app_login', 'page_view', 'complaint'][1 + hash(i, 42) % 3] AS event_type, 'mobile' AS channel,
        NULL::VARCHAR AS detail FROM range({events}) r(i)) TO {f['events']} {opts}""")
    return {"customers": n, "holdings": n * 6, "transactions": t, "events": events}


# ------------------------------------------------------------------------------------------ (b)
def hand_written(bank: Path) -> str:
    """The feature table written by hand as one DuckDB query (what a careful analyst would write)."""
    p = {name: q(str(bank / f"{name}.parquet")) for name in ("customers", "products", "holdings", "transactions",
                                                               "events")}
    d0, d30, d90 = day(0), day(30), day(90)
    ym = D.year * 12 + D.month
    md = D.month * 100 + D.day
    ci = "customer_initiated"
    sal = "txn_type = 'salary' AND direction = 'credit'"
    assets = "('demand_deposit', 'time_deposit', 'wealth', 'fund', 'insurance')"

    def holdings_at(as_of: str) -> str:
        return f"""(SELECT h.*, p.product_type FROM read_parquet({p['holdings']}) h
            LEFT JOIN read_parquet({p['products']}) p USING (product_id) WHERE h.snapshot_date <= {as_of}
            QUALIFY row_number() OVER (PARTITION BY h.account_id ORDER BY h.snapshot_date DESC) = 1)"""

    counts = ",\n".join(f"count(*) FILTER (WHERE status = 'open' AND product_type = '{t}') AS {t}_count"
                        for t in ("demand_deposit", "time_deposit", "wealth", "fund", "insurance", "credit_card",
                                  "loan"))
    rfm = ",\n".join(
        f"date_diff('day', max(txn_date) FILTER (WHERE {ci} AND txn_date > {day(w)}), {d0}) AS recency_{w}d,\n"
        f"count(*) FILTER (WHERE {ci} AND txn_date > {day(w)}) AS frequency_{w}d,\n"
        f"sum(amount) FILTER (WHERE {ci} AND txn_date > {day(w)}) AS monetary_{w}d" for w in (30, 90, 365))
    return f"""
WITH t AS (
  SELECT customer_id, {rfm},
    avg(amount) FILTER (WHERE {ci} AND txn_date > {d90}) AS avg_txn_amount_90d,
    date_diff('day', max(txn_date) FILTER (WHERE {ci}), {d0}) AS days_since_last_txn,
    sum(amount) FILTER (WHERE direction = 'credit' AND txn_date > {d30}) AS inflow_30d,
    sum(amount) FILTER (WHERE direction = 'credit' AND txn_date > {d90}) AS inflow_90d,
    sum(amount) FILTER (WHERE direction = 'debit' AND txn_date > {d30}) AS outflow_30d,
    sum(amount) FILTER (WHERE direction = 'debit' AND txn_date > {d90}) AS outflow_90d,
    count(*) FILTER (WHERE {ci} AND txn_date > {d90} AND channel IN ('mobile', 'online'))
      / nullif(count(*) FILTER (WHERE {ci} AND txn_date > {d90}), 0) AS digital_share_90d,
    count(*) FILTER (WHERE {ci} AND channel IN ('branch', 'counter') AND txn_date > {d90}) AS branch_txn_90d,
    count(DISTINCT m) FILTER (WHERE {sal} AND m BETWEEN 1 AND 3) AS salary_months_3m,
    count(DISTINCT m) FILTER (WHERE {sal} AND m BETWEEN 1 AND 6) AS salary_months_6m,
    sum(amount) FILTER (WHERE {sal} AND m BETWEEN 1 AND 3) AS salary_amount_3m
  FROM (SELECT *, {ym} - (year(txn_date) * 12 + month(txn_date)) AS m FROM read_parquet({p['transactions']})
        WHERE txn_date <= {d0})
  GROUP BY customer_id),
h AS (
  SELECT customer_id,
    sum(balance) FILTER (WHERE status = 'open' AND product_type IN {assets}) AS aum,
    sum(balance) FILTER (WHERE status = 'open' AND product_type IN ('demand_deposit', 'time_deposit')) AS deposit_balance,
    sum(balance) FILTER (WHERE status = 'open' AND product_type IN ('wealth', 'fund', 'insurance')) AS investment_balance,
    sum(balance) FILTER (WHERE status = 'open' AND product_type = 'loan') AS loan_balance,
    sum(balance) FILTER (WHERE status = 'open' AND product_type = 'credit_card') AS card_balance,
    count(*) FILTER (WHERE status = 'open') AS products_held,
    count(DISTINCT product_type) FILTER (WHERE status = 'open') AS product_lines,
    {counts},
    min(date_diff('day', {d0}, maturity_date)) FILTER (WHERE status = 'open' AND maturity_date >= {d0}) AS days_to_next_maturity,
    sum(balance) FILTER (WHERE status = 'open' AND maturity_date BETWEEN {d0} AND {d0} + 30) AS maturing_amount_30d
  FROM {holdings_at(d0)} GROUP BY customer_id),
h90 AS (
  SELECT customer_id, sum(balance) FILTER (WHERE status = 'open' AND product_type IN {assets}) AS aum_90d_ago
  FROM {holdings_at(d90)} GROUP BY customer_id),
e AS (
  SELECT customer_id,
    count(*) FILTER (WHERE event_type = 'app_login' AND event_date > {d30}) AS app_logins_30d,
    count(*) FILTER (WHERE event_type = 'app_login' AND event_date > {d90}) AS app_logins_90d,
    date_diff('day', max(event_date) FILTER (WHERE event_type = 'app_login'), {d0}) AS days_since_last_login
  FROM read_parquet({p['events']}) WHERE event_date <= {d0} GROUP BY customer_id)
SELECT c.customer_id,
  t.recency_30d::INTEGER AS recency_30d, t.recency_90d::INTEGER AS recency_90d, t.recency_365d::INTEGER AS recency_365d,
  coalesce(t.frequency_30d, 0)::INTEGER AS frequency_30d, coalesce(t.frequency_90d, 0)::INTEGER AS frequency_90d,
  coalesce(t.frequency_365d, 0)::INTEGER AS frequency_365d,
  coalesce(t.monetary_30d, 0)::DECIMAL(18,2) AS monetary_30d, coalesce(t.monetary_90d, 0)::DECIMAL(18,2) AS monetary_90d,
  coalesce(t.monetary_365d, 0)::DECIMAL(18,2) AS monetary_365d,
  t.avg_txn_amount_90d, t.days_since_last_txn::INTEGER AS days_since_last_txn,
  coalesce(t.inflow_30d, 0)::DECIMAL(18,2) AS inflow_30d, coalesce(t.inflow_90d, 0)::DECIMAL(18,2) AS inflow_90d,
  coalesce(t.outflow_30d, 0)::DECIMAL(18,2) AS outflow_30d, coalesce(t.outflow_90d, 0)::DECIMAL(18,2) AS outflow_90d,
  (coalesce(t.inflow_30d, 0) - coalesce(t.outflow_30d, 0))::DECIMAL(18,2) AS net_flow_30d,
  t.digital_share_90d, coalesce(t.branch_txn_90d, 0)::INTEGER AS branch_txn_90d,
  coalesce(t.salary_months_3m, 0)::INTEGER AS salary_months_3m, coalesce(t.salary_months_6m, 0)::INTEGER AS salary_months_6m,
  coalesce(t.salary_amount_3m, 0)::DECIMAL(18,2) AS salary_amount_3m,
  coalesce(t.salary_months_3m, 0) >= 2 AS payroll_flag,
  coalesce(t.salary_months_6m, 0) / 6 AS salary_regularity_6m,
  coalesce(h.aum, 0)::DECIMAL(18,2) AS aum, coalesce(h90.aum_90d_ago, 0)::DECIMAL(18,2) AS aum_90d_ago,
  (coalesce(h.aum, 0) - coalesce(h90.aum_90d_ago, 0))::DECIMAL(18,2) AS aum_change_90d,
  (coalesce(h.aum, 0) - coalesce(h90.aum_90d_ago, 0)) / nullif(coalesce(h90.aum_90d_ago, 0), 0) AS aum_change_pct_90d,
  coalesce(h.deposit_balance, 0)::DECIMAL(18,2) AS deposit_balance,
  coalesce(h.investment_balance, 0)::DECIMAL(18,2) AS investment_balance,
  coalesce(h.loan_balance, 0)::DECIMAL(18,2) AS loan_balance, coalesce(h.card_balance, 0)::DECIMAL(18,2) AS card_balance,
  coalesce(h.products_held, 0)::INTEGER AS products_held, coalesce(h.product_lines, 0)::INTEGER AS product_lines,
  coalesce(h.demand_deposit_count, 0)::INTEGER AS demand_deposit_count,
  coalesce(h.time_deposit_count, 0)::INTEGER AS time_deposit_count, coalesce(h.wealth_count, 0)::INTEGER AS wealth_count,
  coalesce(h.fund_count, 0)::INTEGER AS fund_count, coalesce(h.insurance_count, 0)::INTEGER AS insurance_count,
  coalesce(h.credit_card_count, 0)::INTEGER AS credit_card_count, coalesce(h.loan_count, 0)::INTEGER AS loan_count,
  h.days_to_next_maturity::INTEGER AS days_to_next_maturity,
  coalesce(h.maturing_amount_30d, 0)::DECIMAL(18,2) AS maturing_amount_30d,
  coalesce(e.app_logins_30d, 0)::INTEGER AS app_logins_30d, coalesce(e.app_logins_90d, 0)::INTEGER AS app_logins_90d,
  e.days_since_last_login::INTEGER AS days_since_last_login,
  ({D.year} - year(c.birth_date) - CASE WHEN month(c.birth_date) * 100 + day(c.birth_date) > {md} THEN 1 ELSE 0 END)::INTEGER AS age,
  date_diff('day', c.open_date, {d0})::INTEGER AS tenure_days,
  ({ym} - (year(c.open_date) * 12 + month(c.open_date)) - CASE WHEN day(c.open_date) > {D.day} THEN 1 ELSE 0 END)::INTEGER AS tenure_months,
  date_diff('day', {d0}, c.risk_expires_on)::INTEGER AS risk_assessment_days_left
FROM read_parquet({p['customers']}) c
LEFT JOIN t USING (customer_id) LEFT JOIN h USING (customer_id) LEFT JOIN h90 USING (customer_id)
LEFT JOIN e USING (customer_id)
WHERE c.open_date IS NULL OR c.open_date <= {d0}
ORDER BY c.customer_id"""  # noqa: E501


_ARG = r"[^()]*(?:\([^()]*\)[^()]*)*"  # text with at most one level of brackets inside


def filter_to_case(sql: str) -> str:
    """``agg(x) FILTER (WHERE c)`` -> ``agg(CASE WHEN c THEN x END)``: the faster form on DuckDB 2.0."""
    sql = re.sub(rf"count\(\*\) FILTER \(WHERE ({_ARG})\)", r"count(CASE WHEN \1 THEN 1 END)", sql)
    sql = re.sub(rf"count\(DISTINCT (\w+)\) FILTER \(WHERE ({_ARG})\)", r"count(DISTINCT CASE WHEN \2 THEN \1 END)",
                 sql)
    sql = re.sub(rf"(sum|max|min|avg)\(({_ARG})\) FILTER \(WHERE ({_ARG})\)", r"\1(CASE WHEN \3 THEN \2 END)", sql)
    assert "FILTER" not in sql
    return sql


def cpu_seconds() -> float:
    """User + system CPU time of this process so far, every thread included (DuckDB's and pyarrow's)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed_step(ws: Path) -> tuple[float, float]:
    """The feature step on DuckDB in workspace ``ws``: (wall seconds, CPU seconds)."""
    cpu, started = cpu_seconds(), time.perf_counter()
    with Context(ws) as run_ctx:
        run_ctx.run(D, steps=["features"], engine="duckdb")
    return time.perf_counter() - started, cpu_seconds() - cpu


def run_hand_written(bank: Path, target: Path, style: str = "case") -> float:
    import duckdb

    sql = hand_written(bank)
    if style == "case":
        sql = filter_to_case(sql)
    con = duckdb.connect()
    started = time.perf_counter()
    con.execute(f"COPY ({sql}) TO {q(str(target))} (FORMAT parquet, COMPRESSION zstd)")
    seconds = time.perf_counter() - started
    con.close()
    return seconds


def same_values(step_file: Path, hand_file: Path) -> tuple[bool, str]:
    """Every column of the step's output equals the hand-written one (doubles within 1e-12 relative)."""
    import duckdb

    con = duckdb.connect()
    a = con.sql(f"SELECT * FROM read_parquet({q(str(step_file))}, hive_partitioning = false)")
    names = a.columns
    types = dict(zip(names, [str(t) for t in a.types], strict=False))
    checks = []
    for c in names:
        if c == "customer_id":
            continue
        if types[c] == "DOUBLE":
            checks.append(f"sum(CASE WHEN (a.{c} IS NULL) <> (b.{c} IS NULL) OR abs(a.{c} - b.{c}) > "
                          f"1e-12 * greatest(abs(a.{c}), 1) THEN 1 ELSE 0 END) AS {c}")
        else:
            checks.append(f"sum(CASE WHEN a.{c} IS DISTINCT FROM b.{c} THEN 1 ELSE 0 END) AS {c}")
    row = con.sql(f"""SELECT count(*) AS n, count(b.customer_id) AS matched, {', '.join(checks)}
        FROM read_parquet({q(str(step_file))}, hive_partitioning = false) a FULL JOIN read_parquet({q(str(hand_file))}) b USING (customer_id)""")  # noqa: E501
    values = dict(zip(row.columns, row.fetchall()[0], strict=False))
    bad = {k: v for k, v in values.items() if k not in ("n", "matched") and v}
    ok = not bad and values["n"] == values["matched"]
    return ok, "all columns equal" if ok else f"differences: {bad}, rows {values['n']} vs matched {values['matched']}"


def prepare_bank(out: Path, customers: int, transactions: int, *, regenerate: bool = False,
                 extra=None, after=None) -> Path:
    """The synthetic bank as a workspace in ``out/workspace``, generated once and reused while the sizes match.

    ``extra(con, staging)`` writes more bank tables into the same batch; ``after(ctx)`` runs once on a
    freshly generated workspace (e.g. the insight steps a later benchmark starts from).
    """
    import duckdb

    ws = out / "workspace"
    marker = out / "data.json"
    wanted = {"customers": customers, "transactions": transactions, "as_of": D.isoformat(), "v": 1}
    if regenerate or not marker.exists() or json.loads(marker.read_text())["params"] != wanted:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        ctx = Context.init(ws)
        started = time.perf_counter()
        con = duckdb.connect()

        def write(staging: Path) -> dict:
            rows = generate(con, staging, customers, transactions)
            if extra is not None:
                extra(con, staging)
            return {"rows": rows}

        ctx.lake.publish("bank", D, write)
        con.close()
        if after is not None:
            after(ctx)
        ctx.close()
        gen = time.perf_counter() - started
        marker.write_text(json.dumps({"params": wanted, "generate_seconds": round(gen, 1)}))
        print(f"generated {customers:,} customers / {transactions:,} transactions in {gen:.1f}s")
    return ws


def encrypted_copy(out: Path, plain_ws: Path) -> Path:
    """The same bank in a workspace of its own with ``lake.encryption: on``: every table rewritten through the
    lake's encryption (C2 columns encrypted, row groups as in the plaintext files). Made once per plaintext bank."""
    import pyarrow.parquet as pq

    ws = out / "workspace-encrypted"
    marker = out / "encrypted.json"
    source = plain_ws / "lake" / "bank" / f"as_of={D.isoformat()}"
    # the layout of encrypted files (lake_crypto.encrypted_layout) changed in layout 2: older copies are rebuilt
    stamp = {**json.loads((out / "data.json").read_text()), "layout": 2}
    if marker.exists() and json.loads(marker.read_text()) == stamp:
        return ws
    shutil.rmtree(ws, ignore_errors=True)
    ctx = Context.init(ws)
    assert ctx.config.lake.encryption, "a new workspace encrypts its lake"
    started = time.perf_counter()

    def write(staging: Path) -> None:
        for f in sorted(source.glob("*.parquet")):
            reader = pq.ParquetFile(f)
            ctx.lake.crypto.write(staging / f.name, reader.schema_arrow, reader.iter_batches(batch_size=1_000_000),
                                  f.stem, compression="zstd")

    ctx.lake.publish("bank", D, write)
    ctx.close()
    marker.write_text(json.dumps(stamp))
    print(f"encrypted a copy of the bank in {time.perf_counter() - started:.1f}s")
    return ws


# ------------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--transactions", type=int, default=50_000_000)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    ap.add_argument("--repeat", type=int, default=2, help="DuckDB runs of (a) and (b); the best is reported")
    ap.add_argument("--no-spark", action="store_true", help="skip (c)")
    ap.add_argument("--no-encrypted", action="store_true", help="skip (d)")
    ap.add_argument("--regenerate", action="store_true", help="rebuild the data even if it exists")
    args = ap.parse_args(argv)

    import duckdb

    ws = prepare_bank(args.out, args.customers, args.transactions, regenerate=args.regenerate)
    ctx = Context(ws)
    bank = ctx.lake.snapshot_dir("bank", D)
    size = sum(p.stat().st_size for p in bank.glob("*.parquet"))

    # warm the page cache so neither side pays for the first read
    duckdb.sql(f"SELECT count(*), sum(amount) FROM read_parquet({q(str(bank / 'transactions.parquet'))})").fetchall()

    hand_file = args.out / "hand_written.parquet"
    filter_file = args.out / "hand_written_filter.parquet"
    enc_ws = None if args.no_encrypted else encrypted_copy(args.out, ws)
    a_times, b_times, b2_times, d_times = [], [], [], []
    a_cpu, d_cpu, loads = [], [], [os.getloadavg()]
    for k in range(args.repeat):
        b_times.append(run_hand_written(bank, hand_file))
        # (a) and (d) alternate which goes first, so neither always follows (b)'s query
        for which in ("ad" if enc_ws is None or k % 2 == 0 else "da"):
            if which == "a":
                wall, cpu = timed_step(ws)
                a_times.append(wall)
                a_cpu.append(cpu)
            elif enc_ws is not None:
                wall, cpu = timed_step(enc_ws)
                d_times.append(wall)
                d_cpu.append(cpu)
        b2_times.append(run_hand_written(bank, filter_file, style="filter"))
    loads.append(os.getloadavg())
    step_file = ctx.lake.snapshot_dir("features", D) / "features.parquet"
    ok, detail = same_values(step_file, hand_file)
    ok2, detail2 = same_values(step_file, filter_file)
    ok, detail = ok and ok2, f"CASE form: {detail}; FILTER form: {detail2}"
    duck_bytes = step_file.read_bytes()
    enc_same = None
    if enc_ws is not None:
        enc_same = (enc_ws / "lake" / "features" / f"as_of={D.isoformat()}" / "features.parquet").read_bytes() \
            == duck_bytes

    c_time = spark_start = None
    spark_same = None
    if not args.no_spark:
        started = time.perf_counter()
        spark_ctx = Context(ws)
        spark_ctx.engine("spark")
        spark_start = time.perf_counter() - started
        started = time.perf_counter()
        spark_ctx.run(D, steps=["features"], engine="spark")
        c_time = time.perf_counter() - started
        spark_same = step_file.read_bytes() == duck_bytes
        spark_ctx.close()

    a, b = min(a_times), min(b_times)
    b2 = min(b2_times)
    rows = [("(b) hand-written DuckDB query, CASE WHEN inside aggregates", b, 1.0),
            ("(b2) the same query written with FILTER (WHERE ...)", b2, b2 / b),
            ("(a) Lifeloop feature step, DuckDB", a, a / b)]
    if c_time is not None:
        rows.append(("(c) Lifeloop feature step, Spark local[2]", c_time, c_time / b))
    if d_times:
        rows.append(("(d) Lifeloop feature step, DuckDB, C2 columns encrypted", min(d_times), min(d_times) / b))
    import pyarrow.parquet as pq

    meta = pq.read_metadata(step_file)
    print()
    print(f"{args.customers:,} customers, {args.transactions:,} transactions, {meta.num_columns - 1} tags, "
          f"input {size / 1e9:.2f} GB Parquet; {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"duckdb {duckdb.__version__}")
    print()
    print("| run | seconds | ratio to (b) |")
    print("|---|---:|---:|")
    for name, secs, ratio in rows:
        print(f"| {name} | {secs:.2f} | {ratio:.2f} |")
    print()
    print(f"(a) vs (b) values: {detail}")
    print(f"runs: (a) {[round(x, 2) for x in a_times]}, (b) {[round(x, 2) for x in b_times]}, "
          f"(b2) {[round(x, 2) for x in b2_times]}")
    print(f"load average (1, 5, 15 min) before {tuple(round(x, 1) for x in loads[0])}, "
          f"after {tuple(round(x, 1) for x in loads[1])}")
    if c_time is not None:
        print(f"(c) Spark session start {spark_start:.1f}s (not in the ratio); (c) file identical to (a): {spark_same}")
    if d_times:
        print(f"(d) encrypted lake: best {min(d_times):.2f}s vs (a) {a:.2f}s, ratio d/a {min(d_times) / a:.3f} "
              f"(runs {[round(x, 2) for x in d_times]}); file identical to (a): {enc_same}")
        print()
        print("| step | wall best | wall median | CPU best | CPU median | runs wall / CPU |")
        print("|---|---:|---:|---:|---:|---|")
        for name, walls, cpus in (("(a) plaintext", a_times, a_cpu), ("(d) encrypted", d_times, d_cpu)):
            print(f"| {name} | {min(walls):.2f} | {median(walls):.2f} | {min(cpus):.2f} | {median(cpus):.2f} | "
                  f"{', '.join(f'{x:.2f}' for x in walls)} / {', '.join(f'{x:.2f}' for x in cpus)} |")
        print(f"| d/a | {min(d_times) / a:.3f} | {median(d_times) / median(a_times):.3f} | "
              f"{min(d_cpu) / min(a_cpu):.3f} | {median(d_cpu) / median(a_cpu):.3f} | |")
    results = {"customers": args.customers, "transactions": args.transactions, "a": a_times, "b": b_times,
               "b2": b2_times,
               "c": c_time, "spark_start": spark_start, "a_equals_b": ok, "c_bytes_equal_a": spark_same,
               "cores": os.cpu_count(), "input_bytes": size, "d": d_times, "d_bytes_equal_a": enc_same,
               "d_over_a": min(d_times) / a if d_times else None, "a_cpu": a_cpu, "d_cpu": d_cpu,
               "d_over_a_cpu": min(d_cpu) / min(a_cpu) if d_cpu else None, "load_average": loads}
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    return 0 if ok and spark_same in (None, True) and enc_same in (None, True) else 1


if __name__ == "__main__":
    raise SystemExit(main())
