"""Batch detection (批量识别): the day's moments from the lake's transactions, with the stream's detector definitions.

``day_moments(lake, day, moments, timezone)`` reads the bank's transactions booked on ``day`` (every batch on
or before it, as the daily steps do), turns them into events exactly as the simulator's stream does
(:func:`lifeloop.data.simulator.stream.transaction_events`) and runs :func:`lifeloop.realtime.detectors.triggers`
per customer. The stream replaying the same day — shuffled, with duplicates and late arrivals — fires exactly
these moments (tests/integration/test_realtime_parity.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from lifeloop.config.events import MomentSpec
from lifeloop.data.simulator.stream import transaction_events
from lifeloop.realtime.detectors import Seen, Trigger, triggers
from lifeloop.realtime.schema import body_of, local_date, parse_event


def as_seen(events: Sequence[dict[str, Any]], timezone: str) -> list[Seen]:
    """Raw events (dicts in the event schema) validated and seen as the detectors see stored ones."""
    out = []
    for raw in events:
        e = parse_event(raw)
        out.append(Seen(e.event_id, e.kind, e.customer_id, e.occurred_at, local_date(e.occurred_at, timezone),
                        body_of(e)))
    return out


def moments_of(events: Sequence[Seen], moments: Sequence[MomentSpec], day: dt.date | None = None) -> list[Trigger]:
    """Every moment of these events, each customer on their own (anchored on ``day`` only, when given)."""
    return [t for t in triggers(events, moments) if day is None or t.local_date == day]


def day_moments(lake: Any, day: dt.date, moments: Sequence[MomentSpec], timezone: str) -> list[Trigger]:
    """The moments of ``day`` found in the lake's transactions booked that day."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    files = lake.bank_files(day).get("transactions", [])
    rows: dict[str, dict[str, Any]] = {}
    for f in files:
        table = pq.read_table(f)
        for r in table.filter(pc.equal(table["txn_date"], day)).to_pylist():
            rows[r["transaction_id"]] = r     # a fact repeated by a later batch counts once
    return moments_of(as_seen(transaction_events(list(rows.values()), timezone), timezone), moments, day)
