"""Event intake (事件接入): validate against the declared schema, store once per id, commit, then acknowledge.

The same path for a file (``lifeloop events ingest FILE``: JSON lines or CSV) and for HTTP (``POST /events``):

1. every event is validated (:mod:`lifeloop.realtime.schema`); one bad event refuses the whole batch, naming
   the file or request, the row and the field — nothing is stored;
2. the batch is stored in one transaction, once per ``event_id`` (a repeated id is acknowledged as a
   duplicate and changes nothing, also when two requests race: the unique index decides);
3. the transaction is committed before :func:`accept` returns, so an acknowledged event is durable.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifeloop.errors import EventError, Problem
from lifeloop.realtime.schema import body_of, local_date, parse_events
from lifeloop.store.ops import events as event_store
from lifeloop.store.ops.database import unit_of_work


@dataclass
class Receipt:
    """What an intake did: events newly stored and ids acknowledged as duplicates (in the order received)."""

    accepted: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)

    def add(self, other: Receipt) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates

    def as_dict(self) -> dict[str, Any]:
        return {"accepted": len(self.accepted), "duplicates": len(self.duplicates),
                "duplicate_ids": self.duplicates[:100]}


def accept(sessions: Any, raws: Sequence[Any], *, source: str, timezone: str, where: str = "events") -> Receipt:
    """Validate every event of a batch, store the new ones once per id, and commit; returns the receipt."""
    events = parse_events(list(raws), where=where)
    rows = [event_store.NewEvent(event_id=e.event_id, source=source, kind=e.kind, customer_id=e.customer_id,
                                 occurred_at=e.occurred_at, local_date=local_date(e.occurred_at, timezone),
                                 body=body_of(e)) for e in events]
    with unit_of_work(sessions) as session:
        stored = event_store.store(session, events=rows)
    return Receipt(stored.new, stored.duplicates)


def read_file(path: Path) -> list[dict[str, Any]]:
    """The events of a JSON-lines (``.jsonl``/``.json``) or CSV (``.csv``) file as dicts; blank CSV cells are absent."""
    if not path.exists():
        raise EventError(f"{path}: no such file", hint="give the path of a .jsonl or .csv file of events")
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8-sig")
    if suffix in (".jsonl", ".json", ".ndjson"):
        out, problems = [], []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(Problem(f"not JSON: {exc.msg} at column {exc.colno}", file=path.name, row=n))
                continue
            if not isinstance(value, dict):
                problems.append(Problem("an event must be a JSON object", file=path.name, row=n))
                continue
            out.append(value)
        if problems:
            raise EventError(f"{path.name}: {len(problems):,} lines are not events; none was stored",
                             problems=problems[:50], total=len(problems), hint="one JSON object per line")
        return out
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        return [{k: v for k, v in row.items() if k and v not in (None, "")} for row in reader]
    raise EventError(f"{path.name}: cannot read {suffix or 'a file without an extension'}",
                     hint="events come as JSON lines (.jsonl) or CSV (.csv), one event per line or row")


def decode_body(body: bytes) -> list[Any]:
    """An HTTP body: one event (a JSON object), a list of events, or ``{"events": [...]}``."""
    try:
        value = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EventError(f"the request body is not JSON: {exc}",
                         hint="send one event as a JSON object, or a list of them (application/json)") from None
    if isinstance(value, dict) and "events" in value and set(value) == {"events"}:
        value = value["events"]
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return value
    raise EventError("the request body must be an event (a JSON object) or a list of events",
                     hint="see docs/realtime.md, 'Event schema'")
