"""A day's lists counted (名单统计): treated / control / dropped per strategy x wave x channel, drops by reason.

Pure: takes the ``lists`` snapshot (lifeloop.strategy.plan; already narrowed to the reader's scope) and returns
plain rows. ``status`` is contact (goes out), control (held out) or dropped; a dropped row's ``dropped_by`` names
the policy that stopped it (consent, frequency cap, capacity, suitability, suppressed ... — the reasons
``lifeloop why`` explains one customer at a time).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa  # noqa: F401 - annotations

STATUSES = ("contact", "control", "dropped")
ROW_COLUMNS = ("customer_id", "rm_id", "strategy", "wave", "group", "cell", "status", "channel", "dropped_by",
               "detail", "reason")


def counts(lists: pa.Table) -> list[dict[str, Any]]:
    """One row per (strategy, wave, channel): contact, control and dropped counts, and the drops by reason,
    sorted by strategy, wave, channel (a dropped row has no channel: ``-``)."""
    cells: dict[tuple[str, str, str], dict[str, Any]] = {}
    columns = {c: lists[c].to_pylist() if c in lists.column_names else [None] * lists.num_rows
               for c in ("strategy", "wave", "channel", "status", "dropped_by")}
    for strategy, wave, channel, status, by in zip(*columns.values(), strict=True):
        key = (strategy or "-", wave or "-", channel or "-")
        cell = cells.setdefault(key, {"strategy": key[0], "wave": key[1], "channel": key[2],
                                      **dict.fromkeys(STATUSES, 0), "dropped_by": {}})
        state = status if status in STATUSES else "dropped"
        cell[state] += 1
        if state == "dropped":
            reason = by or "unknown"
            cell["dropped_by"][reason] = cell["dropped_by"].get(reason, 0) + 1
    out = [cells[k] for k in sorted(cells)]
    for c in out:
        c["dropped_by"] = dict(sorted(c["dropped_by"].items(), key=lambda kv: (-kv[1], kv[0])))
    return out


def totals(rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The day's totals over :func:`counts` rows: per status, and drops by reason."""
    out: dict[str, Any] = {**dict.fromkeys(STATUSES, 0), "dropped_by": {}}
    for r in rows:
        for s in STATUSES:
            out[s] += r[s]
        for reason, n in r["dropped_by"].items():
            out["dropped_by"][reason] = out["dropped_by"].get(reason, 0) + n
    out["dropped_by"] = dict(sorted(out["dropped_by"].items(), key=lambda kv: (-kv[1], kv[0])))
    return out


def select(lists: pa.Table, *, strategy: str | None = None, wave: str | None = None, channel: str | None = None,
           status: str | None = None, dropped_by: str | None = None, limit: int = 200) -> tuple[list[dict], int]:
    """The rows of one cell of :func:`counts` (each filter optional; channel ``-``: none), at most ``limit``, with
    how many matched in all; only :data:`ROW_COLUMNS`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    mask = None
    for column, value in (("strategy", strategy), ("wave", wave), ("status", status), ("dropped_by", dropped_by),
                          ("channel", channel)):
        if not value:
            continue
        if column not in lists.column_names:   # an older snapshot without the column: every value is null
            cond = pa.array([value == "-"] * lists.num_rows)
            mask = cond if mask is None else pc.and_(mask, cond)
            continue
        cond = pc.is_null(lists[column]) if value == "-" else pc.equal(lists[column], value)
        cond = pc.fill_null(cond, False)
        mask = cond if mask is None else pc.and_(mask, cond)
    chosen = lists if mask is None else lists.filter(mask)
    keep = [c for c in ROW_COLUMNS if c in chosen.column_names]
    chosen = chosen.select(keep).sort_by([("customer_id", "ascending"), ("strategy", "ascending"),
                                          ("wave", "ascending")])
    return chosen.slice(0, limit).to_pylist(), chosen.num_rows
