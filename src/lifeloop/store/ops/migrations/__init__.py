"""Schema migrations of the operations database (Alembic, configured from code).

``upgrade(url)`` brings a database to the newest revision (creating every table on an empty one),
``current(url)`` says which revision it is at, ``head()`` which revision the code expects.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from lifeloop.store.ops.database import OpsDatabaseError, make_engine, normalise_url, reaching

if TYPE_CHECKING:
    import sqlalchemy as sa
    from alembic.config import Config

# Alembic is imported inside the functions that migrate: the CLI starts without it

HERE = Path(__file__).resolve().parent


def alembic_config(url: str | None = None, *, stdout=None) -> Config:
    """An Alembic config pointing at these migrations (and at ``url`` when given); output goes to ``stdout``."""
    from alembic.config import Config

    out = stdout or io.StringIO()
    config = Config(stdout=out, output_buffer=out)
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("path_separator", "os")
    if url:
        # configparser interpolation: a literal % in a password must be doubled
        config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def head() -> str:
    """The revision this version of Lifeloop expects the database to be at."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _migrate(url: str, step, revision: str) -> str | None:
    """Run an Alembic command (upgrade or downgrade) in one transaction; return the revision reached."""
    engine = make_engine(url)
    try:
        with reaching(url), engine.begin() as conn:
            config = alembic_config(url)
            config.attributes["connection"] = conn
            step(config, revision)
        return current(url, engine=engine)
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> str | None:
    """Migrate the database at ``url`` up to ``revision`` (default: the newest); returns where it is now."""
    from alembic import command

    return _migrate(url, command.upgrade, revision)


def downgrade(url: str, revision: str) -> str | None:
    """Migrate the database at ``url`` down to ``revision`` (``base``: drop every Lifeloop table)."""
    from alembic import command

    return _migrate(url, command.downgrade, revision)


def upgrade_sql(url: str, revision: str = "head") -> str:
    """The SQL that ``upgrade`` would run from an empty database, for a DBA to review (offline mode)."""
    from alembic import command

    out = io.StringIO()
    command.upgrade(alembic_config(url, stdout=out), revision, sql=True)
    return out.getvalue()


def current(url: str, *, engine: sa.Engine | None = None) -> str | None:
    """The revision the database at ``url`` is at (None: never migrated)."""
    from alembic.migration import MigrationContext

    own = engine is None
    engine = engine or make_engine(url)
    try:
        with reaching(url), engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        if own:
            engine.dispose()


def known(revision: str) -> bool:
    """Whether ``revision`` is one of this code's migrations (not one made by a newer Lifeloop)."""
    from alembic.script import ScriptDirectory

    return revision in {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def require_head(url: str, *, engine: sa.Engine | None = None) -> None:
    """Refuse to work on a database that is not at the revision this code expects."""
    at, expected = current(url, engine=engine), head()
    if at == expected:
        return
    if at is not None and not known(at):
        raise OpsDatabaseError(f"the operations database is at revision {at}, which this version of Lifeloop "
                               f"does not know (it needs {expected})",
                               hint="a newer Lifeloop migrated it: upgrade Lifeloop, or point database_url elsewhere")
    state = "has no Lifeloop tables yet" if at is None else f"is at revision {at}"
    raise OpsDatabaseError(f"the operations database {state}; this version of Lifeloop needs {expected}",
                           hint="run `lifeloop db upgrade`")
