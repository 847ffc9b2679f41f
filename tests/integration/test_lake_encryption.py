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


def unscaled(amount: str) -> bytes:
    """How Parquet stores a DECIMAL(18,2): the unscaled integer, big-endian, in 8 bytes."""
    return int(Decimal(amount) * 100).to_bytes(8, "big", signed=True)


SECRETS = {"customers": [MOBILE.encode(), ID_NUMBER.encode(), NAME.encode(), EMAIL.encode()],
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
        for secret in secrets:
            assert secret in plain_bytes, (table, secret)      # the search finds them where they are plaintext
            assert secret not in enc_bytes, (table, secret)    # ... and not in the encrypted file (nor its stats)


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
    assert len(lake_crypto.row_ranges(enc)) == (1 if pair_rows > rows else 4)   # 7 row groups: 2+2+2+1
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET preserve_insertion_order = {str(preserve_order).lower()}")
    sql = duckdb_view(con, "t", [plain, enc], crypto, _read_parquet)
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


def test_the_row_ranges_of_a_file_are_whole_row_groups_in_order(tmp_path):
    path = tmp_path / "f.parquet"
    pq.write_table(pa.table({"x": list(range(25))}), path, row_group_size=4)   # 4, 4, 4, 4, 4, 4, 1
    assert lake_crypto.row_ranges(path, 8) == [([0, 1], 0, 8), ([2, 3], 8, 16), ([4, 5], 16, 24), ([6], 24, 25)]
    assert lake_crypto.row_ranges(path, 100) == [([0, 1, 2, 3, 4, 5, 6], 0, 25)]
    assert lake_crypto.row_ranges(path, 1) == [([k], 4 * k, min(4 * k + 4, 25)) for k in range(7)]
    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"x": pa.array([], pa.int64())}), empty)
    assert lake_crypto.row_ranges(empty, 8) == [([0], 0, 0)]     # pyarrow writes one empty row group


def test_keys_and_encryption_come_with_a_new_workspace_and_can_be_switched_off(tmp_path):
    ctx = Context.init(tmp_path / "ws")
    assert ctx.config.lake.encryption and ctx.config.keys.provider == "file"
    assert oct(os.stat(tmp_path / "ws" / "keys" / "lifeloop.keys").st_mode & 0o777) == "0o600"
    (tmp_path / "ws" / "keys" / "lifeloop.keys").chmod(0o644)
    with pytest.raises(ConfigError, match="readable or writable by others") as info:
        Context(tmp_path / "ws").ingest(write_canonical(tmp_path / "src"))
    assert "chmod 600" in info.value.hint and Context(tmp_path / "ws").lake.dates("bank") == []
