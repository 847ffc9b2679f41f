"""On a lake whose C2 columns are encrypted, DuckDB (plaintext columns scanned in place, C2 decrypted by pyarrow
and paired by position) and Spark (the file decrypted by pyarrow, handed over as Arrow) write the same features,
and the same bytes as on the plaintext lake."""

from __future__ import annotations

import pytest

from lifeloop.context import Context
from lifeloop.store.lake_crypto import encrypted_columns
from tests.factories import BANK_AS_OF, allow_days_after_batch, write_canonical

pytestmark = pytest.mark.spark


def test_duckdb_and_spark_write_the_same_features_from_an_encrypted_lake(tmp_path, spark):
    files = {}
    for name, encryption in (("enc", "on"), ("plain", "off")):
        ws = tmp_path / name
        Context.init(ws)
        text = (ws / "lifeloop.yaml").read_text(encoding="utf-8")
        (ws / "lifeloop.yaml").write_text(text.replace("encryption: on", f"encryption: {encryption}"), encoding="utf-8")
        ctx = allow_days_after_batch(Context(ws), 60)
        ctx.ingest(write_canonical(tmp_path / f"src-{name}"))
        engines = ("duckdb", "spark") if name == "enc" else ("duckdb",)
        for engine in engines:
            ctx.run(BANK_AS_OF, steps=["features"], engine=engine)
            files[(name, engine)] = ctx.lake.snapshot_file("features", BANK_AS_OF).read_bytes()
        ctx.close()
    assert encrypted_columns(tmp_path / "enc" / "lake" / "bank" / f"as_of={BANK_AS_OF}" / "transactions.parquet")
    assert files[("enc", "duckdb")] == files[("enc", "spark")] == files[("plain", "duckdb")]
