"""Holdout (对照组): a customer is in a strategy's control group by a hash, not by a random draw.

draw(customer, strategy, salt) = the first 8 bytes of SHA-256("customer|strategy|salt") read as a
big-endian unsigned 64-bit integer, divided by 2^64: a number in [0, 1). The customer is control when
draw < holdout share. It is computed in Python over Arrow (after the engine has found the audience),
so DuckDB and Spark runs give identical groups by construction, re-runs give identical groups, and
anyone can recompute "why was this customer in control?" with three lines of any language.

Cells (A/B tests inside a strategy, 实验分组) use a second, independent draw among the treated
customers: ``cell_draw = draw(customer, strategy + "|cell", salt)`` (SHA-256 of
"customer|strategy|cell|salt"), and cell k takes the draws in [s1 + ... + s(k-1), s1 + ... + sk) of
the cells' shares in the order listed (the last cell up to 1). Being a hash of the ids, a customer's
cell is the same on every day of the journey, on every engine and in every re-run.

Selection cells (``select:``: a model-selected cell next to a rule-selected one) are not drawn: the
audiences step puts each customer in the first cell whose rule is true, and the holdout draw above --
the same hash whatever the cell -- decides treated or control in every cell alike (one shared holdout).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from lifeloop.config.strategies import selection_cells

if TYPE_CHECKING:
    import pyarrow as pa

    from lifeloop.config.strategies import StrategiesConfig

TWO_64 = float(1 << 64)


def draw(customer_id: str, strategy_id: str, salt: str) -> float:
    """The customer's stable position in [0, 1) for this strategy and salt."""
    digest = hashlib.sha256(f"{customer_id}|{strategy_id}|{salt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / TWO_64


def draws(customer_ids: Iterable[str], strategy_ids: Iterable[str] | str, salt: str) -> list[float]:
    """Draws for many (customer, strategy) pairs (one strategy for all, or one per customer)."""
    sha, frm = hashlib.sha256, int.from_bytes
    if isinstance(strategy_ids, str):
        tail = f"|{strategy_ids}|{salt}".encode()
        return [frm(sha(c.encode() + tail).digest()[:8], "big") / TWO_64 for c in customer_ids]
    return [frm(sha(f"{c}|{s}|{salt}".encode()).digest()[:8], "big") / TWO_64
            for c, s in zip(customer_ids, strategy_ids, strict=True)]


def is_control(customer_id: str, strategy_id: str, salt: str, share: float) -> bool:
    """True when the customer is held out of this strategy (control group)."""
    return draw(customer_id, strategy_id, salt) < share


def control_mask(values: Sequence[float], share: float) -> list[bool]:
    """Control flags for precomputed draws."""
    return [v < share for v in values]


CELL_SUFFIX = "|cell"


def cell_draws(customer_ids: Iterable[str], strategy_id: str, salt: str) -> list[float]:
    """The second draw (independent of the holdout draw) that places treated customers in cells."""
    return draws(customer_ids, strategy_id + CELL_SUFFIX, salt)


def cell_of(value: float, cells: Sequence[tuple[str, float]]) -> str | None:
    """The cell (id, share pairs in order) a cell draw falls in; None without cells."""
    if not cells:
        return None
    upper = 0.0
    for cell_id, share in cells[:-1]:
        upper += share
        if value < upper:
            return cell_id
    return cells[-1][0]  # the last cell takes the rest, so rounding in the shares never leaves a gap


def assign_cells(customer_ids: Sequence[str], strategy_id: str, salt: str,
                 cells: Sequence[tuple[str, float | None]]) -> list[str | None]:
    """Each customer's cell in a strategy (None for all when it has no cells, or when its cells are selection
    cells: those are not drawn, the audiences step finds them by their ``select`` rules)."""
    if not cells or any(share is None for _, share in cells):
        return [None] * len(customer_ids)
    shares = [(c, float(share or 0.0)) for c, share in cells]
    return [cell_of(v, shares) for v in cell_draws(customer_ids, strategy_id, salt)]


def row_cells(customer_ids: Sequence[str], strategy_ids: Sequence[str], control: Sequence[bool],
              config: StrategiesConfig) -> list[str | None]:
    """The cell of each (customer, strategy) row: null for control rows and for strategies without cells."""
    out: list[str | None] = [None] * len(customer_ids)
    split = {s.id for s in config.strategies if s.cells and not selection_cells(s)}
    if not split:
        return out   # a map without cells: nothing to draw (and no time spent on a million rows)
    by_strategy: dict[str, list[int]] = {}
    for i, (sid, ctl) in enumerate(zip(strategy_ids, control, strict=True)):
        if not ctl and sid in split:
            by_strategy.setdefault(sid, []).append(i)
    for sid, rows in by_strategy.items():
        s = config.strategy(sid)
        assert s is not None
        found = assign_cells([customer_ids[i] for i in rows], sid, config.holdout_salt,
                             [(c.id, c.share) for c in s.cells])
        for i, cell in zip(rows, found, strict=False):
            out[i] = cell
    return out


def in_cell_journey(rows: pa.Table, config: StrategiesConfig) -> pa.Table:
    """Keep the (customer_id, strategy, wave) rows whose wave the customer's cell receives.

    Control customers keep every wave (they follow the journey as "no response"); treated customers of
    a cell without a later wave are simply not candidates for it.
    """
    import pyarrow as pa

    if rows.num_rows == 0 or not any(s.cells and not selection_cells(s) for s in config.strategies):
        return rows
    import numpy as np
    import pyarrow.compute as pc

    keep = np.ones(rows.num_rows, dtype=bool)
    for s in config.strategies:
        if not s.cells or selection_cells(s):   # selection cells follow the whole journey
            continue
        at = pc.indices_nonzero(pc.equal(rows["strategy"], s.id)).to_numpy()
        if not len(at):
            continue
        ids = rows["customer_id"].take(at).to_pylist()
        waves = rows["wave"].take(at).to_pylist()
        sid = s.id
        d = draws(ids, sid, config.holdout_salt)
        treated = [k for k, v in enumerate(d) if v >= s.holdout]   # positions within this strategy's rows
        cells = assign_cells([ids[k] for k in treated], sid, config.holdout_salt, [(c.id, c.share) for c in s.cells])
        allowed = {c.id: set(s.cell_waves(c.id)) for c in s.cells}
        for k, cell in zip(treated, cells, strict=False):
            keep[at[k]] = waves[k] in allowed[cell]  # type: ignore[index]
    return rows.filter(pa.array(keep, pa.bool_()))
