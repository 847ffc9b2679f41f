"""Schemas of the lake areas that one part of the loop writes and another reads (shared data, not code).

The plan writes ``lake/lists/as_of=D/lists.parquet``; dispatch, outcomes, the review and ``why`` read it.
Its columns are declared here, with the data they describe, so no reader imports the writer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

LISTS = "lists"


def lists_schema() -> pa.Schema:
    """Columns of ``lake/lists/as_of=D/lists.parquet``."""
    import pyarrow as pa

    s = pa.string()
    return pa.schema([
        ("as_of", pa.date32()), ("customer_id", s), ("strategy", s), ("wave", s), ("group", s), ("cell", s),
        ("status", s),
        ("channel", s), ("send_at", s), ("purpose", s), ("script_id", s), ("script_key", s), ("offer", s),
        ("priority", pa.int32()),
        ("expected_value", pa.float64()), ("cost", pa.float64()), ("holdout_draw", pa.float64()),
        ("dropped_by", s), ("detail", s), ("reason", s), ("rm_id", s), ("suitability", s)])
