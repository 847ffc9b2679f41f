"""Runtime settings: which workspace, which engine, debug mode.

Resolution order (later wins): defaults, ``lifeloop.yaml``, environment (``LIFELOOP_WORKSPACE``,
``LIFELOOP_ENGINE``, ``LIFELOOP_DATABASE_URL``, ``LIFELOOP_DEBUG``), explicit arguments (CLI flags).
"""

from __future__ import annotations

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
