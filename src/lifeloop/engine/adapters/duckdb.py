"""DuckDB, the embedded default engine: one in-memory database per adapter over the Parquet lake."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sqlglot import exp

from lifeloop.engine.adapters.base import Adapter
from lifeloop.errors import Interrupted
from lifeloop.store.lake_crypto import duckdb_view

if TYPE_CHECKING:
    import pyarrow as pa

    from lifeloop.store.lake_crypto import LakeCrypto


def _create_view(name: str, query: exp.Expression) -> exp.Create:
    return exp.Create(this=exp.to_table(name, quoted=True), kind="VIEW", replace=True, expression=query,
                      properties=exp.Properties(expressions=[exp.TemporaryProperty()]))


def _read_parquet(files: Sequence[Path], file_row_number: bool = False) -> exp.Expression:
    paths = exp.Array(expressions=[exp.Literal.string(str(f)) for f in files])
    # the lake's as_of=D folders look like Hive partitions; they are not columns of the table
    options = [exp.EQ(this=exp.column("union_by_name"), expression=exp.true()),
               exp.EQ(this=exp.column("hive_partitioning"), expression=exp.false())]
    if file_row_number:   # the row's position in its file (lifeloop.store.lake_crypto pairs encrypted files by it)
        options.append(exp.EQ(this=exp.column("file_row_number"), expression=exp.true()))
    return exp.Anonymous(this="read_parquet", expressions=[paths, *options])


class DuckDBAdapter(Adapter):
    """Runs trees on an in-process DuckDB database (reads Parquet in place, no copies)."""

    name: ClassVar[str] = "duckdb"
    dialect: ClassVar[str] = "duckdb"
    supports_decimal_38: ClassVar[bool] = True
    strict_casts: ClassVar[bool] = True
    in_process: ClassVar[bool] = True

    def __init__(self, ctx: Any = None, *, threads: int | None = None, memory_limit: str | None = None):
        import duckdb

        self._duckdb = duckdb
        self.con = duckdb.connect(":memory:")
        # results come in no particular order unless a query says ORDER BY, as on Spark (published files are
        # sorted by write_arrow): DuckDB may then run the branches of a UNION ALL side by side, which the
        # encrypted lake's pairings of plaintext and decrypted columns need (lifeloop.store.lake_crypto)
        self.con.execute("SET preserve_insertion_order = false")
        if threads:
            self.con.execute("SET threads = ?", [int(threads)])  # a bound parameter, not SQL text
        if memory_limit:
            self.con.execute("SET memory_limit = ?", [str(memory_limit)])

    def register(self, name: str, files: Sequence[Path]) -> None:
        """A view over Parquet files, read in place (columns matched by name across batches)."""
        self._run(_create_view(name, exp.select("*").from_(_read_parquet(files))))

    def register_lake(self, name: str, files: Sequence[Path], crypto: LakeCrypto | None) -> None:
        """A view over lake files: plaintext columns read in place, C2 ones decrypted only when a query reads them."""
        sql = duckdb_view(self.con, name, files, crypto, lambda fs, rn: _read_parquet(fs, rn).sql(dialect="duckdb"))
        try:
            self.con.execute(f'CREATE OR REPLACE TEMPORARY VIEW "{name}" AS {sql}')
        except self._duckdb.Error as exc:
            raise self._fail(exc) from exc

    def create_view(self, name: str, query: exp.Expression) -> None:
        """A temporary view defined by a SELECT tree."""
        self._run(_create_view(name, query))

    def to_arrow(self, expression: exp.Expression) -> pa.Table:
        """Run a SELECT tree; the result comes back as Arrow without a copy through Python objects."""
        try:
            return self.con.sql(self.sql(expression)).to_arrow_table()
        except self._duckdb.InterruptException as exc:
            raise Interrupted("the engine's query was interrupted") from exc
        except self._duckdb.Error as exc:
            raise self._fail(exc) from exc

    def register_arrow(self, name: str, table: pa.Table) -> None:
        """An Arrow table queryable as ``name`` (replacing what had the name; read in place, not copied)."""
        self.con.register(name, table)

    def to_arrow_text(self, sql: str) -> pa.Table:
        """Run SQL text this adapter made from a tree (:meth:`sql`) earlier: for a query run many times over
        tables that change (:meth:`register_arrow`), so the tree is not printed again each time."""
        try:
            return self.con.sql(sql).to_arrow_table()
        except self._duckdb.InterruptException as exc:
            raise Interrupted("the engine's query was interrupted") from exc
        except self._duckdb.Error as exc:
            raise self._fail(exc) from exc

    def _run(self, statement: exp.Expression) -> None:
        try:
            self.con.execute(self.sql(statement))
        except self._duckdb.InterruptException as exc:
            raise Interrupted("the engine's query was interrupted") from exc
        except self._duckdb.Error as exc:
            raise self._fail(exc) from exc

    def close(self) -> None:
        """Close the database connection."""
        self.con.close()
