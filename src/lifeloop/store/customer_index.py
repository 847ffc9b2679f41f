"""The customer index (客户索引): the bank's tables as of a date, sorted by customer, for one-customer reads.

A customer 360 or an RM's worklist reads a few rows of a few customers; over the bank's batches that is a
scan of the whole transaction history (seconds at 50M transactions). The index is a copy of the bank's
views as of D (``Adapter.register_bank``: facts dated on or before D, the newest state tables) published as
``lake/customer_index/as_of=D/``:

* ``transactions.parquet``, ``events.parquet``, ``holdings.parquet``: sorted by customer, small row groups;
* ``customers.parquet``: sorted by RM then customer (an RM's book is a few consecutive row groups);
  ``products.parquet``: the product catalogue as of D (small: read whole, once);
* ``offsets.parquet``: customer_id -> the row range of each fact file and the customer's row;
  ``rm_offsets.parquet``: rm_id -> the row range of their customers.

A reader looks a customer up in the offsets, reads only the row groups holding that range (decrypting the
C2 columns of those groups when the lake encrypts: the index files are written like bank batches), and
runs the same queries over those rows as over the full views, so the answer is the same (tests/integration/
test_customer_index.py). The index is used only when it is as of the date asked and was built from the
bank batches the lake holds now (their run ids are in its manifest); otherwise readers scan as before.
Built by the web app in the background when a page finds none for the newest batch (``lake.customer_index:
serve``, the default), at the end of every ingest (``ingest``), or by ``Context.build_customer_index``;
published atomically like every lake area. docs/data-model.md "Customer index".
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import threading
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from lifeloop.data.schema import TABLES, arrow_schema
from lifeloop.store.lake import BANK, MANIFEST, Lake
from lifeloop.store.lake_crypto import _plain_schema, encrypted_columns

if TYPE_CHECKING:
    import pyarrow as pa

AREA = "customer_index"
FACTS = ("transactions", "events", "holdings")
FILES = ("transactions.parquet", "events.parquet", "holdings.parquet", "customers.parquet", "products.parquet",
         "offsets.parquet", "rm_offsets.parquet")
ROW_GROUP = 4096          # rows per row group of the index files: a customer's rows are one or two groups
BATCH = 1 << 16           # rows streamed from the engine to the writer at a time
ORDER = {"transactions": ("customer_id", "txn_date", "transaction_id"),
         "events": ("customer_id", "event_date", "event_id"),
         "holdings": ("customer_id", "account_id", "snapshot_date")}

_lock = threading.Lock()
_cache: dict[Any, Any] = {}   # (what, path, (inode, size, mtime)) -> offsets tables, footers; shared by requests


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def _sorted(table: str, keys: tuple[str, ...]) -> exp.Select:
    cols = [_col(c) for c in TABLES[table].column_names]
    return exp.select(*cols).from_(exp.to_table(table, quoted=True)).order_by(
        *[exp.Ordered(this=_col(k), nulls_first=False) for k in keys])


def _running(order: list[exp.Expression], value: exp.Expression) -> exp.Window:
    """SUM(value) over the rows up to this one in ``order`` (the position after a group in a sorted file)."""
    return exp.Window(this=exp.Sum(this=value), order=exp.Order(expressions=order),
                      spec=exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING",
                                          end="CURRENT ROW"))


def _spans(table: str) -> exp.Select:
    """customer_id, <table>_start, <table>_end: each customer's rows in the table's index file (sorted by
    customer first, so a customer's rows are consecutive and the running count of rows is where they end)."""
    n = exp.Count(this=exp.Star())
    counts = (exp.select(_col("customer_id"), exp.alias_(n, "n", quoted=True))
              .from_(exp.to_table(table, quoted=True)).group_by(_col("customer_id")))
    end = _running([exp.Ordered(this=_col("customer_id"))], _col("n"))
    return (exp.select(_col("customer_id"), exp.alias_(exp.Sub(this=end.copy(), expression=_col("n")),
                                                       f"{table}_start", quoted=True),
                       exp.alias_(end, f"{table}_end", quoted=True))
            .from_(counts.subquery("c")))


def _book_rows() -> exp.Select:
    """customer_id, rm_id and the customer's row in the index's customers file (sorted by RM, then customer)."""
    order = [exp.Ordered(this=_col(k), nulls_first=False) for k in ("rm_id", "customer_id")]
    row = exp.Sub(this=exp.Window(this=exp.RowNumber(), order=exp.Order(expressions=order)),
                  expression=exp.Literal.number(1))
    return exp.select(_col("customer_id"), _col("rm_id"), exp.alias_(row, "customer_row", quoted=True)).from_(
        exp.to_table("customers", quoted=True))


def offsets_query() -> exp.Select:
    """offsets.parquet: per customer, their row in customers.parquet and their row range in each fact file
    (0, 0 without rows), sorted by customer_id."""
    row = exp.alias_(exp.cast(_col("customer_row", "b"), "BIGINT"), "customer_row", quoted=True)
    cols: list[exp.Expression] = [_col("customer_id"), row]
    query = exp.select().from_(_book_rows().subquery("b"))
    for fact in FACTS:
        for side in ("start", "end"):
            value = exp.func("COALESCE", _col(f"{fact}_{side}", fact), exp.Literal.number(0))
            cols.append(exp.alias_(exp.cast(value, "BIGINT"), f"{fact}_{side}", quoted=True))
        query = query.join(_spans(fact).subquery(fact), using=["customer_id"], join_type="left")
    return query.select(*cols).order_by(_col("customer_id"))


def rm_offsets_query() -> exp.Select:
    """rm_offsets.parquet: per RM, the range of rows of their customers in customers.parquet."""
    return (exp.select(_col("rm_id"), exp.alias_(exp.cast(exp.Min(this=_col("customer_row")), "BIGINT"), "start",
                                                 quoted=True),
                       exp.alias_(exp.cast(exp.Add(this=exp.Max(this=_col("customer_row")),
                                                   expression=exp.Literal.number(1)), "BIGINT"), "end", quoted=True))
            .from_(_book_rows().subquery("b")).where(exp.Not(this=exp.Is(this=_col("rm_id"), expression=exp.null())))
            .group_by(_col("rm_id")).order_by(_col("rm_id")))


def bank_runs(lake: Lake, as_of: dt.date) -> dict[str, str]:
    """The run ids of the bank batches on or before ``as_of``: what an index as of that date was built from."""
    out = {}
    for d in lake.dates(BANK):
        if d <= as_of:
            path = lake.snapshot_dir(BANK, d) / MANIFEST
            out[d.isoformat()] = of_file("run", path,
                                         lambda p=path: json.loads(p.read_text(encoding="utf-8")).get("run_id", ""))
    return out


# ---------------------------------------------------------------------------- building
def build(lake: Lake, engine: Any, as_of: dt.date) -> dict[str, Any]:
    """Publish the customer index as of ``as_of`` from the bank's views (DuckDB engine); return its manifest."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    engine.register_bank(lake, as_of)
    con = engine.con

    def stream(query: exp.Expression) -> Iterator[pa.RecordBatch]:
        reader = con.sql(engine.sql(query)).to_arrow_reader(BATCH)
        yield from reader

    def groups(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """The stream cut into batches of ROW_GROUP rows (one row group each when written); slices, no copies but
        the one that joins a group's pieces."""
        held: pa.Table | None = None
        for b in batches:
            held = pa.Table.from_batches([b]) if held is None else pa.concat_tables([held, pa.Table.from_batches([b])])
            whole = held.num_rows // ROW_GROUP * ROW_GROUP
            for at in range(0, whole, ROW_GROUP):
                yield held.slice(at, ROW_GROUP).combine_chunks().to_batches()[0]
            held = held.slice(whole)
        if held is not None and held.num_rows:
            yield held.combine_chunks().to_batches()[0]

    def write(path: Path, table: str, query: exp.Expression) -> int:
        target = arrow_schema(table)
        batches = (pa.RecordBatch.from_arrays([b.column(n).cast(target.field(n).type) for n in target.names],
                                              schema=target) for b in groups(stream(query)))
        if lake.crypto is not None and lake.crypto.encrypt:   # written like a bank batch: C2 columns encrypted
            lake.crypto.write(path, target, batches, table, content_hash=False, compression="zstd",
                              write_statistics=False)
        else:
            # no statistics: readers find rows by the offsets, and thousands of row groups keep the footer small
            with pq.ParquetWriter(path, target, compression="zstd", write_statistics=False) as writer:
                for b in batches:
                    writer.write_batch(b)
        return pq.read_metadata(path).num_rows

    def files(staging: Path) -> dict[str, Any]:
        rows: dict[str, int] = {}
        for table in (*FACTS, "customers", "products"):
            keys = ORDER.get(table, ("rm_id", "customer_id") if table == "customers" else ("product_id",))
            rows[table] = write(staging / f"{table}.parquet", table, _sorted(table, keys))
        # the row ranges, counted by the engine in the files' own order (no million-entry dicts in Python)
        pq.write_table(engine.to_arrow(offsets_query()), staging / "offsets.parquet", compression="zstd")
        pq.write_table(engine.to_arrow(rm_offsets_query()), staging / "rm_offsets.parquet", compression="zstd")
        return {"rows": rows, "bank": bank_runs(lake, as_of), "row_group": ROW_GROUP}

    return lake.publish(AREA, as_of, files)


# ---------------------------------------------------------------------------- reading
def usable(lake: Lake, as_of: dt.date) -> Path | None:
    """The index folder as of ``as_of`` if it exists and was built from the bank batches the lake holds now."""
    if not lake.exists(AREA, as_of):
        return None
    folder = lake.snapshot_dir(AREA, as_of)
    manifest = folder / MANIFEST
    body = of_file("manifest", manifest, lambda: json.loads(manifest.read_text(encoding="utf-8")))
    # an index of an older layout (a file missing) is not used either: the next ingest rebuilds it
    complete = set(FILES) <= set(body.get("files") or {})
    return folder if complete and body.get("bank") == bank_runs(lake, as_of) else None


def of_file(what: str, path: Path, load: Any) -> Any:
    """What ``load`` reads from ``path`` (kept per process as ``what``), read again when the file changes: a new
    batch is a new file, its inode, size or modification time differ. Keep nothing of a customer here."""
    st = path.stat()
    key = (what, str(path), (st.st_ino, st.st_size, st.st_mtime_ns))
    with _lock:
        hit = _cache.get(key)
    if hit is None:
        hit = load()
        with _lock:
            for old in [k for k in _cache if k[:2] == key[:2]]:
                del _cache[old]   # an older version of the same file
            _cache[key] = hit
    return hit


def _offsets(folder: Path) -> tuple[list[str], Any]:
    import pyarrow.parquet as pq

    def load() -> tuple[list[str], Any]:
        table = pq.read_table(folder / "offsets.parquet")
        return table["customer_id"].to_pylist(), table
    return of_file("offsets", folder / "offsets.parquet", load)


def _file(lake: Lake, path: Path) -> tuple[Any, list[int], threading.Lock]:
    """An index file opened once (its footer parsed, its keys unwrapped when encrypted) and kept for the requests
    that follow, the first row of each row group, and the lock its reads take (a reader is not shared by threads)."""
    import pyarrow.parquet as pq

    def load() -> tuple[Any, list[int], threading.Lock]:
        props = lake.crypto.decryption_properties() if encrypted_columns(path) and lake.crypto is not None else None
        reader = pq.ParquetFile(path, decryption_properties=props)
        starts, n = [], 0
        for k in range(reader.metadata.num_row_groups):
            starts.append(n)
            n += reader.metadata.row_group(k).num_rows
        return reader, starts, threading.Lock()
    return of_file("file", path, load)


def read_rows(lake: Lake, path: Path, start: int, end: int, columns: list[str] | None = None) -> pa.Table:
    """Rows ``start``..``end`` of an index file, reading only their row groups (decrypted when encrypted)."""
    reader, starts, lock = _file(lake, path)
    if end <= start:
        return _plain_schema(reader.schema_arrow.empty_table()).select(columns or reader.schema_arrow.names)
    first = bisect.bisect_right(starts, start) - 1
    last = bisect.bisect_right(starts, end - 1) - 1
    with lock:
        table = reader.read_row_groups(list(range(first, last + 1)), columns=columns)
    return _plain_schema(table.slice(start - starts[first], end - start))


def customer_rows(lake: Lake, as_of: dt.date, customer_id: str) -> dict[str, pa.Table] | None:
    """The customer's rows of customers, transactions, events and holdings as of ``as_of`` from the index; None
    when there is no usable index or the customer is not in it (the caller then scans)."""
    folder = usable(lake, as_of)
    if folder is None:
        return None
    ids, offsets = _offsets(folder)
    i = bisect.bisect_left(ids, customer_id)
    if i >= len(ids) or ids[i] != customer_id:
        return None
    row = offsets.slice(i, 1).to_pylist()[0]
    products = folder / "products.parquet"
    out = {"customers": read_rows(lake, folder / "customers.parquet", row["customer_row"], row["customer_row"] + 1),
           "products": of_file("products", products, lambda: lake.read_table(products))}
    for fact in FACTS:
        out[fact] = read_rows(lake, folder / f"{fact}.parquet", row[f"{fact}_start"], row[f"{fact}_end"])
    return out


def book_rows(lake: Lake, as_of: dt.date, rm_id: str, columns: list[str]) -> pa.Table | None:
    """The customers of one RM's book as of ``as_of`` (the ``columns`` asked for); None without a usable index."""
    import pyarrow.parquet as pq

    folder = usable(lake, as_of)
    if folder is None:
        return None
    spans = of_file("rms", folder / "rm_offsets.parquet",
                    lambda: {r["rm_id"]: (r["start"], r["end"]) for r in
                             pq.read_table(folder / "rm_offsets.parquet").to_pylist()})
    start, end = spans.get(rm_id, (0, 0))
    return read_rows(lake, folder / "customers.parquet", start, end, columns)


def drop_holding(lake: Lake, as_of: dt.date, customer_ids: Collection[str]) -> int:
    """Remove the index as of ``as_of`` if it holds any of the customers (a purge, 删除权): its rows cannot be taken
    out without moving every offset, and it is rebuilt from the purged bank. Returns the customers it held."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = lake.snapshot_dir(AREA, as_of) / "offsets.parquet"
    if not path.exists():
        return 0
    ids = pq.read_table(path, columns=["customer_id"])["customer_id"]
    held = int(pc.sum(pc.is_in(ids, value_set=pa.array(sorted(customer_ids), pa.string()))).as_py() or 0)
    if held:
        lake.remove(AREA, as_of)
        with _lock:
            _cache.clear()
    return held
