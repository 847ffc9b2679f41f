"""Runtime settings: which workspace, which engine, debug mode.

Resolution order (later wins): defaults, ``lifeloop.yaml``, environment (``LIFELOOP_WORKSPACE``,
``LIFELOOP_ENGINE``, ``LIFELOOP_DATABASE_URL``, ``LIFELOOP_DEBUG``), explicit arguments (CLI flags).
Who is acting (``LIFELOOP_OPERATOR``, else the OS user) is :func:`operator_identity`.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
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


def operator_identity() -> str:
    """Who is acting: ``LIFELOOP_OPERATOR`` if set, else the operating-system user.

    Interim, until principals land (the data-protection issue): it is recorded on consent changes, audit
    entries and approval requests, and the four-eyes rule compares it, but nothing authenticates it.
    """
    return (os.environ.get("LIFELOOP_OPERATOR") or "").strip() or getpass.getuser()
