"""The closed loop against the simulated bank (闭环): plan -> dispatch -> the bank lives a day -> ingest -> run.

Used by ``lifeloop demo`` and by the tests that check the review against the simulator's truth. The
workspace's channels must deliver to the simulated bank (``kind: simulator``), so that the day's
dispatched contacts — and the control group, recorded but never contacted — reach the bank's inbox.

``truth=True`` also asks the simulator, before each day, what the queued contacts are truly worth
(:func:`lifeloop.data.simulator.stepping.expected_effect`: each contact's incremental conversion
probability); a test compares the review's intervals with it. Real banks have no such oracle.

``realtime=True`` also replays each simulated day as an event stream (:func:`replay_events`): the bank's
transactions of the day (and its app events, when an enabled moment reads them) go through the real-time intake
and decider — detectors, the strategies reacting to the moments, the contact gate and the workspace's channels —
before the day's batch run, so the real-time contacts reach the bank's inbox with the batch's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifeloop.data.simulator import SimulatedBank
from lifeloop.data.simulator.stream import event_stream
from lifeloop.execution.channels.simulator import INBOX, contacts_table
from lifeloop.execution.dispatch import replay_clock
from lifeloop.realtime.audience import decision_reads
from lifeloop.realtime.detectors import Seen

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
    events: EventDay | None = None  # the day replayed as events through the real-time decider (realtime=True)


@dataclass
class EventDay:
    """A simulated day replayed as events: how many were sent and stored, and what the decider did."""

    day: dt.date
    events: int
    accepted: int
    decided: Any        # lifeloop.realtime.decide.DecisionSummary
    seconds: float


REPLAY_AT = "19:00"   # when the decider runs over a replayed day (local), unless channels.yaml says replay_at


def replay_events(ctx: Any, folder: str | Path, day: dt.date, decider: Any = None) -> EventDay:
    """The simulated bank's ``day`` (its extracts in ``folder``: a delivered day's folder) as events through the
    real-time intake (stored once per id) and the decider.

    The stream is the simulator's (:func:`lifeloop.data.simulator.stream.event_stream`), forwarding only the
    events a decision can read (:func:`lifeloop.realtime.audience.decision_reads`: the enabled moments' detectors
    and the day's event columns) — as a bank's event router subscribes the real-time engine to what it uses;
    the moments and audience values are those of the whole stream. The decider stands at the channels'
    ``replay_at`` (else 19:00) local on ``day``: every event of the day has happened, and its contacts go out
    through the contact gate and the workspace's channels (the simulated bank's inbox) that evening.
    ``decider``: one opened with ``drain=False`` to reuse across days (configs read once); else one is opened
    and closed."""
    import time

    started = time.perf_counter()
    timezone = ctx.config.bank.timezone
    moments = ctx.events_config().moments
    events = [e for e in event_stream(folder, day, timezone=timezone) if decision_reads(_seen(e), moments)]
    receipt = ctx.accept_events(events, source="simulator", where=f"simulated bank {day}") if events else None
    own = decider is None
    decider = decider or ctx.decider(drain=False)
    try:
        decider.clock = replay_clock(day, decider.channels.replay_at or REPLAY_AT, timezone)
        decided = decider.run_until_idle()
        if decided.enqueued:     # the day's batch dispatch drains the rest (held, retries)
            decider.drain(None, decided)
    finally:
        if own:
            decider.close()
    return EventDay(day, len(events), len(receipt.accepted) if receipt else 0, decided,
                    time.perf_counter() - started)


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
             truth: bool = False, on_day: Callable[[LoopDay], None] | None = None,
             realtime: bool = False) -> list[LoopDay]:
    """Run ``days`` turns after ``first`` (whose daily run, dispatch included, has already happened).

    Each turn delivers the queued contacts to the bank, which lives its next day; that day's extracts
    are ingested and the daily ``steps`` (default: all) run on it, which plans and dispatches again.
    ``steps=()`` only lets the bank live and ingests (no new contacts: the windows run on).
    ``realtime``: the day is also replayed as events through the real-time decider (:func:`replay_events`),
    after its ingest and before its daily run.
    """

    as_of, out = first, []
    decider = ctx.decider(drain=False) if realtime else None
    try:
        for _ in range(days):
            out.append(_turn(ctx, extracts, as_of, steps, truth, decider))
            if on_day is not None:
                on_day(out[-1])
            as_of = out[-1].bank_day
    finally:
        if decider is not None:
            decider.close()
    return out


def _turn(ctx: Any, extracts: Path, as_of: dt.date, steps: Sequence[str] | None, truth: bool,
          decider: Any) -> LoopDay:
    """One turn: deliver, the bank's day, ingest, (the day's events through ``decider``), the daily run."""
    import time

    started = time.perf_counter()
    day, effect = deliver(extracts, truth)
    ctx.ingest(day.folder, as_of=day.date)
    replayed = replay_events(ctx, day.folder, day.date, decider) if decider is not None else None
    results = ctx.run(day.date, steps=None if steps is None else list(steps)) if steps is None or steps else []
    return LoopDay(as_of, day.date, day.contacts, dict(day.conversions or {}), time.perf_counter() - started,
                   results, effect, replayed)


def _seen(raw: dict[str, Any]) -> Seen:
    """A raw stream event as the detectors' predicates see it (kind and body; times are not needed to filter)."""
    return Seen(raw["event_id"], raw["kind"], raw["customer_id"], dt.datetime.min, dt.date.min, raw)
