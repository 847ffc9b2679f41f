"""The operations database (运营库): state that is not a daily snapshot.

Contact history and the dispatch outbox (``contacts``), feedback and referrals (``feedback``),
consent changes and do-not-disturb (``consent``), relationship-manager tasks (``tasks``), the
append-only audit log (``audit``) and idempotency keys (``idempotency``). Tables are in ``models``,
connections in ``database``, schema changes in ``migrations``. Services are plain functions taking a
keyword-only session and never commit; the caller's unit of work does. See docs/operations-db.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lifeloop.store.ops.database import session_factory
from lifeloop.store.ops.encrypted import FieldCipher, attach
from lifeloop.store.ops.migrations import current, head, known, require_head, upgrade

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.orm import Session, sessionmaker

    from lifeloop.store.keys import Keys


def open_ops(url: str, *, auto_upgrade: bool | None = None,
             keys: Callable[[], Keys] | None = None) -> sessionmaker[Session]:
    """A session factory for the operations database at ``url``, checked to be at the schema this code needs.

    ``auto_upgrade`` (default: only for SQLite, the embedded database a single user owns) migrates a
    database that is behind; a shared PostgreSQL is migrated on purpose, with ``lifeloop db upgrade``.
    ``keys`` (loaded on first use) encrypt and decrypt the C2 columns (lifeloop.store.ops.encrypted).
    """
    from sqlalchemy.engine import make_url


    if auto_upgrade is None:
        auto_upgrade = make_url(url).get_backend_name() == "sqlite"
    factory = session_factory(url)
    engine = attach(factory.kw["bind"], FieldCipher(keys) if keys is not None else None)
    at = current(url, engine=engine)
    if auto_upgrade and at != head() and (at is None or known(at)):
        upgrade(url)
    require_head(url, engine=engine)
    return factory
