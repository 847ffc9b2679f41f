"""Each check on a staged batch: located problems, capped, with what to do."""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lifeloop.data import validate
from lifeloop.data.schema import TABLES

AS_OF = dt.date(2024, 3, 31)


def staged_transactions(rows: list[dict]) -> duckdb.DuckDBPyConnection:
    """``stage_transactions`` as the mapping step leaves it: canonical columns plus file and row."""
    con = duckdb.connect()
    base = {"transaction_id": "T", "account_id": "A1", "customer_id": "C1", "txn_date": dt.date(2024, 3, 1),
            "amount": 1, "direction": "credit", "txn_type": "salary", "channel": None, "counterparty_kind": None,
            "customer_initiated": False, "balance_after": None}
    full = [{"__file": "txns.csv", "__part": 0, "__row": i + 1, **base, **r} for i, r in enumerate(rows)]
    con.register("raw", pa.Table.from_pylist(full))
    con.execute("create table stage_transactions as select * exclude (amount), amount::decimal(18,2) amount from raw")
    return con


def test_a_missing_required_value_is_located(tmp_path):
    con = staged_transactions([{"transaction_id": "T1"}, {"transaction_id": "T2", "customer_id": None}])
    [result] = [r for r in validate.required_values(con, TABLES["transactions"]) if r.total]
    assert result.total == 1
    assert str(result.problems[0]) == "txns.csv, table transactions, row 2, column customer_id, rule required: " \
                                      "customer_id is required but missing"


def test_problems_are_capped_at_twenty_with_a_count_of_the_rest():
    con = staged_transactions([{"transaction_id": f"T{i}", "direction": "in"} for i in range(1, 1_226)])
    [result] = [r for r in validate.allowed_codes(con, TABLES["transactions"]) if r.total]
    assert result.total == 1_225
    assert len(result.problems) == 21
    assert result.problems[0].row == 1 and result.problems[19].row == 20
    assert result.problems[-1].message == "... and 1,205 more rows"
    assert result.problems[0].message == "'in' is not an allowed code (allowed: credit, debit)"
    assert "map:" in result.hint


def test_a_negative_amount_is_refused():
    con = staged_transactions([{"transaction_id": "T1", "amount": -5}])
    [result] = [r for r in validate.nonnegative(con, TABLES["transactions"]) if r.total]
    assert (result.problems[0].row, result.problems[0].column) == (1, "amount")
    assert result.problems[0].message == "amount is negative (-5.00)"


def test_a_duplicate_key_names_the_repeated_row_and_the_first():
    con = staged_transactions([{"transaction_id": "T1"}, {"transaction_id": "T2"}, {"transaction_id": "T1"}])
    [result] = validate.unique_in_batch(con, TABLES["transactions"])
    assert result.total == 1
    assert (result.problems[0].row, result.problems[0].message) == (3,
                                                                    "duplicate key transaction_id=T1 (first "
                                                                    "seen at txns.csv row 1)")


def test_dates_after_the_as_of_date_and_absurd_dates_are_refused():
    con = staged_transactions([{"transaction_id": "T1", "txn_date": dt.date(2024, 4, 1)},
                               {"transaction_id": "T2", "txn_date": dt.date(1899, 12, 31)}])
    results = {r.rule: r for r in validate.date_ranges(con, TABLES["transactions"], AS_OF) if r.total}
    assert results["as_of"].problems[0].message == "dated 2024-04-01, after the as-of date 2024-03-31"
    assert results["date_range"].problems[0].row == 2
    assert "outside 1900-2199" in results["date_range"].problems[0].message


def test_a_reference_to_a_published_customer_passes_and_an_unknown_one_fails(tmp_path):
    published = tmp_path / "customers.parquet"
    pq.write_table(pa.table({"customer_id": ["C1"]}), published)
    con = staged_transactions([{"transaction_id": "T1"}, {"transaction_id": "T2", "customer_id": "C2"}])
    fk = TABLES["transactions"].foreign_keys[0]
    result = validate.references(con, TABLES["transactions"], fk, validate.parquet([published]), "the published batch")
    assert result.total == 1
    assert str(result.problems[0]) == "txns.csv, table transactions, row 2, column customer_id, rule reference: " \
                                      "customer_id 'C2' not found in customers (the published batch)"


def test_check_batch_returns_only_failed_checks_and_compares_keys_with_other_batches(tmp_path):
    earlier = tmp_path / "transactions.parquet"
    pq.write_table(pa.table({"transaction_id": ["T0", "T1"]}), earlier)
    con = staged_transactions([{"transaction_id": "T1"}, {"transaction_id": "T2"}])
    from lifeloop.data.schema import arrow_schema

    customers = pa.Table.from_pylist([{"customer_id": "C1", "branch_id": None}],
                                     schema=arrow_schema("customers").set(
                                         9, pa.field("branch_id", pa.string())))  # nullable, to stage a gap
    con.register("c", customers.append_column("__file", pa.array(["c.csv"])).append_column("__part", pa.array([0]))
                 .append_column("__row", pa.array([1])))
    con.execute("create table stage_customers as select * from c")
    failed = validate.check_batch(con, ["customers", "transactions"], AS_OF, {}, {"transactions": [earlier]})
    assert [(r.rule, r.total) for r in failed] == [("required", 1), ("unique", 1)]  # customers lacks branch_id
    assert failed[1].problems[0].message == "key transaction_id=T1 was already published in an earlier batch"


@pytest.mark.parametrize("rule", ["required", "allowed", "nonnegative", "unique", "as_of", "date_range", "reference"])
def test_every_check_says_what_to_do(rule):
    con = staged_transactions([{"transaction_id": "T1", "customer_id": None, "direction": "x", "amount": -1,
                                "txn_date": dt.date(1800, 1, 1)}, {"transaction_id": "T1",
                                                                   "txn_date": dt.date(2030, 1, 1)}])
    t = TABLES["transactions"]
    results = (validate.required_values(con, t) + validate.allowed_codes(con, t) + validate.nonnegative(con, t)
               + validate.unique_in_batch(con, t) + validate.date_ranges(con, t, AS_OF)
               + [validate.references(con, t, t.foreign_keys[0], None, "customers is missing")])
    found = [r for r in results if r.rule == rule and r.total]
    assert found and all(r.hint and r.problems[0].rule == rule for r in found)


def test_a_key_repeated_across_two_files_of_a_union_is_found_even_at_the_same_row_number():
    con = staged_transactions([{"transaction_id": "T1"}])
    con.execute("insert into stage_transactions select * replace ('other.csv' as __file, 1 as __part) "
                "from stage_transactions")
    [result] = validate.unique_in_batch(con, TABLES["transactions"])
    assert [(p.file, p.row, p.message) for p in result.problems] == \
        [("other.csv", 1, "duplicate key transaction_id=T1 (first seen at txns.csv row 1)")]


def test_a_refused_birth_date_is_located_but_never_quoted():
    con = duckdb.connect()
    dates = {c.name: dt.date(2020, 1, 1) for c in TABLES["customers"].columns if c.type == "DATE"}
    con.register("raw", pa.Table.from_pylist([{"__file": "cust.csv", "__part": 0, "__row": 1, "customer_id": "C1",
                                               **dates, "birth_date": dt.date(1850, 5, 1)}]))
    con.execute("create table stage_customers as select * from raw")
    [result] = [r for r in validate.date_ranges(con, TABLES["customers"], AS_OF) if r.total]
    [p] = result.problems
    assert (p.row, p.column) == (1, "birth_date") and "1850" not in p.message
    assert p.message.startswith("birth_date <personal data withheld> is outside 1900-2199")
