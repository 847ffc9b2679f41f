"""Alembic environment for the operations database, configured from code (no alembic.ini).

:mod:`lifeloop.store.ops.migrations` builds the Alembic config and passes either an open connection
(``config.attributes["connection"]``) or the URL (main option ``sqlalchemy.url``).
"""

from __future__ import annotations

from alembic import context

from lifeloop.store.ops.database import make_engine
from lifeloop.store.ops.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(**kwargs) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite cannot ALTER most things: later migrations copy-and-move tables ("batch" mode)
        render_as_batch=True,
        **kwargs,
    )


def run_offline() -> None:
    """Write the SQL to stdout instead of running it (for a DBA to review and apply)."""
    _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Run the migrations on the connection we were given, or on a fresh one."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as conn:
            _configure(connection=conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
