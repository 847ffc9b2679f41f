"""Storage: the Parquet lake of daily snapshots (and, later, the operations database)."""
