"""The simulated bank's day as a real-time event stream (实时事件流): its transactions and app events, each with
an id, in the event schema of ``lifeloop.realtime.schema`` (docs/realtime.md).

Transactions carry only a booking date; each gets a time of day from a hash of its id (the same id always gets
the same second, between 00:00:00 and 23:59:59 local), so the stream is reproducible and every event falls on
its booking date in the bank's time zone. App events keep their own time (local wall time in the extract):
``app_login`` becomes an ``app`` ``login``, ``page_view`` a ``product_view`` of the product in ``detail``;
complaints and leads are not stream events.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from lifeloop.data.schema import arrow_schema
from lifeloop.errors import DataError


def second_of_day(event_id: str) -> int:
    """A stable second of the day (0..86399) for an id."""
    return int.from_bytes(hashlib.sha256(event_id.encode()).digest()[:4], "big") % 86_400


def transaction_events(rows: list[dict[str, Any]], timezone: str) -> list[dict[str, Any]]:
    """Canonical transaction rows as ``transaction`` events (occurred on their booking date, local time)."""
    zone = ZoneInfo(timezone)
    out = []
    for r in rows:
        at = dt.datetime.combine(r["txn_date"], dt.time(), zone) + dt.timedelta(seconds=second_of_day(
            r["transaction_id"]))
        e = {"kind": "transaction", "event_id": r["transaction_id"], "customer_id": r["customer_id"],
             "occurred_at": at.isoformat(), "amount": str(r["amount"]), "direction": r["direction"],
             "txn_type": r["txn_type"]}
        for name in ("counterparty_kind", "channel", "account_id"):
            if r.get(name) is not None:
                e[name] = r[name]
        if r.get("balance_after") is not None:
            e["balance_after"] = str(r["balance_after"])
        out.append(e)
    return out


def app_events(rows: list[dict[str, Any]], timezone: str) -> list[dict[str, Any]]:
    """Canonical digital events (logins, page views) as ``app`` events."""
    zone = ZoneInfo(timezone)
    out = []
    for r in rows:
        action = {"app_login": "login", "page_view": "product_view"}.get(r["event_type"])
        if action is None:
            continue
        when = r.get("event_time") or dt.datetime.combine(r["event_date"], dt.time(12))
        e = {"kind": "app", "event_id": r["event_id"], "customer_id": r["customer_id"], "action": action,
             "occurred_at": when.replace(tzinfo=zone).isoformat()}
        if action == "product_view" and r.get("detail"):
            e["product_id"] = r["detail"]
        out.append(e)
    return out


def _read(out: Path, name: str, day: dt.date, column: str) -> list[dict[str, Any]]:
    import pyarrow.compute as pc

    from_format = "parquet"
    meta = out / "_sim" / "meta.json"
    if meta.exists():
        from_format = json.loads(meta.read_text(encoding="utf-8")).get("format", "parquet")
    path = out / f"{name}.{from_format}"
    if not path.exists():
        raise DataError(f"{path}: no {name} extract", hint="write a simulated bank first: lifeloop simulate OUT")
    if from_format == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
    else:
        import pyarrow.csv as pcsv

        schema = arrow_schema(name)
        table = pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(
            column_types={f.name: f.type for f in schema}))
    table = table.filter(pc.equal(table[column].cast("date32"), day))
    return table.to_pylist()


def event_stream(out: str | Path, day: dt.date, *, timezone: str) -> list[dict[str, Any]]:
    """The simulated bank's transactions and app events of ``day`` as events with ids (in id order)."""
    out = Path(out)
    events = transaction_events(_read(out, "transactions", day, "txn_date"), timezone)
    events += app_events(_read(out, "events", day, "event_date"), timezone)
    return sorted(events, key=lambda e: e["event_id"])
