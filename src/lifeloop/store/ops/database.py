"""Connecting to the operations database: URL resolution, engines, sessions, units of work.

SQLite by default (``sqlite:///<workspace>/ops.db``, WAL journal so readers never block the writer,
foreign keys enforced, a generous busy timeout so concurrent writers queue instead of failing);
PostgreSQL by URL (``postgresql+psycopg://user@host/db``), sessions pinned to UTC.

Services never commit: the caller's unit of work (:func:`unit_of_work`) does, once, at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from lifeloop.errors import ConfigError, OpsDatabaseError

DEFAULT_FILE = "ops.db"
SQLITE_BUSY_MS = 30_000


def default_url(workspace: str | Path) -> str:
    """The embedded default: a SQLite file ``ops.db`` in the workspace."""
    return f"sqlite:///{Path(workspace).resolve() / DEFAULT_FILE}"


def resolve_url(workspace: str | Path, *, setting: str | None = None, configured: str | None = None) -> str:
    """The database URL to use: the setting (env/flag) wins, then ``lifeloop.yaml``, then the default."""
    url = setting or configured
    if not url:
        return default_url(workspace)
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database)
        if not path.is_absolute():  # relative to the workspace, not to wherever the command runs
            url = parsed.set(database=str(Path(workspace).resolve() / path)).render_as_string(hide_password=False)
    return url


def normalise_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean PostgreSQL through psycopg 3 (the driver we ship)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str, **kwargs) -> Engine:
    """An engine for ``url`` with Lifeloop's connection settings (WAL and foreign keys on SQLite, UTC)."""
    url = normalise_url(url)
    try:
        parsed = make_url(url)
        backend = parsed.get_backend_name()
    except ArgumentError as exc:
        raise ConfigError(f"database_url {safe_url(url)!r} is not a database URL",
                          hint="use sqlite:///path/ops.db or postgresql+psycopg://user@host:5432/db") from exc
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(f"database_url {safe_url(url)!r}: {backend} is not supported",
                          hint="use SQLite (the default) or PostgreSQL")
    try:
        if backend == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_MS / 1000}, **kwargs)
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        else:
            # sessions in UTC; keep any options of the URL's own (e.g. -csearch_path=lifeloop)
            options = " ".join(filter(None, [parsed.query.get("options"), "-c timezone=UTC"]))
            engine = sa.create_engine(url, connect_args={"options": options}, pool_pre_ping=True, **kwargs)
    except NoSuchModuleError as exc:
        raise ConfigError(f"database_url {safe_url(url)!r}: no driver for it is installed",
                          hint="pip install 'lifeloop[postgres]' for PostgreSQL (psycopg 3)") from exc
    except ModuleNotFoundError as exc:
        raise ConfigError(f"database_url {safe_url(url)!r}: driver {exc.name} is not installed",
                          hint="pip install 'lifeloop[postgres]' for PostgreSQL (psycopg 3)") from exc
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer, nor it them
        cursor.execute("PRAGMA foreign_keys=ON")   # SQLite ignores REFERENCES unless asked
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; safe with WAL
    finally:
        cursor.close()


def session_factory(url_or_engine: str | Engine) -> sessionmaker[Session]:
    """A session factory bound to the database (objects stay readable after commit)."""
    engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commits if the block succeeds, rolls back if it raises."""
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def reaching(url: str) -> Iterator[None]:
    """Turn 'cannot connect' into an :class:`OpsDatabaseError` that names the database and what to do."""
    try:
        yield
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise OpsDatabaseError(f"cannot use the operations database {safe_url(url)}: {reason}",
                               hint="check database_url in lifeloop.yaml (or LIFELOOP_DATABASE_URL) and that "
                                    "the server is running and reachable") from exc


def safe_url(url: str) -> str:
    """The URL with any password hidden (it ends up in messages and logs)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1]
