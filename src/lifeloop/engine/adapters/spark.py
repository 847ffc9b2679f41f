"""Apache Spark, the scale-out engine: the same trees, generated in Spark SQL, over the same lake.

Settings that make Spark agree with DuckDB (see docs/features.md, "Engine differences closed"):

* ``spark.sql.session.timeZone=UTC``: dates and timestamps never shift with the machine's zone.
* ``spark.sql.ansi.enabled=true``: a cast that cannot succeed or an arithmetic overflow raises, as in
  DuckDB, instead of silently becoming NULL (a wrong number in a bank's feature table is worse than a
  failed run). Division by zero would raise too, which is why every division is compiled as a safe
  division (NULL when the divisor is 0 or NULL) before it reaches any engine.
* ``spark.ui.enabled=false``: no web server on a batch or test run.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from sqlglot import exp

from lifeloop.engine.adapters.base import Adapter
from lifeloop.errors import EngineError
from lifeloop.store.lake_crypto import encrypted_columns, read_lake_table

if TYPE_CHECKING:
    import pyarrow as pa

    from lifeloop.store.lake_crypto import LakeCrypto

# applied to every session, including one the caller already started (tests share one session)
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.ansi.enabled": "true",
}
# applied only when this adapter starts the session itself; lifeloop.yaml's spark.conf overrides
LAUNCH_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.driver.memory": "4g",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


class SparkAdapter(Adapter):
    """Runs trees on a Spark session (``local[2]`` by default, a cluster via ``lifeloop.yaml``)."""

    name: ClassVar[str] = "spark"
    dialect: ClassVar[str] = "spark"
    supports_decimal_38: ClassVar[bool] = True
    strict_casts: ClassVar[bool] = True  # with ANSI mode on
    in_process: ClassVar[bool] = False

    def __init__(self, ctx: Any = None, *, session: Any = None, master: str | None = None,
                 conf: dict[str, str] | None = None):
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise EngineError("the Spark engine needs pyspark, which is not installed",
                              hint="install the extra: pip install 'lifeloop[spark]' (and Java 17)") from None
        settings = getattr(getattr(ctx, "config", None), "spark", None) if ctx is not None else None
        self._owned = False
        session = session or SparkSession.getActiveSession()
        if session is None:
            # Python workers (mapInArrow: the scores step) run this interpreter, which has Lifeloop installed,
            # unless PYSPARK_PYTHON names the executors' Python (a cluster's)
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            builder = SparkSession.builder.appName("lifeloop").master(
                master or (settings.master if settings else "local[2]"))
            for key, value in {**LAUNCH_CONF, **SESSION_CONF, **(dict(settings.conf) if settings else {}),
                               **(conf or {})}.items():
                builder = builder.config(key, value)
            try:
                session = builder.getOrCreate()
            except Exception as exc:  # the JVM did not start: no Java, wrong JAVA_HOME, no memory
                raise EngineError(f"Spark could not start: {str(exc).strip().splitlines()[0]}",
                                  hint="install Java 17 and set JAVA_HOME, or run with --engine duckdb") from exc
            self._owned = True
        for key, value in SESSION_CONF.items():
            session.conf.set(key, value)
        self.spark = session

    def register(self, name: str, files: Sequence[Path]) -> None:
        """A temporary view over Parquet files."""
        try:
            self.spark.read.parquet(*[str(f) for f in files]).createOrReplaceTempView(name)
        except Exception as exc:
            raise self._fail(exc) from exc

    def register_lake(self, name: str, files: Sequence[Path], crypto: LakeCrypto | None) -> None:
        """A view over lake files; encrypted ones are decrypted by pyarrow and handed to Spark as Arrow.

        Spark's own Parquet decryption needs a KMS client class in the JVM, which the bank's Python key
        manager is not; so the whole file is decrypted on the driver (docs/security.md, "Encryption at rest")."""
        if not any(encrypted_columns(f) for f in files):
            self.register(name, files)
            return
        import pyarrow as pa

        table = pa.concat_tables([read_lake_table(crypto, f) for f in files], promote_options="default")
        try:
            self.spark.createDataFrame(table).createOrReplaceTempView(name)
        except Exception as exc:
            raise self._fail(exc) from exc

    def create_view(self, name: str, query: exp.Expression) -> None:
        """A temporary view defined by a SELECT tree (generated in Spark SQL)."""
        try:
            self.spark.sql(self.sql(query)).createOrReplaceTempView(name)
        except Exception as exc:
            raise self._fail(exc) from exc

    def to_arrow(self, expression: exp.Expression) -> pa.Table:
        """Run a SELECT tree and collect the result as Arrow (no pandas on the way)."""
        try:
            return self.spark.sql(self.sql(expression)).toArrow()
        except Exception as exc:
            raise self._fail(exc) from exc

    def map_arrow(self, files: Sequence[Path], columns: Sequence[str],
                  fn: Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]], schema: pa.Schema) -> pa.Table:
        """``mapInArrow`` over the files on the executors (batches of ``spark.sql.execution.arrow.
        maxRecordsPerBatch`` rows), collected as Arrow on the driver and cast to ``schema``."""
        from pyspark.sql.pandas.types import from_arrow_schema

        try:
            frame = self.spark.read.parquet(*[str(f) for f in files]).select(*columns)
            return frame.mapInArrow(fn, from_arrow_schema(schema)).toArrow().cast(schema)
        except Exception as exc:
            raise self._fail(exc) from exc

    def close(self) -> None:
        """Stop the session if this adapter started it (a shared session is left running)."""
        if self._owned:
            self.spark.stop()
            self._owned = False
