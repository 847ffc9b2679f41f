"""Runtime settings: which workspace, which engine, debug mode.

Resolution order (later wins): defaults, ``lifeloop.yaml``, environment (``LIFELOOP_WORKSPACE``,
``LIFELOOP_ENGINE``, ``LIFELOOP_DATABASE_URL``, ``LIFELOOP_DEBUG``), explicit arguments (CLI flags).
Who is acting is a signed-in Lifeloop user: :class:`Credentials` gathers what the environment offers
(``LIFELOOP_USER`` + ``LIFELOOP_TOKEN``, and the OS user) and the operations database decides
(:mod:`lifeloop.store.ops.principals`).
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from pathlib import Path

ENGINES = ("duckdb", "spark")


@dataclass(frozen=True)
class Settings:
    """Where the workspace is and how to run it."""

    workspace: Path
    engine: str | None = None        # None: take lifeloop.yaml's
    database_url: str | None = None  # None: take lifeloop.yaml's, else sqlite in the workspace
    debug: bool = False

    @classmethod
    def from_env(cls, workspace: str | Path | None = None, engine: str | None = None,
                 debug: bool | None = None) -> Settings:
        """Settings from the environment, overridden by explicit arguments."""
        ws = workspace or os.environ.get("LIFELOOP_WORKSPACE") or "."
        return cls(
            workspace=Path(ws).expanduser().resolve(),
            engine=engine or os.environ.get("LIFELOOP_ENGINE") or None,
            database_url=os.environ.get("LIFELOOP_DATABASE_URL") or None,
            debug=debug if debug is not None else os.environ.get("LIFELOOP_DEBUG", "") not in ("", "0", "false"),
        )


@dataclass(frozen=True)
class Credentials:
    """What a process can show to sign in: a user name and token, and the OS user it runs as.

    Nothing here is trusted: :meth:`lifeloop.context.Context.sign_in` checks them against the operations
    database (a token against its stored hash; an OS user only if it is mapped and the workspace allows it).
    """

    user: str | None = None
    token: str | None = field(default=None, repr=False)
    os_user: str | None = None

    @classmethod
    def from_env(cls) -> Credentials:
        """``LIFELOOP_USER`` and ``LIFELOOP_TOKEN`` from the environment, and the OS user."""
        return cls(user=(os.environ.get("LIFELOOP_USER") or "").strip() or None,
                   token=os.environ.get("LIFELOOP_TOKEN") or None, os_user=os_user())


def os_user() -> str | None:
    """The operating-system user this process runs as (None when it cannot be told).

    On POSIX the name of the effective user id, from the user database: never the LOGNAME / USER environment
    variables, which anyone can set (``getpass.getuser`` reads those first). Elsewhere ``getpass.getuser``.
    """
    try:
        import pwd
    except ImportError:             # Windows: the logged-on user
        try:
            return getpass.getuser()
        except (KeyError, OSError):
            return None
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:                # a uid with no entry (some containers): no OS user to map
        return None


def operator_identity() -> str:
    """A label for library calls made without a principal (``LIFELOOP_OPERATOR``, else the OS user).

    Not an identity: it authorises nothing. The CLI and :class:`lifeloop.context.Context` name the signed-in
    user instead; this is only the default ``requested_by`` of a direct ``enqueue_lists`` call.
    """
    return (os.environ.get("LIFELOOP_OPERATOR") or "").strip() or getpass.getuser()
