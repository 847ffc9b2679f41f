"""The lake's C2 columns encrypted at rest: unreadable without the keys, read back exactly with them,
decrypted only by queries that use them, and the steps' results unchanged."""

from __future__ import annotations

import os
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lifeloop.context import Context
from lifeloop.errors import ConfigError, DataError
from lifeloop.store import lake_crypto
from lifeloop.store.lake import Lake
from lifeloop.store.lake_crypto import LakeCrypto, c2_columns, duckdb_view, encrypted_columns
from tests.factories import BANK_AS_OF, canonical_bank, write_canonical

MOBILE, ID_NUMBER, NAME, EMAIL = "13912345678", "110101199011307432", "Ouyang Xiaoming", "ouyang.xm@example.cn"
# the largest balance and amount: a plaintext file holds them in its column statistics as well as its pages
BALANCE, AMOUNT = "98765.43", "9321.87"


def bank() -> dict:
    tables = canonical_bank()
    tables["customers"][1].update(name=NAME, mobile=MOBILE, id_number=ID_NUMBER, email=EMAIL)
    tables["holdings"][2]["balance"] = BALANCE
    tables["transactions"][2]["amount"] = AMOUNT
    return tables


def workspace(root, encryption: bool) -> Context:
    ctx = Context.init(root)
    if not encryption:
        text = (root / "lifeloop.yaml").read_text(encoding="utf-8")
        (root / "lifeloop.yaml").write_text(text.replace("encryption: on", "encryption: off"), encoding="utf-8")
        ctx = Context(root)
    ctx.ingest(write_canonical(root / "src", bank()))
    return ctx


def unscaled(amount: str) -> tuple[bytes, bytes]:
    """How Parquet stores a DECIMAL(18,2): the unscaled integer in 8 bytes, big-endian (fixed-length bytes, as
    pyarrow writes a plaintext file) or little-endian (INT64, as an encrypted file is laid out)."""
    value = int(Decimal(amount) * 100)
    return value.to_bytes(8, "big", signed=True), value.to_bytes(8, "little", signed=True)


# each secret in every form a file could hold it in
SECRETS = {"customers": [(MOBILE.encode(),), (ID_NUMBER.encode(),), (NAME.encode(),), (EMAIL.encode(),)],
           "holdings": [unscaled(BALANCE)], "transactions": [unscaled(AMOUNT)]}


@pytest.fixture(scope="module")
def lakes(tmp_path_factory):
    root = tmp_path_factory.mktemp("lakes")
    return workspace(root / "enc", True), workspace(root / "plain", False)


def test_without_the_keys_the_files_reveal_no_c2_value_while_a_plaintext_lake_does(lakes):
    enc, plain = lakes
    for table, secrets in SECRETS.items():
        enc_bytes = (enc.lake.snapshot_dir("bank", BANK_AS_OF) / f"{table}.parquet").read_bytes()
        plain_bytes = (plain.lake.snapshot_dir("bank", BANK_AS_OF) / f"{table}.parquet").read_bytes()
        for forms in secrets:
            # the search finds them where they are plaintext, and in no form in the encrypted file (nor its stats)
            assert any(form in plain_bytes for form in forms), (table, forms)
            assert not any(form in enc_bytes for form in forms), (table, forms)


def test_pyarrow_without_keys_reads_only_the_plaintext_columns(lakes):
    enc, _ = lakes
    path = enc.lake.snapshot_dir("bank", BANK_AS_OF) / "customers.parquet"
    assert encrypted_columns(path) == c2_columns("customers") == ["name", "birth_date", "id_number", "mobile", "email"]
    with pytest.raises(OSError, match="decrypt"):
        pq.read_table(path)
    with pytest.raises(OSError, match="decrypt"):
        pq.read_table(path, columns=["customer_id", "mobile"])
    assert pq.read_table(path, columns=["customer_id", "branch_id"]).to_pylist()[1] == \
        {"customer_id": "C2", "branch_id": "B2"}
    with pytest.raises(DataError, match="encrypted") as info:
        Lake(enc.lake.root).read_table(path)                  # a lake opened without keys says why
    assert "Context" in info.value.hint


def test_with_the_keys_every_table_reads_back_exactly_as_the_plaintext_lake(lakes):
    enc, plain = lakes
    for table in ("branches", "relationship_managers", "customers", "products", "holdings", "transactions"):
        a = enc.lake.read_table(enc.lake.snapshot_dir("bank", BANK_AS_OF) / f"{table}.parquet")
        b = plain.lake.read_table(plain.lake.snapshot_dir("bank", BANK_AS_OF) / f"{table}.parquet")
        assert a.replace_schema_metadata(None).equals(b.replace_schema_metadata(None)), table
    assert enc.lake.manifest("bank", BANK_AS_OF)["content"] == plain.lake.manifest("bank", BANK_AS_OF)["content"]


def test_the_engine_decrypts_c2_only_for_queries_that_read_it(lakes):
    enc, _ = lakes
    lake = Lake(enc.lake.root, LakeCrypto(lambda: enc.keys))
    engine = enc.engine("duckdb")
    engine.register_bank(lake, BANK_AS_OF)
    # registering reads only plaintext footers; pyarrow's KMS client is made here, in this thread (a scan on
    # one of pyarrow's threads making it could deadlock with a DuckDB thread holding the GIL)
    assert lake.crypto.unwrapped == [] and lake.crypto.kms_clients == 1
    counts = engine.con.sql("SELECT branch_id, count(*) FROM customers GROUP BY 1 ORDER BY 1").fetchall()
    # the C2 data key is never unwrapped (only the footer's signing key, to check the footer's integrity)
    assert counts == [("B1", 1), ("B2", 2)] and "lake.c2" not in lake.crypto.unwrapped
    mobiles = engine.con.sql("SELECT customer_id, mobile FROM customers WHERE mobile IS NOT NULL").fetchall()
    assert mobiles == [("C2", MOBILE)] and "lake.c2" in lake.crypto.unwrapped
    total = engine.con.sql("SELECT sum(amount) FROM transactions").fetchall()[0][0]
    assert total == Decimal("5000.00") + Decimal("120.00") + Decimal(AMOUNT) + Decimal("10.00") + Decimal("0.01")
    assert lake.crypto.kms_clients == 1     # every scan used the client made before the queries


def test_the_features_step_gives_the_same_bytes_on_an_encrypted_lake(lakes):
    enc, plain = lakes
    for ctx in (enc, plain):
        text = (ctx.workspace / "lifeloop.yaml").read_text(encoding="utf-8")
        if "max_days_after_batch: 7" in text:
            (ctx.workspace / "lifeloop.yaml").write_text(text.replace("max_days_after_batch: 7",
                                                                      "max_days_after_batch: 60"))
    a, b = Context(enc.workspace), Context(plain.workspace)
    a.run(BANK_AS_OF, steps=["features"])
    b.run(BANK_AS_OF, steps=["features"])
    fa = a.lake.snapshot_file("features", BANK_AS_OF).read_bytes()
    assert fa == b.lake.snapshot_file("features", BANK_AS_OF).read_bytes()
    assert a.lake.manifest("features", BANK_AS_OF)["files"] == b.lake.manifest("features", BANK_AS_OF)["files"]


def _read_parquet(files, file_row_number):
    return f"read_parquet({[str(f) for f in files]}, file_row_number = {str(file_row_number).lower()})"


@pytest.mark.parametrize("pair_rows", [1 << 19, 10_000], ids=["one-pairing", "pairings-per-range"])
@pytest.mark.parametrize("preserve_order", [True, False], ids=["ordered", "unordered"])
def test_a_lake_of_plaintext_and_encrypted_batches_reads_as_one_and_rows_stay_paired(tmp_path, monkeypatch,
                                                                                     pair_rows, preserve_order):
    """Several row groups per file and a plaintext batch before an encrypted one: the positional pairing of
    DuckDB's scan with pyarrow's decryption must keep every row's C2 values with that row, whether a file is
    paired whole or in ranges of row groups that DuckDB may run side by side."""
    monkeypatch.setattr(lake_crypto, "PAIR_ROWS", pair_rows)
    ctx = Context.init(tmp_path / "ws")
    crypto = ctx.lake.crypto
    rows = 50_000
    ids = [f"T{i:07d}" for i in range(rows)]
    table = pa.table({"transaction_id": ids, "account_id": [f"A{i * 7919 % 100_003:06d}" for i in range(rows)],
                      "amount": pa.array([Decimal(i) / 100 for i in range(rows)], pa.decimal128(18, 2))})
    plain, enc = tmp_path / "plain.parquet", tmp_path / "enc.parquet"
    pq.write_table(table.slice(0, 1000), plain)
    crypto.write(enc, table.schema, table.slice(1000).to_batches(max_chunksize=7_000), "transactions",
                 )
    assert encrypted_columns(enc) == ["account_id", "amount"] and pq.ParquetFile(enc).num_row_groups > 5
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET preserve_insertion_order = {str(preserve_order).lower()}")
    con.execute("SET threads = 4")
    sql = duckdb_view(con, "t", [plain, enc], crypto, _read_parquet)
    # 7 row groups of 7,000 rows: paired whole, or in as many ranges as threads (2+2+2+1)
    assert sql.count("POSITIONAL JOIN") == (1 if pair_rows > rows else 4)
    assert crypto.unwrapped == []     # making the view reads no encrypted page and unwraps no key
    got = con.sql(f"SELECT transaction_id, account_id, amount FROM ({sql}) ORDER BY transaction_id").to_arrow_table()
    assert got.equals(table.sort_by("transaction_id"))
    # a filter on a plaintext column must not reach the plaintext scan below the pairing (it would shift rows)
    late = con.sql(f"SELECT transaction_id, account_id, amount FROM ({sql}) WHERE transaction_id >= 'T0030000' "
                   "ORDER BY transaction_id").to_arrow_table()
    assert late.equals(table.slice(30_000).sort_by("transaction_id"))
    # nor a filter on an encrypted one, and an aggregate over both sides pairs every row
    assert con.sql(f"SELECT count(*), sum(amount), count(DISTINCT account_id) FROM ({sql}) "
                   "WHERE amount >= 100").fetchall() == \
        [(40_000, sum(Decimal(i) / 100 for i in range(10_000, rows)), len({f"A{i * 7919 % 100_003:06d}"
                                                                          for i in range(10_000, rows)}))]


def test_the_row_ranges_of_a_file_are_whole_row_groups_in_order_no_more_than_the_threads(tmp_path):
    path = tmp_path / "f.parquet"
    pq.write_table(pa.table({"x": list(range(25))}), path, row_group_size=4)   # 4, 4, 4, 4, 4, 4, 1
    # as many ranges as threads, of about equal rows (12.5 each, 8.3 each)
    assert lake_crypto.row_ranges(path, 2, 8) == [([0, 1, 2], 0, 12), ([3, 4, 5, 6], 12, 25)]
    assert lake_crypto.row_ranges(path, 3, 1) == [([0, 1], 0, 8), ([2, 3], 8, 16), ([4, 5, 6], 16, 25)]
    # no more than the row groups, and none of fewer rows than asked where the file has them
    assert lake_crypto.row_ranges(path, 16, 1) == [([k], 4 * k, min(4 * k + 4, 25)) for k in range(7)]
    assert lake_crypto.row_ranges(path, 16, 8) == [([0, 1], 0, 8), ([2, 3], 8, 16), ([4, 5, 6], 16, 25)]
    assert lake_crypto.row_ranges(path, 8, 100) == [([0, 1, 2, 3, 4, 5, 6], 0, 25)]
    assert lake_crypto.row_ranges(path, 1, 1) == [([0, 1, 2, 3, 4, 5, 6], 0, 25)]
    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"x": pa.array([], pa.int64())}), empty)
    assert lake_crypto.row_ranges(empty, 2, 8) == [([0], 0, 0)]     # pyarrow writes one empty row group


def test_keys_and_encryption_come_with_a_new_workspace_and_can_be_switched_off(tmp_path):
    ctx = Context.init(tmp_path / "ws")
    assert ctx.config.lake.encryption and ctx.config.keys.provider == "file"
    assert oct(os.stat(tmp_path / "ws" / "keys" / "lifeloop.keys").st_mode & 0o777) == "0o600"
    (tmp_path / "ws" / "keys" / "lifeloop.keys").chmod(0o644)
    with pytest.raises(ConfigError, match="readable or writable by others") as info:
        Context(tmp_path / "ws").ingest(write_canonical(tmp_path / "src"))
    assert "chmod 600" in info.value.hint and Context(tmp_path / "ws").lake.dates("bank") == []


def _physical(path, crypto, column: str) -> tuple[str, bool, int]:
    """(physical type, has a dictionary page, uncompressed bytes) of a column's first chunk (read with the keys)."""
    meta = pq.ParquetFile(path, decryption_properties=crypto.decryption_properties()).metadata
    chunk = meta.row_group(0).column(meta.schema.names.index(column))
    return chunk.physical_type, chunk.has_dictionary_page, chunk.total_uncompressed_size


def test_an_encrypted_file_is_laid_out_for_duckdb_and_pyarrow_to_read_cheaply(tmp_path):
    """Decimals as INT64, a dictionary kept whole for plaintext non-key columns (customer_id: 80,000 distinct
    ids, past pyarrow's 1 MiB default), none for the unique key or the encrypted columns; values unchanged."""
    crypto = Context.init(tmp_path / "ws").lake.crypto
    rows, customers = 300_000, 80_000
    table = pa.table({"transaction_id": [f"T{i:09d}" for i in range(rows)],
                      "account_id": [f"A{i % customers:09d}" for i in range(rows)],
                      "customer_id": [f"C{i % customers:09d}" for i in range(rows)],
                      "amount": pa.array([Decimal(i % 9973) / 100 for i in range(rows)], pa.decimal128(18, 2))})
    enc, default = tmp_path / "enc.parquet", tmp_path / "default.parquet"
    crypto.write(enc, table.schema, table.to_batches(max_chunksize=rows), "transactions", compression="zstd")
    pq.write_table(table, default, compression="zstd")     # pyarrow's defaults, as a plaintext batch is written
    assert _physical(enc, crypto, "amount")[:2] == ("INT64", False)
    assert _physical(default, crypto, "amount")[0] == "FIXED_LEN_BYTE_ARRAY"
    assert _physical(enc, crypto, "transaction_id")[1] is False and _physical(enc, crypto, "account_id")[1] is False
    # the dictionary holds every id (no fall-back to plain pages): about half the bytes of pyarrow's default
    kept, fell_back = _physical(enc, crypto, "customer_id"), _physical(default, crypto, "customer_id")
    assert kept[1] and fell_back[1] and kept[2] < 0.6 * fell_back[2], (kept, fell_back)
    assert encrypted_columns(enc) == ["account_id", "amount"]
    assert crypto.read_table(enc).equals(table)
    layout = lake_crypto.encrypted_layout("transactions", table.schema, ["account_id", "amount"])
    assert layout["use_dictionary"] == ["customer_id"] and layout["store_decimal_as_integer"]
    # a table whose key has two columns keeps a dictionary on each (neither is unique alone)
    holdings = lake_crypto.encrypted_layout("holdings", pa.schema([("account_id", pa.string()),
                                                                   ("snapshot_date", pa.date32()),
                                                                   ("balance", pa.decimal128(18, 2))]),
                                            ["account_id", "balance"])
    assert holdings["use_dictionary"] == ["snapshot_date"]


def test_a_lake_encrypted_in_the_earlier_layout_reads_the_same_and_gives_the_same_features(tmp_path, monkeypatch):
    """Batches encrypted before the layout existed (decimals as fixed-length bytes, pyarrow's dictionaries) stay
    readable, side by side with new ones: the same rows through pyarrow and DuckDB, the same feature bytes."""
    new = workspace(tmp_path / "new", True)
    with monkeypatch.context() as m:
        m.setattr(lake_crypto, "encrypted_layout", lambda *args: {})    # the writer's options before the layout
        old = workspace(tmp_path / "old", True)
    bank_new, bank_old = (c.lake.snapshot_dir("bank", BANK_AS_OF) for c in (new, old))
    assert _physical(bank_old / "transactions.parquet", old.lake.crypto, "amount")[0] == "FIXED_LEN_BYTE_ARRAY"
    assert _physical(bank_new / "transactions.parquet", new.lake.crypto, "amount")[0] == "INT64"
    for table in ("customers", "holdings", "transactions"):
        a = old.lake.read_table(bank_old / f"{table}.parquet")
        b = new.lake.read_table(bank_new / f"{table}.parquet")
        assert a.replace_schema_metadata(None).equals(b.replace_schema_metadata(None)), table
    import duckdb

    # an old batch and a new one under the same keys in one view (a lake written across the change)
    earlier = tmp_path / "earlier.parquet"
    table = new.lake.read_table(bank_new / "transactions.parquet")
    with monkeypatch.context() as m:
        m.setattr(lake_crypto, "encrypted_layout", lambda *args: {})
        new.lake.crypto.write(earlier, table.schema, table.to_batches(), "transactions", compression="zstd")
    assert _physical(earlier, new.lake.crypto, "amount")[0] == "FIXED_LEN_BYTE_ARRAY"
    con = duckdb.connect()
    sql = duckdb_view(con, "t", [earlier, bank_new / "transactions.parquet"], new.lake.crypto, _read_parquet)
    got = con.sql(f"SELECT transaction_id, amount, account_id FROM ({sql}) ORDER BY ALL").fetchall()
    once = pq.read_table(bank_new / "transactions.parquet", columns=["transaction_id"],
                         decryption_properties=None).num_rows
    expected = new.lake.read_table(bank_new / "transactions.parquet").select(
        ["transaction_id", "amount", "account_id"]).to_pylist()
    assert len(got) == 2 * once and got[::2] == got[1::2] == sorted(tuple(r.values()) for r in expected)
    for ctx in (old, new):
        text = (ctx.workspace / "lifeloop.yaml").read_text(encoding="utf-8")
        (ctx.workspace / "lifeloop.yaml").write_text(text.replace("max_days_after_batch: 7",
                                                                  "max_days_after_batch: 60"))
    a, b = Context(old.workspace), Context(new.workspace)
    a.run(BANK_AS_OF, steps=["features"])
    b.run(BANK_AS_OF, steps=["features"])
    assert a.lake.snapshot_file("features", BANK_AS_OF).read_bytes() == \
        b.lake.snapshot_file("features", BANK_AS_OF).read_bytes()
