"""The engine: SQL as sqlglot trees in one restricted DuckDB dialect, transpiled per engine."""
