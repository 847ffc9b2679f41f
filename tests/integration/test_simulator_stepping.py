"""Stepping the simulated bank forward with Lifeloop's contacts: the closed loop's test bench."""

import datetime as dt
import hashlib
import math
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from lifeloop.data.schema import TABLES, arrow_schema
from lifeloop.data.simulator import SimulatedBank, simulate


def file_hashes(root: Path, *, skip=("_sim",)) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.relative_to(root).parts[0] not in skip}


def test_the_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path):
    a = simulate(tmp_path / "a", customers=400, days=45, seed=9)
    b = simulate(tmp_path / "b", customers=400, days=45, seed=9)
    c = simulate(tmp_path / "c", customers=400, days=45, seed=10)
    ha, hb, hc = file_hashes(a.out), file_hashes(b.out), file_hashes(c.out)
    assert "transactions.parquet" in ha and "_truth/customers.parquet" in ha
    assert ha == hb
    assert ha["transactions.parquet"] != hc["transactions.parquet"]
    # stepping is deterministic too: the same contacts on the same bank give the same day
    contacts = [{"customer_id": "C000000003", "offer": "WM090", "channel": "rm", "treated": True}]
    da = SimulatedBank.open(a.out).advance(contacts)
    db = SimulatedBank.open(b.out).advance(contacts)
    assert file_hashes(da.folder) == file_hashes(db.folder)


def test_csv_extracts_have_the_canonical_header_and_iso_dates(tmp_path):
    result = simulate(tmp_path / "csv", customers=200, days=20, seed=1, format="csv")
    for name in TABLES:
        header = (result.out / f"{name}.csv").read_text(encoding="utf-8").splitlines()[0]
        assert header.split(",") == [f.name for f in arrow_schema(name)], name
    first = (result.out / "transactions.csv").read_text(encoding="utf-8").splitlines()[1].split(",")
    assert dt.date.fromisoformat(first[3]) == dt.date(2024, 1, 1)


@pytest.fixture(scope="module")
def bank_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("stepbank")
    simulate(out, customers=20000, days=60, seed=4)
    return out


def test_an_advanced_day_is_a_canonical_folder_that_continues_the_bank(tmp_path, bank_dir):
    out = tmp_path / "bank"
    shutil.copytree(bank_dir, out)
    bank = SimulatedBank.open(out)
    assert bank.next_date == dt.date(2024, 3, 1)
    first = bank.advance(None)
    second = SimulatedBank.open(out).advance([])
    assert (first.date, second.date) == (dt.date(2024, 3, 1), dt.date(2024, 3, 2))
    for day in (first, second):
        for name in TABLES:
            table = pq.read_table(day.folder / f"{name}.parquet")
            assert table.schema.remove_metadata() == arrow_schema(name), name
        assert day.rows["customers"] == 20000 and day.rows["transactions"] > 1000
    con = duckdb.connect()
    dates = con.execute(f"SELECT DISTINCT txn_date FROM '{second.folder}/transactions.parquet'").fetchall()
    assert dates == [(dt.date(2024, 3, 2),)]
    # ids keep counting across the base extract and the day folders
    dup = con.execute(f"""SELECT count(*) - count(DISTINCT transaction_id) FROM read_parquet([
        '{out}/transactions.parquet', '{first.folder}/transactions.parquet', '{second.folder}/transactions.parquet'])""")  # noqa: E501
    assert dup.fetchone()[0] == 0


def test_treated_and_control_differ_by_the_configured_uplift_within_sampling_error(tmp_path, bank_dir):
    out = tmp_path / "bank"
    shutil.copytree(bank_dir, out)
    bank = SimulatedBank.open(out)
    truth = pq.read_table(out / "_truth" / "customers.parquet").to_pylist()
    eligible = [r["customer_id"] for r in truth if r["stage"] not in ("churned", "prospect")]
    rng = np.random.default_rng(0)
    chosen = rng.permutation(eligible)[:12000]
    contacts = [{"customer_id": c, "offer": "WM090", "channel": "rm", "treated": i < 6000}
                for i, c in enumerate(chosen)]
    expected = bank.expected_effect(contacts)
    contact_day = bank.next_date
    bank.advance(contacts)
    for _ in range(29):   # the 30-day evaluation window of the truth
        bank.advance(None)
    con = duckdb.connect()
    con.execute("CREATE TABLE ct (customer_id VARCHAR, treated BOOLEAN)")
    con.executemany("INSERT INTO ct VALUES (?, ?)", [(c["customer_id"], c["treated"]) for c in contacts])
    # what Lifeloop would measure: a new WM090 holding opened in the window, from the day folders
    rates = dict(con.execute(f"""
        WITH bought AS (SELECT DISTINCT customer_id FROM read_parquet('{out}/days/*/holdings.parquet')
                        WHERE product_id = 'WM090' AND open_date >= DATE '{contact_day}')
        SELECT treated, avg((customer_id IN (FROM bought))::INT) FROM ct GROUP BY 1""").fetchall())
    n = 6000
    se = math.sqrt(rates[True] * (1 - rates[True]) / n + rates[False] * (1 - rates[False]) / n)
    true_diff = expected.treated_rate - expected.control_rate
    assert true_diff > 0.03                      # the truth says RM contacts sell WM090
    assert abs((rates[True] - rates[False]) - true_diff) < 3 * se
    assert abs(rates[False] - expected.control_rate) < 3 * math.sqrt(expected.control_rate / n)
    assert expected.incremental_conversions == pytest.approx(n * true_diff, rel=0.01)


def test_the_canonical_extracts_and_an_advanced_day_load_through_ingest_and_features_run(tmp_path):
    pytest.importorskip("lifeloop.data.ingest")
    from lifeloop.context import Context

    ctx = Context.init(tmp_path / "ws")
    result = ctx.simulate(tmp_path / "extracts", customers=800, days=120, seed=2)
    report = ctx.ingest(result.out, as_of=result.as_of)
    assert report.tables["transactions"] == result.rows["transactions"]
    day = SimulatedBank.open(result.out).advance(
        [{"customer_id": "C000000001", "offer": "AUM_INFLOW", "channel": "sms", "treated": True}])
    report = ctx.ingest(day.folder, as_of=day.date)
    assert report.tables["customers"] == 800
    with ctx:
        [features] = ctx.run(day.date, steps=["features"])
    assert features.rows == 800


def test_conversions_leave_purchases_new_holdings_and_inflows_in_the_banks_own_data(tmp_path, bank_dir):
    out = tmp_path / "bank"
    shutil.copytree(bank_dir, out)
    bank = SimulatedBank.open(out)
    truth = pq.read_table(out / "_truth" / "customers.parquet").to_pylist()
    ids = [r["customer_id"] for r in truth if r["stage"] in ("mature", "growing")][:4000]
    contacts = ([{"customer_id": c, "offer": "WM090", "channel": "rm", "treated": True} for c in ids[:2000]]
                + [{"customer_id": c, "offer": "AUM_INFLOW", "channel": "rm", "treated": True} for c in ids[2000:]])
    bank.advance(contacts)
    for _ in range(29):
        bank.advance(None)
    con = duckdb.connect()
    conv = con.execute(f"""SELECT offer, customer_id, date, amount FROM '{out}/_truth/days/*/conversions.parquet'
                           WHERE source = 'treated'""").fetchall()
    wm = {(c, d): a for o, c, d, a in conv if o == "WM090"}
    inflow = {(c, d): a for o, c, d, a in conv if o == "AUM_INFLOW"}
    assert len(wm) > 50 and len(inflow) > 50
    # every WM090 conversion is a purchase debit of that amount and a new WM090 holding of that balance
    purchases = set(con.execute(f"""SELECT customer_id, txn_date, amount FROM '{out}/days/*/transactions.parquet'
                                    WHERE txn_type = 'purchase' AND direction = 'debit'""").fetchall())
    holdings = set(con.execute(f"""SELECT customer_id, open_date, balance FROM '{out}/days/*/holdings.parquet'
                                   WHERE product_id = 'WM090' AND snapshot_date = open_date""").fetchall())
    for (c, d), a in wm.items():
        assert (c, d, a) in purchases and (c, d, a) in holdings
    # every inflow conversion is money transferred in from another bank
    inflows = set(con.execute(f"""SELECT customer_id, txn_date, amount FROM '{out}/days/*/transactions.parquet'
                                  WHERE counterparty_kind = 'bank' AND direction = 'credit'""").fetchall())
    assert all((c, d, a) in inflows for (c, d), a in inflow.items())


def test_a_csv_bank_advances_into_csv_day_folders_that_ingest_loads(tmp_path):
    pytest.importorskip("lifeloop.data.ingest")
    from lifeloop.context import Context

    result = simulate(tmp_path / "csv", customers=300, days=40, seed=2, format="csv")
    ctx = Context.init(tmp_path / "ws")
    assert ctx.ingest(result.out, as_of=result.as_of).tables["customers"] == 300
    day = SimulatedBank.open(result.out).advance(
        [{"customer_id": "C000000005", "offer": "TD1Y", "channel": "sms", "treated": True}])
    assert sorted(p.suffix for p in day.folder.iterdir()) == [".csv"] * len(TABLES)
    report = ctx.ingest(day.folder, as_of=day.date)
    assert report.tables["transactions"] == day.rows["transactions"]


def test_reseeding_after_an_advance_keeps_the_id_counters_moving_on(tmp_path, bank_dir):
    out = tmp_path / "bank"
    shutil.copytree(bank_dir, out)
    bank = SimulatedBank.open(out)
    first = bank.advance(None)
    bank.reseed(5)                                   # a what-if branch from here on
    second = SimulatedBank.open(out).advance(None)
    con = duckdb.connect()
    dup = con.execute(f"""SELECT count(*) - count(DISTINCT transaction_id) FROM read_parquet([
        '{first.folder}/transactions.parquet', '{second.folder}/transactions.parquet'])""")
    assert dup.fetchall()[0][0] == 0
