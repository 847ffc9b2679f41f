"""Canonical extract folders (CSV, Parquet, other delimiters and encodings) and batch-to-batch rules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from lifeloop.errors import IngestError, ValidationError
from tests.factories import BANK_AS_OF, canonical_bank, lake_fingerprint, new_context, write_canonical, write_csv
from tests.refusals import state

COUNTS = {"branches": 2, "relationship_managers": 1, "customers": 3, "products": 3, "holdings": 4, "transactions": 5}


def _published(ctx, table: str, as_of: dt.date = BANK_AS_OF) -> list[dict]:
    return ctx.lake.read_table(ctx.lake.snapshot_dir("bank", as_of) / f"{table}.parquet").to_pylist()


def test_a_canonical_csv_folder_ingests_without_a_mapping(tmp_path):
    ctx = new_context(tmp_path)
    report = ctx.ingest(write_canonical(tmp_path / "src"))
    assert report.as_of == BANK_AS_OF  # the latest transaction / snapshot date
    assert report.tables == COUNTS and not report.unchanged and report.warnings == []
    c1 = _published(ctx, "customers")[0]
    assert (c1["customer_id"], c1["name"], c1["birth_date"], c1["is_prospect"], c1["rm_id"]) == \
        ("C1", "李娜", dt.date(1960, 5, 1), False, "RM1")
    assert _published(ctx, "customers")[1]["rm_id"] is None  # an empty CSV value is NULL
    assert [h["balance"] for h in _published(ctx, "holdings")] == \
        [Decimal("1000.00"), Decimal("1250.50"), Decimal("50000.00"), Decimal("0.00")]
    assert [t["transaction_id"] for t in _published(ctx, "transactions")] == ["T1", "T2", "T3", "T4", "T5"]


def test_a_canonical_parquet_folder_ingests_without_a_mapping_to_the_same_bytes_as_csv(tmp_path):
    from_csv = new_context(tmp_path / "a")
    from_csv.ingest(write_canonical(tmp_path / "csv"))
    from_parquet = new_context(tmp_path / "b")
    report = from_parquet.ingest(write_canonical(tmp_path / "pq", fmt="parquet"))
    assert report.tables == COUNTS
    for table in COUNTS:
        a = from_csv.lake.snapshot_dir("bank", BANK_AS_OF) / f"{table}.parquet"
        b = from_parquet.lake.snapshot_dir("bank", BANK_AS_OF) / f"{table}.parquet"
        # encrypted files differ on every write (random data keys, nonces): the same content, hashed in plaintext
        assert from_csv.lake.read_table(a).equals(from_parquet.lake.read_table(b)), table
    assert from_csv.lake.manifest("bank", BANK_AS_OF)["content"] == \
        from_parquet.lake.manifest("bank", BANK_AS_OF)["content"]


def test_a_gbk_semicolon_folder_reads_through_a_mapping_that_only_sets_the_source_format(tmp_path):
    src = write_canonical(tmp_path / "src", delimiter=";", encoding="gbk")
    mapping = tmp_path / "gbk.yaml"
    mapping.write_text('source: {delimiter: ";", encoding: gbk}\n', encoding="utf-8")
    ctx = new_context(tmp_path)
    with pytest.raises(IngestError) as info:  # GBK is found per file, but the semicolons need the mapping
        ctx.ingest(src)
    assert "'branch_id;name;city;region' is not a column of branches" in info.value.message
    report = ctx.ingest(src, mapping)
    assert report.tables == COUNTS
    assert _published(ctx, "customers")[0]["name"] == "李娜"


def test_reingesting_identical_input_gives_identical_bytes_and_reports_unchanged(tmp_path):
    ctx = new_context(tmp_path)
    src = write_canonical(tmp_path / "src")
    first = ctx.ingest(src)
    before = {k: v for k, v in lake_fingerprint(ctx).items() if k != "_runs.jsonl"}
    second = ctx.ingest(src)
    assert second.unchanged and second.run_id == first.run_id and second.tables == first.tables
    assert {k: v for k, v in lake_fingerprint(ctx).items() if k != "_runs.jsonl"} == before


def test_a_file_that_is_not_a_canonical_table_is_refused_with_did_you_mean(tmp_path):
    src = write_canonical(tmp_path / "src")
    (src / "customers.csv").rename(src / "customer.csv")
    (src / "_truth").mkdir()  # folders and files starting with _ are skipped
    (src / "_truth" / "labels.csv").write_text("x\n1\n")
    with pytest.raises(IngestError) as info:
        new_context(tmp_path).ingest(src)
    assert [(p.file, p.message) for p in info.value.problems] == \
        [("customer.csv", "not a canonical table file; did you mean customers.csv?")]


def test_a_misspelt_column_in_a_canonical_file_is_refused(tmp_path):
    src = write_canonical(tmp_path / "src")
    products = canonical_bank()["products"]
    products[0]["fee_rte"] = "0.1"
    write_csv(src / "products.csv", products)
    with pytest.raises(IngestError) as info:
        new_context(tmp_path).ingest(src)
    p = info.value.problems[0]
    assert (p.file, p.column, p.message) == ("products.csv", "fee_rte",
                                             "'fee_rte' is not a column of products; did you mean 'fee_rate'?")


def test_a_transaction_dated_after_the_as_of_date_is_refused(tmp_path):
    ctx = new_context(tmp_path)
    with pytest.raises(ValidationError) as info:
        ctx.ingest(write_canonical(tmp_path / "src"), as_of=dt.date(2024, 3, 30))
    p = info.value.problems[0]
    assert (p.file, p.table, p.row, p.column, p.rule) == ("holdings.csv", "holdings", 2, "snapshot_date", "as_of")
    assert p.message == "dated 2024-03-31, after the as-of date 2024-03-30"
    assert "rows_after_as_of: drop" in info.value.hint
    assert lake_fingerprint(ctx) == {}


def test_a_later_batch_of_transactions_only_is_checked_against_what_is_published(tmp_path):
    ctx = new_context(tmp_path)
    ctx.ingest(write_canonical(tmp_path / "first"))
    later = canonical_bank()["transactions"]
    new = dict(later[0], transaction_id="T6", txn_date="2024-04-01")
    orphan = dict(later[0], transaction_id="T7", txn_date="2024-04-01", customer_id="C9")
    again = dict(later[1])  # T2 was published in the first batch
    with pytest.raises(ValidationError) as info:
        ctx.ingest(write_canonical(tmp_path / "bad", {"transactions": [new, orphan, again]}))
    found = {(p.rule, p.row, p.message) for p in info.value.problems}
    assert ("reference", 2, "customer_id 'C9' not found in customers (the published batch)") in found
    assert ("unique", 3, "key transaction_id=T2 was already published in an earlier batch") in found
    report = ctx.ingest(write_canonical(tmp_path / "good", {"transactions": [new]}))
    assert report.as_of == dt.date(2024, 4, 1) and report.tables == {"transactions": 1}
    assert ctx.lake.bank_files(dt.date(2024, 4, 1))["customers"][0].parent.name == "as_of=2024-03-31"


def test_reingesting_a_date_with_other_rows_replaces_that_batch(tmp_path):
    ctx = new_context(tmp_path)
    tables = canonical_bank()
    ctx.ingest(write_canonical(tmp_path / "v1", tables))
    tables["transactions"] = tables["transactions"][:4] + [dict(tables["transactions"][4], amount="0.02")]
    report = ctx.ingest(write_canonical(tmp_path / "v2", tables))  # same keys, same date: no duplicate
    assert not report.unchanged
    assert _published(ctx, "transactions")[-1]["amount"] == Decimal("0.02")


def test_the_first_batch_must_hold_the_tables_a_bank_always_has(tmp_path):
    tables = canonical_bank()
    del tables["products"]
    del tables["holdings"]
    ctx = new_context(tmp_path)
    with pytest.raises(ValidationError) as info:
        ctx.ingest(write_canonical(tmp_path / "src", tables))
    assert [p.table for p in info.value.problems] == ["products", "holdings"]
    assert "rows: []" in info.value.hint


def test_progress_bars_do_not_change_what_is_published(tmp_path):
    src = write_canonical(tmp_path / "src", delimiter=";", encoding="gbk")
    mapping = tmp_path / "gbk.yaml"
    mapping.write_text('source: {delimiter: ";", encoding: gbk}\n', encoding="utf-8")
    quiet, loud = new_context(tmp_path / "a"), new_context(tmp_path / "b")
    assert quiet.ingest(src, mapping).run_id == loud.ingest(src, mapping, progress=True).run_id


def test_a_single_canonical_file_is_a_batch_of_that_table(tmp_path):
    ctx = new_context(tmp_path)
    ctx.ingest(write_canonical(tmp_path / "first"))
    day = dict(canonical_bank()["transactions"][0], transaction_id="T9", txn_date="2024-04-02")
    write_csv(tmp_path / "daily" / "transactions.csv", [day])
    report = ctx.ingest(tmp_path / "daily" / "transactions.csv")
    assert (report.as_of, report.tables) == (dt.date(2024, 4, 2), {"transactions": 1})


def test_one_gbk_file_among_utf8_files_ingests_without_a_mapping_and_the_report_says_how_each_was_read(tmp_path):
    tables = canonical_bank()
    src = write_canonical(tmp_path / "src", {k: v for k, v in tables.items() if k != "customers"})
    write_csv(src / "customers.csv", tables["customers"], encoding="gbk")
    ctx = new_context(tmp_path)
    report = ctx.ingest(src)
    assert report.tables == COUNTS
    assert report.encodings == {"branches.csv": "utf-8", "customers.csv": "gb18030", "holdings.csv": "utf-8",
                                "products.csv": "utf-8", "relationship_managers.csv": "utf-8",
                                "transactions.csv": "utf-8"}
    assert _published(ctx, "customers")[0]["name"] == "李娜"
    assert [r["name"] for r in _published(ctx, "branches")] == [r["name"] for r in tables["branches"]]


def test_a_file_neither_utf8_nor_gb18030_keeps_the_precise_decode_error_and_publishes_nothing(tmp_path):
    ctx = new_context(tmp_path)
    ctx.ingest(write_canonical(tmp_path / "first"))
    before = state(ctx)
    src = write_canonical(tmp_path / "src")
    text = (src / "customers.csv").read_text(encoding="utf-8").replace("李娜", "Zoë Müller")
    (src / "customers.csv").write_bytes(text.encode("latin-1"))
    with pytest.raises(IngestError) as info:
        ctx.ingest(src)
    assert info.value.message.startswith("customers.csv: not valid utf-8 text at line 2, byte ")
    assert info.value.hint == "this file looks like cp1250 (Central European): set encoding: cp1250 for it in the " \
                              "mapping's source block"
    assert state(ctx) == before


def test_a_mapping_can_ask_for_auto_and_an_explicit_encoding_still_applies_to_every_file(tmp_path):
    tables = canonical_bank()
    src = write_canonical(tmp_path / "src", {k: v for k, v in tables.items() if k != "customers"})
    write_csv(src / "customers.csv", tables["customers"], encoding="gbk")
    auto = tmp_path / "auto.yaml"
    auto.write_text("source: {encoding: auto}\n", encoding="utf-8")
    assert new_context(tmp_path / "a").ingest(src, auto).encodings["customers.csv"] == "gb18030"
    utf8 = tmp_path / "utf8.yaml"
    utf8.write_text("source: {encoding: utf-8}\n", encoding="utf-8")
    with pytest.raises(IngestError) as info:   # declared UTF-8 is UTF-8: the GBK file is refused, pointing at GBK
        new_context(tmp_path / "b").ingest(src, utf8)
    assert info.value.hint.startswith("this file looks like GBK: set encoding: gbk")
