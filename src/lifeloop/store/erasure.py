"""Rewriting retained lake snapshots without some customers (删除权): tag deletion and purge.

A snapshot is rewritten through :meth:`lifeloop.store.lake.Lake.publish` — written aside, swapped in under
the lake's lock — so a reader sees the old snapshot or the new one, never half; a failure leaves the lake
unchanged. Every Parquet file of the snapshot with a ``customer_id`` column loses the customers' rows (or,
where ``blank`` names columns, keeps the rows with those columns emptied); other files are copied as they
are. The new manifest keeps the old one's fields and says what was removed (counts and request ids, never
a customer id). Snapshots without any of the customers are left untouched (same bytes, same run id).
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifeloop.store import customer_index
from lifeloop.store.lake import BANK, MANIFEST, Lake
from lifeloop.store.lake_crypto import encrypted_columns

# manifest fields publish recomputes
RECOMPUTED = ("area", "as_of", "files", "run_id")


@dataclass
class Rewritten:
    """What a rewrite did: per (area, as_of) the rows removed (or blanked), and the snapshots it looked at."""

    snapshots: dict[str, int] = field(default_factory=dict)   # "area/as_of" -> rows removed or blanked
    looked_at: int = 0

    @property
    def rows(self) -> int:
        return sum(self.snapshots.values())

    def as_dict(self) -> dict[str, Any]:
        return {"snapshots": dict(sorted(self.snapshots.items())), "rows": self.rows, "looked_at": self.looked_at}


def _matches(path: Path, ids: Any) -> int:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if "customer_id" not in pq.read_schema(path).names:
        return 0
    column = pq.read_table(path, columns=["customer_id"])["customer_id"]
    return int(pc.sum(pc.is_in(column, value_set=ids)).as_py() or 0)


def rewrite_snapshot(lake: Lake, area: str, as_of: dt.date, customer_ids: Collection[str], *, note: Mapping[str, Any],
                     blank: Mapping[str, Collection[str]] | None = None) -> int:
    """Rewrite one snapshot without the customers' rows (or with ``blank[file]`` columns emptied); rows affected."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    ids = pa.array(sorted(customer_ids), pa.string())
    folder = lake.snapshot_dir(area, as_of)
    parquet = sorted(folder.glob("*.parquet"))
    hits = {p.name: _matches(p, ids) for p in parquet}
    total = sum(hits.values())
    if not total:
        return 0
    old = lake.manifest(area, as_of)
    blank = blank or {}

    def write(staging: Path) -> dict[str, Any]:
        for p in sorted(folder.iterdir()):
            if not p.is_file() or p.name == MANIFEST:
                continue
            if not hits.get(p.name):
                shutil.copyfile(p, staging / p.name)
                continue
            secret = encrypted_columns(p)   # an encrypted bank batch is decrypted, rewritten, encrypted again
            table = lake.read_table(p)
            mine = pc.is_in(table["customer_id"], value_set=ids)
            if p.name in blank:
                for col in blank[p.name]:
                    if col in table.column_names:
                        i = table.column_names.index(col)
                        empty = pa.nulls(table.num_rows, table.schema.field(col).type)
                        table = table.set_column(i, table.schema.field(col), pc.if_else(mine, empty, table[col]))
            else:
                table = table.filter(pc.invert(mine))
            if secret and lake.crypto is not None:
                # a row group per batch of at most 1 << 20 rows (pyarrow's writer takes no row_group_size)
                lake.crypto.write(staging / p.name, table.schema, table.to_batches(max_chunksize=1 << 20), p.stem,
                                  compression="zstd")
            else:
                pq.write_table(table, staging / p.name, compression="zstd", row_group_size=1 << 20)
        return {}

    manifest = {k: v for k, v in old.items() if k not in RECOMPUTED}
    manifest["erasures"] = [*old.get("erasures", []), {**note, "rows": total}]
    lake.publish(area, as_of, write, manifest=manifest)
    return total


def rewrite_areas(lake: Lake, areas: Collection[str], customer_ids: Collection[str], *, note: Mapping[str, Any],
                  blank: Mapping[str, Mapping[str, Collection[str]]] | None = None) -> Rewritten:
    """Rewrite every retained snapshot of ``areas`` (in that order, oldest first) without the customers
    (``blank[area]``: columns to empty)."""
    done = Rewritten()
    if not customer_ids:
        return done
    for area in areas:
        if area == customer_index.AREA:   # a copy sorted for reads, with row offsets: removed, not rewritten
            for day in lake.dates(area):
                done.looked_at += 1
                n = customer_index.drop_holding(lake, day, customer_ids)
                if n:
                    done.snapshots[f"{area}/{day.isoformat()}"] = n
            continue
        for day in lake.dates(area):
            done.looked_at += 1
            n = rewrite_snapshot(lake, area, day, customer_ids, note=note, blank=(blank or {}).get(area))
            if n:
                done.snapshots[f"{area}/{day.isoformat()}"] = n
    return done


def areas(lake: Lake) -> list[str]:
    """Every area of the lake that holds dated snapshots, the bank's batches last.

    Bank batches hold the customers extract that tells a purge who the customer was and when they left: if a
    rewrite fails half-way, a purge run again still finds them (rewrites that were done change nothing twice).
    """
    if not lake.root.is_dir():
        return []
    found = sorted(p.name for p in lake.root.iterdir() if p.is_dir() and not p.name.startswith(".")
                   and any(c.name.startswith("as_of=") for c in p.iterdir()))
    return [a for a in found if a != BANK] + [a for a in found if a == BANK]
