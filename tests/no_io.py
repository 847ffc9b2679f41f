"""A pytest plugin that takes the lake, the databases and the engines away (``-p tests.no_io``).

Used by tests/unit/test_unit_tests_need_no_io.py to prove that the unit tests through the ports run
without them: DuckDB and PySpark cannot be imported; SQLAlchemy can (``import lifeloop`` loads the facade,
whose modules declare the operations database's tables) but opening any database fails; so does
opening a lake (:class:`lifeloop.store.lake.Lake`) or the ops database through Lifeloop.
"""

from __future__ import annotations

import sys

for _name in ("duckdb", "pyspark"):
    sys.modules[_name] = None  # type: ignore[assignment]   # `import duckdb` now raises ImportError

import sqlalchemy  # noqa: E402
import sqlalchemy.engine  # noqa: E402


class NoIO(AssertionError):
    """A test under ``-p tests.no_io`` reached for a lake, a database or an engine."""


def _refuse(what: str):
    def refuse(*args, **kwargs):
        raise NoIO(f"{what} is not available in a unit test through the ports")
    return refuse


sqlalchemy.create_engine = _refuse("a database (sqlalchemy.create_engine)")
sqlalchemy.engine.create_engine = sqlalchemy.create_engine

from lifeloop.store.lake import Lake  # noqa: E402  (after the database is gone: lifeloop binds the refusal)

Lake.__init__ = _refuse("the lake (Lake)")  # type: ignore[method-assign]
