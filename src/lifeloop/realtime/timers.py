"""Timers (定时关键时刻): moments the daily batch sets ahead, e.g. a deposit or wealth product maturing (到期前后).

For a ``maturity`` moment with offsets ``[-7, -1, 1]``, every open holding of the listed product types with a
maturity date gets one timer per offset, firing on maturity date + offset — a local date of the bank. Setting
the timers of a day again changes nothing (one timer per key), and a timer fires once: the decider fires the
pending timers of today's local date; a timer whose date passed while nothing was running is marked ``missed``
(a T-1 reminder two days late is no longer a T-1 reminder). The holiday calendar is not applied: the repository
has none for business days (``strategies.yaml`` ``events.holidays`` names holidays for greetings only), so the
dates are plain local dates.

The daily run sets them: the ``timers`` step (an action, last in the run, after ingest) sets the timers of D
from the holdings as of D; running it again changes nothing. ``lifeloop events timers --as-of D`` does the
same by hand.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lifeloop.config.events import EventsConfig, Maturity, MomentSpec
from lifeloop.contract import Inputs, Output, Step
from lifeloop.realtime.detectors import Trigger
from lifeloop.store.ops import events as event_store
from lifeloop.store.ops.database import unit_of_work

MIDNIGHT = dt.datetime.min.time()


def maturity_timers(holdings: Iterable[Mapping[str, Any]], product_types: Mapping[str, str],
                    moments: Sequence[MomentSpec], as_of: dt.date) -> list[dict[str, Any]]:
    """Timer rows (for ``store.ops.events.set_timers``) of the holdings' maturities, firing on or after ``as_of``."""
    out: dict[str, dict[str, Any]] = {}
    for m in moments:
        if not isinstance(m, Maturity) or not m.enabled:
            continue
        for h in holdings:
            maturity = h.get("maturity_date")
            if maturity is None or h.get("status") != "open" or product_types.get(h["product_id"]) not in \
                    m.product_types:
                continue
            for offset in m.offsets:
                fire_on = maturity + dt.timedelta(days=offset)
                if fire_on < as_of:
                    continue
                scope = f"{h['account_id']}:{offset:+d}"
                when = "before" if offset < 0 else "after"
                reason = (f"{h['product_id']} account {h['account_id']} matures {maturity}: {abs(offset)} day(s) "
                          f"{when} (T{offset:+d})")
                key = Trigger(m.id, h["customer_id"], fire_on, scope, "", dt.datetime.min, reason).key
                out[key] = {"timer_key": key, "moment": m.id, "customer_id": h["customer_id"], "scope": scope,
                            "fire_on": fire_on, "reason": reason}
    return list(out.values())


def holdings_as_of(lake: Any, as_of: dt.date) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The newest snapshot row of every account on or before ``as_of``, and product id -> product type."""
    import pyarrow.parquet as pq

    files = lake.bank_files(as_of)
    latest: dict[str, dict[str, Any]] = {}
    for f in files.get("holdings", []):
        for r in pq.read_table(f, columns=["account_id", "customer_id", "product_id", "snapshot_date",
                                           "maturity_date", "status"]).to_pylist():
            if r["snapshot_date"] <= as_of and (r["account_id"] not in latest
                                               or latest[r["account_id"]]["snapshot_date"] <= r["snapshot_date"]):
                latest[r["account_id"]] = r
    types: dict[str, str] = {}
    for f in files.get("products", [])[-1:]:
        types = {r["product_id"]: r["product_type"]
                 for r in pq.read_table(f, columns=["product_id", "product_type"]).to_pylist()}
    return list(latest.values()), types


def set_day(lake: Any, sessions: Any, moments: Sequence[MomentSpec], as_of: dt.date) -> dict[str, int]:
    """Set the timers of ``moments``' maturity moments from the holdings as of ``as_of`` (idempotent): how many
    timers the holdings call for, and how many of them are new. Reads nothing without an enabled maturity moment."""
    if not any(isinstance(m, Maturity) and m.enabled for m in moments):
        return {"timers": 0, "new": 0}
    holdings, types = holdings_as_of(lake, as_of)
    rows = maturity_timers(holdings, types, moments, as_of)
    with unit_of_work(sessions) as session:
        new = event_store.set_timers(session, timers=rows)
    return {"timers": len(rows), "new": new}


def compute(inputs: Inputs) -> Output:
    """An action: the day's maturity timers (T-7, T-1, T+1 ...) from the holdings as of D."""
    assert inputs.ops is not None
    moments = inputs.config("events").moments if "events" in inputs.configs else []
    done = set_day(inputs.lake, inputs.ops(), moments, inputs.as_of)
    return Output(rows=done["new"], summary=done)


STEP = Step("timers", compute, writes=None, ops=True, configs={"events": EventsConfig},
            doc="timers (定时关键时刻): maturity timers (T-7, T-1, T+1) from the holdings as of D, set once per key")
