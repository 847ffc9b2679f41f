"""Fixtures for operations-database tests: a ``database_url`` on SQLite and on a real PostgreSQL.

Test modules import what they use (``from tests.ops_fixtures import database_url, ops_session``).
The PostgreSQL server is a throwaway one started from the PostgreSQL 15 binaries on 127.0.0.1 with a
free port in a temp dir, once per test run (a module-level singleton, so importing the fixtures into
several modules still starts one server), and stopped when the run ends. We run as root in CI and
``initdb`` refuses root, so the server runs as the ``postgres`` user through ``runuser``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

PG_BIN = Path(os.environ.get("LIFELOOP_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "postgres"

_server: PostgresServer | None = None
_server_error: str | None = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A throwaway PostgreSQL cluster: initdb in a temp dir, pg_ctl start, pg_ctl stop."""

    def __init__(self) -> None:
        self._as_user = os.geteuid() == 0
        # as root the server runs as postgres, which must reach the dir: /tmp, not a private TMPDIR
        self.root = Path(tempfile.mkdtemp(prefix="lifeloop-pg-", dir="/tmp" if self._as_user else None))
        self.data = self.root / "data"
        self.port = _free_port()
        self._shared = False

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self._as_user:
            cmd = ["runuser", "-u", PG_USER, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {done.stderr.strip() or done.stdout.strip()}")

    def start(self) -> None:
        """Create the cluster (trust auth on localhost only) and start it."""
        if self._as_user:
            shutil.chown(self.root, user=PG_USER, group=PG_USER)
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", PG_USER, "--auth=trust",
                  "--encoding=UTF8", "--locale=C", "--no-sync")
        opts = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.root}"
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=40")
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"),
                  "-w", "-t", "30", "start")

    def stop(self) -> None:
        """Stop the server fast and remove its files."""
        try:
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A fresh empty database on this server; returns its URL.

        A schema of its own in one shared database, selected by the URL's search_path: CREATE SCHEMA is
        instant, CREATE DATABASE takes most of a second.
        """
        import sqlalchemy as sa

        schema = "t_" + uuid.uuid4().hex[:12]
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                if not self._shared:
                    conn.execute(sa.text("CREATE DATABASE lifeloop_tests"))
                    self._shared = True
        finally:
            engine.dispose()
        engine = sa.create_engine(self.url("lifeloop_tests"), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sa.schema.CreateSchema(schema))
        finally:
            engine.dispose()
        return f"{self.url('lifeloop_tests')}?options=-csearch_path%3D{schema}"


def postgres_server() -> PostgresServer:
    """The run's PostgreSQL server, started on first use; skips the test if it cannot be had."""
    global _server, _server_error
    if _server is None and _server_error is None:
        if not (PG_BIN / "initdb").exists():
            _server_error = (f"PostgreSQL server binaries not found in {PG_BIN} "
                             "(apt-get install postgresql-15, or set LIFELOOP_PG_BIN)")
        else:
            try:
                import psycopg  # noqa: F401
            except ImportError:
                _server_error = "psycopg is not installed (pip install 'lifeloop[postgres]')"
        if _server_error is None:
            server = PostgresServer()
            try:
                server.start()
            except Exception as exc:  # noqa: BLE001 - turned into a skip reason
                server.stop()
                _server_error = f"could not start a throwaway PostgreSQL: {exc}"
            else:
                _server = server
                atexit.register(server.stop)
    if _server is None:
        pytest.skip(_server_error or "PostgreSQL unavailable")
    return _server


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """An empty database: a SQLite file in tmp_path, or a fresh database on the throwaway PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ops.db'}"
    return postgres_server().create_database()


@pytest.fixture
def ops_db(database_url, tmp_path):
    """An upgraded (migrated to head) database: yields its session factory; disposes the engine after.

    Its engine carries a cipher with a key file of its own (in tmp_path), as ``Context.ops()`` gives one:
    the C2 columns are encrypted (lifeloop.store.ops.encrypted)."""
    from lifeloop.store.keys import FileKeyManager, open_keys
    from lifeloop.store.ops.database import session_factory
    from lifeloop.store.ops.encrypted import FieldCipher, attach
    from lifeloop.store.ops.migrations import upgrade

    upgrade(database_url)
    factory = session_factory(database_url)
    if not (tmp_path / "keys" / "lifeloop.keys").exists():
        FileKeyManager.create(tmp_path / "keys" / "lifeloop.keys")
    keys = open_keys(tmp_path)
    attach(factory.kw["bind"], FieldCipher(lambda: keys))
    yield factory
    factory.kw["bind"].dispose()


@pytest.fixture
def session(ops_db):
    """One unit of work on a migrated database (rolled back unless the test commits)."""
    with ops_db() as s:
        yield s


_KEYS: list = []


def test_keys():
    """One key file and key ring for the test process (for factories made outside ``ops_db``)."""
    from lifeloop.store.keys import FileKeyManager, open_keys

    if not _KEYS:
        folder = Path(tempfile.mkdtemp(prefix="lifeloop-keys-"))
        FileKeyManager.create(folder / "keys" / "lifeloop.keys")
        _KEYS.append(open_keys(folder))
        atexit.register(shutil.rmtree, folder, True)
    return _KEYS[0]


def with_keys(factory):
    """A session factory whose engine encrypts and decrypts the C2 columns, as ``Context.ops()`` gives one."""
    from lifeloop.store.ops.encrypted import FieldCipher, attach

    attach(factory.kw["bind"], FieldCipher(test_keys))
    return factory
