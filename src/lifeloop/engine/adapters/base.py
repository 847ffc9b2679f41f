"""The thin API every step uses to run SQL trees, whichever engine is underneath.

An adapter registers inputs as named relations, runs a sqlglot tree (written in Lifeloop's DuckDB
SQL subset) after generating its own dialect, and hands results back as Arrow. What differs between
engines is declared as class attributes (capability flags), so business code never asks "is this
Spark?". Published files are written here, with pyarrow, from the Arrow result: the same bytes
whichever engine computed the values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from sqlglot import exp

from lifeloop.data.schema import TABLES
from lifeloop.errors import EngineError
from lifeloop.store.lake_crypto import encrypted_columns

if TYPE_CHECKING:
    import pyarrow as pa

    from lifeloop.store.lake import Lake
    from lifeloop.store.lake_crypto import LakeCrypto


def date_literal(value: dt.date) -> exp.Expression:
    """A DATE literal both engines read the same way: CAST('YYYY-MM-DD' AS DATE)."""
    return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.build("DATE"))


def empty_relation(table_name: str) -> exp.Select:
    """A zero-row SELECT with the canonical columns and types of a table (for tables not delivered)."""
    cols = [exp.alias_(exp.cast(exp.null(), exp.DataType.build(c.type, dialect="duckdb")), c.name, quoted=True)
            for c in TABLES[table_name].columns]
    return exp.select(*cols).limit(0)


def bank_view(table_name: str, raw: str, as_of: dt.date) -> exp.Select:
    """The canonical table as of a date over its raw registered files (nothing after ``as_of``)."""
    table = TABLES[table_name]
    query = exp.select(*[exp.column(c, quoted=True) for c in table.column_names]).from_(exp.to_table(raw))
    if table.date_column:
        # fact tables: every batch on or before D is read, so rows dated after D must be cut here
        query = query.where(exp.LTE(this=exp.column(table.date_column, quoted=True), expression=date_literal(as_of)))
    if table_name == "customers":
        # a customer whose relationship begins after D does not exist yet as of D
        open_date = exp.column("open_date", quoted=True)
        query = query.where(exp.or_(exp.Is(this=open_date, expression=exp.null()),
                                    exp.LTE(this=open_date.copy(), expression=date_literal(as_of))))
    return query


class Adapter:
    """Base of the engine adapters: capability flags plus register / to_arrow / write_parquet."""

    name: ClassVar[str] = "base"
    dialect: ClassVar[str] = "duckdb"
    # DECIMAL(38, s) results are kept exactly (sums of money never lose cents)
    supports_decimal_38: ClassVar[bool] = True
    # casts that cannot succeed raise instead of silently giving NULL
    strict_casts: ClassVar[bool] = True
    # the engine runs in this process and can read Arrow tables without copying through files
    in_process: ClassVar[bool] = True

    # ------------------------------------------------------------------ what each engine implements
    def register(self, name: str, files: Sequence[Path]) -> None:
        """Make Parquet ``files`` (same schema) queryable as the relation ``name``."""
        raise NotImplementedError

    def register_lake(self, name: str, files: Sequence[Path], crypto: LakeCrypto | None) -> None:
        """Like :meth:`register`, for lake files whose C2 columns may be encrypted (bank batches).

        This default suits plaintext files only; the adapters decrypt (lifeloop.store.lake_crypto)."""
        if any(encrypted_columns(f) for f in files):
            raise EngineError(f"the {self.name} engine cannot read encrypted lake files", hint="use duckdb or spark")
        self.register(name, files)

    def create_view(self, name: str, query: exp.Expression) -> None:
        """Make a SELECT tree queryable as the relation ``name``."""
        raise NotImplementedError

    def to_arrow(self, expression: exp.Expression) -> pa.Table:
        """Run a SELECT tree and return its rows as an Arrow table."""
        raise NotImplementedError

    def map_arrow(self, files: Sequence[Path], columns: Sequence[str],
                  fn: Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]], schema: pa.Schema) -> pa.Table:
        """Run a Python function over Parquet ``files`` in Arrow batches and collect what it yields.

        ``fn`` turns batches of ``columns`` into batches of ``schema``; it must treat every row on its own
        (batches differ between engines), so the rows it yields are the same whichever engine ran it. Here,
        in this process, over one batch; Spark runs it on its executors (``mapInArrow``). Row order is not
        kept: the caller sorts."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.concat_tables([pq.read_table(f, columns=list(columns)) for f in files]).combine_chunks()
        return pa.Table.from_batches(list(fn(iter(table.to_batches()))), schema)

    def close(self) -> None:
        """Release the engine's resources."""

    # ------------------------------------------------------------------ shared behaviour
    def sql(self, expression: exp.Expression) -> str:
        """The engine's own SQL text for a tree (for logs, golden tests and error messages)."""
        return expression.sql(dialect=self.dialect)

    def register_bank(self, lake: Lake, as_of: dt.date) -> dict[str, list[Path]]:
        """Register one view per canonical table as of ``as_of``; return the files read per table.

        Fact tables are filtered to their date column <= as_of, state tables come from the newest
        batch on or before it, customers who open after it are left out, and a table that was never
        delivered is an empty relation with the canonical columns (so every query still binds).
        """
        files = lake.bank_files(as_of)
        for name in TABLES:
            if name in files:
                raw = f"_bank_raw_{name}"
                self.register_lake(raw, files[name], lake.crypto)
                self.create_view(name, bank_view(name, raw, as_of))
            else:
                self.create_view(name, empty_relation(name))
        return files

    def register_views(self, views: Mapping[str, exp.Expression]) -> None:
        """Create several derived views, in the given order."""
        for name, query in views.items():
            self.create_view(name, query)

    def write_parquet(self, expression: exp.Expression, path: str | Path, order_by: Sequence[str] = (),
                      schema: pa.Schema | None = None) -> int:
        """Run a tree and write its rows to ``path`` with pyarrow, sorted by ``order_by``; return the rows.

        Sorting and writing happen here, not in the engine, so DuckDB and Spark produce identical files
        (the sort also gives the writer the same memory layout whichever engine returned the rows).
        """
        table = self.to_arrow(expression)
        return write_arrow(table, Path(path), order_by, schema)

    def _fail(self, exc: BaseException) -> EngineError:
        """An engine failure as a LifeloopError (the original stays chained for --debug)."""
        lines = str(exc).strip().splitlines()
        text = lines[0] if lines else type(exc).__name__
        return EngineError(f"{self.name} could not run a compiled query: {text}",
                           hint="if a value is out of range, a tag's declared type is too small for the data "
                                "(widen it in config/tags.yaml); otherwise rerun with --debug to see the query "
                                "and the engine's full message, and report it")


def write_arrow(table: pa.Table, path: Path, order_by: Sequence[str] = (), schema: pa.Schema | None = None) -> int:
    """Write an Arrow table deterministically (fixed row order, no wall-clock metadata); return rows."""
    import pyarrow.parquet as pq

    if schema is not None:
        table = table.select(schema.names).cast(schema)
    if order_by:
        table = table.sort_by([(c, "ascending") for c in order_by])
    table = table.replace_schema_metadata(None)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd", row_group_size=1 << 20)
    return table.num_rows


def query_text(expression: exp.Expression, dialect: str) -> str:
    """Pretty SQL of a tree in a dialect (error reports, docs)."""
    return expression.sql(dialect=dialect, pretty=True)

