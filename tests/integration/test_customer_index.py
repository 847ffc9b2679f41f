"""The customer index: a customer 360 and a worklist read a few row groups, and answer exactly as the full scan."""

from __future__ import annotations

import datetime as dt
import shutil

import pyarrow.parquet as pq
import pytest

from lifeloop.execution.worklists import current_owners
from lifeloop.store import customer_index
from lifeloop.store.lake_crypto import encrypted_columns
from tests.factories import BANK_AS_OF, _txn, canonical_bank, new_context, write_canonical

NEXT_DAY = BANK_AS_OF + dt.timedelta(days=1)


def workspace(root, encryption: bool):
    """A workspace that builds the index at the end of every ingest (a bank's daily batch)."""
    from lifeloop.context import Context

    ctx = new_context(root)
    path = ctx.workspace / "lifeloop.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "  encryption: on\n", f"  encryption: {'on' if encryption else 'off'}\n  customer_index: ingest\n"),
        encoding="utf-8")
    ctx.close()
    ctx = Context(ctx.workspace)
    assert ctx.config.lake.customer_index == "ingest"
    return ctx


def bank_with_more_customers():
    bank = canonical_bank()
    # enough rows for several row groups of a small index (ROW_GROUP is patched to 2 below)
    for i in range(4, 12):
        bank["customers"].append({"customer_id": f"C{i}", "name": f"客户{i}", "gender": "F", "birth_date": "1980-01-01",
                                  "branch_id": "B1", "rm_id": "RM1" if i % 2 else "", "open_date": "2021-01-01",
                                  "is_prospect": "false", "risk_level": "C2"})
        bank["transactions"].append(_txn(f"T{i}0", "A1", f"C{i}", "2024-03-10", f"{i}.00", "debit", "fee", "system",
                                         "internal", "false"))
    return bank


def profile(ctx, customer_id, monkeypatch=None, index=True):
    """The analyst's profile, with the index or with the index made unusable (the scan)."""
    if not index:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(customer_index, "customer_rows", lambda *a, **k: None)
            got = ctx.customer(customer_id)
    else:
        got = ctx.customer(customer_id)
    got["access"].pop("at")
    return got


@pytest.fixture(params=[True, False], ids=["encrypted", "plaintext"])
def ctx(request, tmp_path, monkeypatch):
    monkeypatch.setattr(customer_index, "ROW_GROUP", 2)
    context = workspace(tmp_path, request.param)
    context.ingest(write_canonical(tmp_path / "extracts", bank_with_more_customers()))
    yield context
    context.close()


def test_ingest_publishes_an_index_sorted_by_customer_with_offsets(ctx):
    folder = ctx.lake.snapshot_dir("customer_index", BANK_AS_OF)
    txns = pq.read_table(folder / "transactions.parquet", columns=["customer_id", "transaction_id"])
    ids = txns["customer_id"].to_pylist()
    assert ids == sorted(ids) and len(ids) == 5 + 8
    assert pq.read_metadata(folder / "transactions.parquet").num_row_groups == 7   # 13 rows, 2 per group
    offsets = {r["customer_id"]: r for r in pq.read_table(folder / "offsets.parquet").to_pylist()}
    c1 = offsets["C1"]
    assert ids[c1["transactions_start"]:c1["transactions_end"]] == ["C1"] * 4
    assert (offsets["C3"]["transactions_start"], offsets["C3"]["transactions_end"]) == (0, 0)   # no transactions
    assert ctx.lake.manifest("customer_index", BANK_AS_OF)["bank"] == customer_index.bank_runs(ctx.lake, BANK_AS_OF)
    assert bool(encrypted_columns(folder / "transactions.parquet")) == ctx.config.lake.encryption
    if ctx.config.lake.encryption:
        assert "name" in encrypted_columns(folder / "customers.parquet")


def test_a_profile_from_the_index_is_the_profile_from_the_scan(ctx, monkeypatch):
    used = []
    real = customer_index.customer_rows

    def spy(*args, **kwargs):
        got = real(*args, **kwargs)
        used.append(got is not None)
        return got
    monkeypatch.setattr(customer_index, "customer_rows", spy)
    for customer_id in ("C1", "C2", "C3", "C7", "C11"):
        fast = profile(ctx, customer_id)
        assert used[-1] is True
        assert fast == profile(ctx, customer_id, index=False)
    assert [t["transaction_id"] for t in profile(ctx, "C1")["transactions"]] == ["T5", "T3", "T2", "T1"]


def test_an_rm_book_from_the_index_holds_exactly_their_customers(ctx):
    book = current_owners(ctx.lake, None, "RM1")
    full = current_owners(ctx.lake, None)
    assert book == {c: r for c, r in full.items() if r["rm_id"] == "RM1"}
    assert sorted(book) == ["C1", "C11", "C5", "C7", "C9"]
    assert book["C5"]["name"] == "客户5"   # decrypted


def test_the_index_stays_right_after_the_next_days_ingest(ctx, tmp_path):
    bank = bank_with_more_customers()
    bank["transactions"].append(_txn("T99", "A1", "C1", NEXT_DAY.isoformat(), "7.00", "credit", "interest", "system",
                                     "internal", "false"))
    ctx.ingest(write_canonical(tmp_path / "next", {"transactions": bank["transactions"][-1:]}), as_of=NEXT_DAY,
               today=NEXT_DAY)
    assert ctx.lake.exists("customer_index", NEXT_DAY)
    fast = profile(ctx, "C1")
    assert fast["as_of"] == NEXT_DAY and fast["transactions"][0]["transaction_id"] == "T99"
    assert fast == profile(ctx, "C1", index=False)


def test_a_stale_or_missing_index_is_not_used(ctx, tmp_path):
    shutil.rmtree(ctx.lake.snapshot_dir("customer_index", BANK_AS_OF))
    assert customer_index.customer_rows(ctx.lake, BANK_AS_OF, "C1") is None
    assert profile(ctx, "C1")["transactions"][0]["transaction_id"] == "T5"
    ctx.build_customer_index(BANK_AS_OF)
    assert customer_index.customer_rows(ctx.lake, BANK_AS_OF, "C1") is not None
    # the bank batch it was built from is published again (a corrected extract): the index is stale
    ctx.ingest(write_canonical(tmp_path / "again", bank_with_more_customers()), as_of=BANK_AS_OF)
    assert customer_index.usable(ctx.lake, BANK_AS_OF) is not None   # rebuilt by that ingest
    ctx.lake.snapshot_dir("customer_index", BANK_AS_OF).joinpath("_manifest.json").write_text(
        ctx.lake.snapshot_dir("customer_index", BANK_AS_OF).joinpath("_manifest.json").read_text()
        .replace('"bank": {', '"bank": {"1999-01-01": "x", '), encoding="utf-8")
    assert customer_index.usable(ctx.lake, BANK_AS_OF) is None
    assert profile(ctx, "C2") == profile(ctx, "C2", index=False)


def test_an_unknown_customer_still_gets_did_you_mean(ctx):
    from lifeloop.errors import NotFoundError

    with pytest.raises(NotFoundError, match="did you mean 'C1'"):
        ctx.customer("c1")


def test_a_reingest_of_the_same_batch_keeps_the_index_and_serve_mode_builds_none_at_ingest(ctx, tmp_path):
    before = ctx.lake.manifest("customer_index", BANK_AS_OF)["run_id"]
    assert ctx.ingest(write_canonical(tmp_path / "extracts", bank_with_more_customers())).unchanged
    assert ctx.lake.manifest("customer_index", BANK_AS_OF)["run_id"] == before and ctx.customer_index_missing() is None
    path = ctx.workspace / "lifeloop.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("customer_index: ingest", "customer_index: serve"),
                    encoding="utf-8")
    from lifeloop.context import Context

    with Context(ctx.workspace) as serve:
        serve.ingest(write_canonical(tmp_path / "next", {"transactions": [_txn(
            "T98", "A1", "C1", NEXT_DAY.isoformat(), "1.00", "credit", "interest", "system", "internal", "false")]}),
            as_of=NEXT_DAY, today=NEXT_DAY)
        assert not serve.lake.exists("customer_index", NEXT_DAY)
        assert serve.customer_index_missing() == NEXT_DAY   # what the web app builds in the background


def test_a_purge_removes_the_index_holding_the_customer_and_the_next_one_is_built_without_them(ctx):
    from lifeloop.store import erasure

    done = erasure.rewrite_areas(ctx.lake, erasure.areas(ctx.lake), ["C5"], note={"request": "test"})
    assert done.snapshots[f"customer_index/{BANK_AS_OF.isoformat()}"] == 1
    assert not ctx.lake.exists("customer_index", BANK_AS_OF) and ctx.customer_index_missing() == BANK_AS_OF
    assert profile(ctx, "C7") == profile(ctx, "C7", index=False)   # the scan, until it is rebuilt
    ctx.build_customer_index(BANK_AS_OF)
    ids = pq.read_table(ctx.lake.snapshot_dir("customer_index", BANK_AS_OF) / "offsets.parquet")["customer_id"]
    assert "C5" not in ids.to_pylist() and "C7" in ids.to_pylist()
    assert profile(ctx, "C7") == profile(ctx, "C7", index=False)
