"""The closed loop against the simulated bank (闭环): plan -> dispatch -> the bank lives a day -> ingest -> run.

Used by ``lifeloop demo`` and by the tests that check the review against the simulator's truth. The
workspace's channels must deliver to the simulated bank (``kind: simulator``), so that the day's
dispatched contacts — and the control group, recorded but never contacted — reach the bank's inbox.

``truth=True`` also asks the simulator, before each day, what the queued contacts are truly worth
(:func:`lifeloop.data.simulator.stepping.expected_effect`: each contact's incremental conversion
probability); a test compares the review's intervals with it. Real banks have no such oracle.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifeloop.data.simulator import SimulatedBank
from lifeloop.execution.channels.simulator import INBOX, contacts_table

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass
class LoopDay:
    """One turn of the loop: the as-of date planned and dispatched, and what the bank did next."""

    as_of: dt.date
    bank_day: dt.date
    contacts: int
    conversions: dict[str, int]
    seconds: float
    results: list[Any] = field(default_factory=list)
    truth: pa.Table | None = None  # the simulator's expected effect of the day's queued contacts


def deliver(extracts: str | Path, truth: bool = False) -> tuple[Any, pa.Table | None]:
    """Advance the simulated bank one day with the queued contacts (and their true effect, if asked)."""

    extracts = Path(extracts)
    table = contacts_table(extracts)
    sim = SimulatedBank.open(extracts)
    effect = None
    if truth and table.num_rows:
        effect = sim.expected_effect(table).rows
    day = sim.advance(table)
    path = extracts / INBOX
    if path.exists():
        done = path.parent / "delivered" / f"{day.date.isoformat()}.csv"
        done.parent.mkdir(parents=True, exist_ok=True)
        path.replace(done)
    return day, effect


def run_loop(ctx: Any, extracts: Path, first: dt.date, days: int, *, steps: Sequence[str] | None = None,
             truth: bool = False, on_day: Callable[[LoopDay], None] | None = None) -> list[LoopDay]:
    """Run ``days`` turns after ``first`` (whose daily run, dispatch included, has already happened).

    Each turn delivers the queued contacts to the bank, which lives its next day; that day's extracts
    are ingested and the daily ``steps`` (default: all) run on it, which plans and dispatches again.
    ``steps=()`` only lets the bank live and ingests (no new contacts: the windows run on).
    """
    import time

    as_of, out = first, []
    for _ in range(days):
        started = time.perf_counter()
        day, effect = deliver(extracts, truth)
        ctx.ingest(day.folder, as_of=day.date)
        results = ctx.run(day.date, steps=None if steps is None else list(steps)) if steps is None or steps else []
        turn = LoopDay(as_of, day.date, day.contacts, dict(day.conversions or {}), time.perf_counter() - started,
                       results, effect)
        out.append(turn)
        if on_day is not None:
            on_day(turn)
        as_of = day.date
    return out
