"""Engine adapters: ``connect(name, ctx)`` opens DuckDB (default) or Spark; each is imported only when used."""

from __future__ import annotations

from typing import Any

from lifeloop.engine.adapters.base import Adapter
from lifeloop.errors import ConfigError

ADAPTERS = {"duckdb": "lifeloop.engine.adapters.duckdb:DuckDBAdapter",
            "spark": "lifeloop.engine.adapters.spark:SparkAdapter"}


def connect(name: str, ctx: Any = None, **options: Any) -> Adapter:
    """Open the named engine for a context (Spark reads ``ctx.config.spark``)."""
    import importlib

    if name not in ADAPTERS:
        import difflib

        close = difflib.get_close_matches(name, ADAPTERS, n=1)
        raise ConfigError(f"unknown engine {name!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
                          hint=f"choose one of: {', '.join(ADAPTERS)}")
    module, cls = ADAPTERS[name].split(":")
    return getattr(importlib.import_module(module), cls)(ctx, **options)


__all__ = ["Adapter", "connect"]
