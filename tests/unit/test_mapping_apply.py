"""Applying a mapping: code maps, date formats, derived values, lookups, unions, latest rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from lifeloop.data.ingest import keep_latest
from lifeloop.data.mapping import load_mapping
from lifeloop.data.transform import stage
from lifeloop.errors import IngestError, ValidationError

AS_OF = dt.date(1994, 10, 30)


def run(tmp_path: Path, files: dict[str, str], mapping: str, as_of: dt.date | None = AS_OF):
    """Stage a mapping over small files; return the DuckDB connection holding ``stage_<table>``."""
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "m.yaml").write_text(mapping, encoding="utf-8")
    con = duckdb.connect()
    stage(con, load_mapping(tmp_path / "m.yaml", tmp_path), as_of, tmp_path)
    return con


def rows(con, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


TRANS = ("id;acct;date;type;amount\n"
         "1;10;941028;PRIJEM;100.00\n"
         "2;10;941029;VYDAJ;30.50\n"
         "3;11;941029;PRIJEM;7\n")
TXN_MAPPING = """
source: {delimiter: ";"}
sources: {trans: {file: trans.csv}}
tables:
  transactions:
    from: trans
    columns:
      transaction_id: id
      account_id: acct
      customer_id: {expr: "'C' || acct"}
      txn_date: {column: date, format: "%y%m%d"}
      amount: amount
      direction: {column: type, map: {PRIJEM: credit, VYDAJ: debit}}
      txn_type: {value: other}
      customer_initiated: {expr: "days_since(strptime_free_date) < 2"}
"""


def test_codes_dates_constants_and_as_of_macros_are_mapped(tmp_path):
    mapping = TXN_MAPPING.replace("strptime_free_date", "day").replace(
        "    columns:\n      transaction_id", "    derive:\n      day: {column: date, format: \"%y%m%d\"}\n"
                                               "    columns:\n      transaction_id")
    con = run(tmp_path, {"trans.csv": TRANS}, mapping)
    assert rows(con, "select transaction_id, customer_id, txn_date, amount::varchar, direction, txn_type, "
                     "customer_initiated, __row from stage_transactions order by __row") == [
        ("1", "C10", dt.date(1994, 10, 28), "100.00", "credit", "other", False, 1),   # 2 days before the as-of date
        ("2", "C10", dt.date(1994, 10, 29), "30.50", "debit", "other", True, 2),
        ("3", "C11", dt.date(1994, 10, 29), "7.00", "credit", "other", True, 3)]


def test_unmapped_codes_are_errors_listing_every_code_with_its_first_row(tmp_path):
    trans = TRANS + "4;11;941030;VYBER;5\n5;11;941030;XX;5\n6;11;941030;VYBER;5\n"
    with pytest.raises(ValidationError) as info:
        run(tmp_path, {"trans.csv": trans}, TXN_MAPPING.replace("days_since(strptime_free_date) < 2", "true"))
    assert [(p.row, p.column, p.rule) for p in info.value.problems] == [(4, "type", "code"), (5, "type", "code")]
    assert info.value.problems[0].message == \
        "code 'VYBER' is not in the map for direction (2 row(s); unmapped codes: 'VYBER', 'XX')"
    assert info.value.total == 3


def test_a_default_takes_codes_not_in_the_map_and_missing_values(tmp_path):
    trans = TRANS + "4;11;941030;;5\n5;11;941030;XX;5\n"
    mapping = TXN_MAPPING.replace("days_since(strptime_free_date) < 2", "true").replace(
        "map: {PRIJEM: credit, VYDAJ: debit}}", "map: {PRIJEM: credit}, default: debit}")
    con = run(tmp_path, {"trans.csv": trans}, mapping)
    assert rows(con, "select direction from stage_transactions order by __row") == \
        [("credit",), ("debit",), ("credit",), ("debit",), ("debit",)]


def test_unreadable_dates_and_numbers_name_file_row_and_column(tmp_path):
    trans = TRANS.replace("941029;VYDAJ;30.50", "941399;VYDAJ;30,50")
    with pytest.raises(ValidationError) as info:
        run(tmp_path, {"trans.csv": trans}, TXN_MAPPING.replace("days_since(strptime_free_date) < 2", "true"))
    assert [str(p) for p in info.value.problems] == [
        "trans.csv, table transactions, row 2, column date, rule format: "
        "cannot read '941399' as a date with format %y%m%d (for txn_date)",
        "trans.csv, table transactions, row 2, column amount, rule type: "
        "cannot read '30,50' as DECIMAL(18,2) (for amount)"]


def test_a_mapping_that_uses_the_as_of_date_needs_one(tmp_path):
    with pytest.raises(IngestError) as info:
        run(tmp_path, {"trans.csv": TRANS}, TXN_MAPPING.replace("days_since(strptime_free_date) < 2",
                                                                  "txn_day_missing IS NULL OR as_of IS NULL")
            .replace("txn_day_missing", "id"), as_of=None)
    assert "uses the as-of date" in info.value.message and "--as-of" in info.value.hint


OWNERS = "disp_id;client;acct;type\n1;100;10;OWNER\n2;101;10;DISPONENT\n3;102;11;OWNER\n"


def test_a_lookup_joins_by_key_with_a_filter_and_reports_orphans(tmp_path):
    mapping = TXN_MAPPING.replace("days_since(strptime_free_date) < 2", "true").replace(
        "sources: {trans: {file: trans.csv}}", "sources: {trans: {file: trans.csv}, disp: {file: disp.csv}}").replace(
        "    columns:\n      transaction_id",
        "    lookups:\n      - {from: disp, match: {acct: acct}, where: \"type = 'OWNER'\", columns: {client: owner},"
        " required: true}\n    columns:\n      transaction_id").replace("{expr: \"'C' || acct\"}", "owner")
    con = run(tmp_path, {"trans.csv": TRANS, "disp.csv": OWNERS}, mapping)
    assert rows(con, "select transaction_id, customer_id from stage_transactions order by __row") == \
        [("1", "100"), ("2", "100"), ("3", "102")]
    with pytest.raises(ValidationError) as info:
        run(tmp_path, {"trans.csv": TRANS + "4;12;941030;PRIJEM;1\n", "disp.csv": OWNERS}, mapping)
    p = info.value.problems[0]
    assert (p.file, p.row, p.column, p.rule) == ("trans.csv", 4, "acct", "orphan")
    assert p.message == "orphan: no row in disp.csv (type = 'OWNER') with acct = 12"


def test_a_lookup_that_finds_two_rows_for_a_key_is_refused(tmp_path):
    mapping = TXN_MAPPING.replace("days_since(strptime_free_date) < 2", "true").replace(
        "sources: {trans: {file: trans.csv}}", "sources: {trans: {file: trans.csv}, disp: {file: disp.csv}}").replace(
        "    columns:\n      transaction_id",
        "    lookups:\n      - {from: disp, match: {acct: acct}, columns: {client: owner}}\n"
        "    columns:\n      transaction_id")
    with pytest.raises(IngestError) as info:
        run(tmp_path, {"trans.csv": TRANS, "disp.csv": OWNERS}, mapping)
    p = info.value.problems[0]
    assert (p.file, p.row) == ("disp.csv", 1)
    assert p.message == "acct = 10 appears 2 times (rows 1 and 2)"
    assert "where:" in info.value.hint


def test_a_union_with_latest_keeps_the_last_row_of_each_account_and_day(tmp_path):
    log = ("id;acct;date;balance\n1;10;941028;5\n2;10;941028;7\n3;10;941029;-2\n4;11;941029;1\n")
    mapping = """
source: {delimiter: ";"}
sources: {log: {file: log.csv}, opening: {file: opening.csv}}
tables:
  holdings:
    union:
      - from: log
        columns:
          account_id: acct
          customer_id: acct
          product_id: {value: CUR}
          snapshot_date: {column: date, format: "%y%m%d"}
          balance: {expr: "CASE WHEN balance LIKE '-%' THEN '0' ELSE balance END"}
          status: {value: open}
      - from: opening
        columns:
          account_id: acct
          customer_id: acct
          product_id: {value: CUR}
          snapshot_date: {column: day, format: "%Y-%m-%d"}
          balance: {value: 0}
          status: {value: open}
    latest: {key: [account_id, snapshot_date]}
"""
    con = run(tmp_path, {"log.csv": log, "opening.csv": "acct;day\n12;1994-10-01\n"}, mapping)
    counts = {"holdings": 5}
    keep_latest(con, load_mapping(tmp_path / "m.yaml", tmp_path), counts)
    assert counts == {"holdings": 4}
    assert rows(con, "select account_id, snapshot_date, balance::varchar, __file, __row from stage_holdings "
                     "order by 1, 2") == [
        ("10", dt.date(1994, 10, 28), "7.00", "log.csv", 2),
        ("10", dt.date(1994, 10, 29), "0.00", "log.csv", 3),
        ("11", dt.date(1994, 10, 29), "1.00", "log.csv", 4),
        ("12", dt.date(1994, 10, 1), "0.00", "opening.csv", 1)]


def test_an_expression_failing_on_a_value_names_the_table_and_file_instead_of_a_traceback(tmp_path):
    mapping = TXN_MAPPING.replace("days_since(strptime_free_date) < 2", "cast(amount AS INTEGER) > 0")
    with pytest.raises(IngestError) as info:
        run(tmp_path, {"trans.csv": TRANS.replace("30.50", "thirty")}, mapping)
    assert info.value.message.startswith("tables.transactions: the mapping's expressions fail on the data of "
                                         "trans.csv: Conversion Error")
    assert "TRY_CAST" in info.value.hint
