"""Event sources (事件源): where a stream of events is read from, and the at-least-once loop over one.

An :class:`EventSource` hands out batches of raw events with their positions (a file's line, a Kafka
partition's offset) and is told to commit a position only after the batch is durable *and decided*. So a
crash anywhere in between re-reads the batch: intake acknowledges the repeats as duplicates and the decider's
unique keys (moments, decisions, outbox items) change nothing — at least once from the source, once in effect.

:class:`JsonLinesSource` is the file implementation (the committed position is kept in ``<file>.offset``,
written atomically). :class:`lifeloop.realtime.kafka.KafkaSource` implements it over a Kafka topic (``poll`` =
``consume``, ``commit`` = a synchronous commit of the partitions' offsets after the decision); its bad messages are
skipped with an audit record (``skip_bad`` below), so one bad message does not block its partition.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lifeloop.errors import EventError, Problem
from lifeloop.realtime.schema import parse_events


@dataclass(frozen=True)
class Polled:
    """One raw event and its position in the source (a line number; a Kafka message's topic, partition and
    offset); ``problem``: why it is not an event at all (not JSON ...), ``where`` names it for that."""

    raw: Any
    position: Any
    where: str = ""
    problem: str | None = None
    value: bytes = b""


class EventSource(Protocol):
    """A source of raw events read in order, committed by position once decided."""

    name: str

    def poll(self, max_events: int) -> list[Polled]: ...

    def commit(self, position: Any) -> None: ...

    def close(self) -> None: ...


class JsonLinesSource:
    """A JSON-lines file read from its committed position (``<file>.offset``) on."""

    def __init__(self, path: str | Path, name: str = "file"):
        self.path = Path(path)
        self.name = name
        self.offset_file = self.path.with_name(self.path.name + ".offset")
        self.committed = int(self.offset_file.read_text()) if self.offset_file.exists() else 0
        self.position = self.committed
        self._lines = self.path.read_text(encoding="utf-8").splitlines()

    def poll(self, max_events: int) -> list[Polled]:
        out: list[Polled] = []
        while self.position < len(self._lines) and len(out) < max_events:
            line = self._lines[self.position]
            self.position += 1
            if not line.strip():
                continue
            try:
                out.append(Polled(json.loads(line), self.position))
            except json.JSONDecodeError as exc:
                raise EventError(f"{self.path.name}: line {self.position} is not JSON",
                                 problems=[Problem(exc.msg, file=self.path.name, row=self.position)],
                                 hint="fix the line; everything before it is committed") from None
        return out

    def commit(self, position: int) -> None:
        tmp = self.offset_file.with_name(self.offset_file.name + ".tmp")
        tmp.write_text(str(position), encoding="utf-8")
        os.replace(tmp, self.offset_file)
        self.committed = position

    def close(self) -> None:
        pass


@dataclass
class Pumped:
    """What :func:`pump` did."""

    batches: int = 0
    accepted: int = 0
    duplicates: int = 0
    skipped: int = 0   # bad messages recorded and passed over (skip_bad)
    committed: list[int] = field(default_factory=list)


def pump(source: EventSource, accept: Callable[[Sequence[Any]], Any], decide: Callable[[], Any], *,
         batch: int = 500, max_batches: int | None = None,
         skip_bad: Callable[[Sequence[tuple[Polled, str]]], None] | None = None) -> Pumped:
    """Read the source to its end: accept a batch (stored, committed), decide, then commit its position.

    Without ``skip_bad`` a bad event refuses its whole batch, uncommitted (the file is fixed and run again).
    With it (Kafka), the bad messages of a batch — not JSON, or refused by the schema — are handed to ``skip_bad``
    (which makes them durable: an audit record) and the others are stored; the batch's position is committed
    after both, so a bad message is named once and never blocks the messages after it.
    """
    out = Pumped()
    while max_batches is None or out.batches < max_batches:
        polled = source.poll(batch)
        if not polled:
            break
        good = [p for p in polled if p.problem is None]
        bad = [(p, p.problem) for p in polled if p.problem is not None]
        if bad and skip_bad is None:
            raise EventError(f"{bad[0][0].where}: {bad[0][1]}", hint="fix the message; nothing after it is committed")
        try:
            receipt = accept([p.raw for p in good]) if good else None
        except EventError:
            if skip_bad is None:
                raise
            refused = _refused(good)
            bad += [(p, refused[i]) for i, p in enumerate(good) if i in refused]
            good = [p for i, p in enumerate(good) if i not in refused]
            receipt = accept([p.raw for p in good]) if good else None
        if bad:
            assert skip_bad is not None
            skip_bad(sorted(bad, key=lambda b: b[0].position))   # in the source's order
        decide()
        source.commit(polled[-1].position)   # only now: the events are stored and decided, the bad ones recorded
        out.batches += 1
        out.skipped += len(bad)
        if receipt is not None:
            out.accepted += len(receipt.accepted)
            out.duplicates += len(receipt.duplicates)
        out.committed.append(polled[-1].position)
    return out


def _refused(polled: Sequence[Polled]) -> dict[int, str]:
    """Which events of a refused batch the schema refuses on their own (index -> the first problem)."""
    out: dict[int, str] = {}
    for i, p in enumerate(polled):
        try:
            parse_events([p.raw], where=p.where or "event")
        except EventError as exc:
            first = exc.problems[0] if exc.problems else None
            out[i] = (f"field {first.field}: {first.message}" if first and first.field
                      else first.message if first else exc.message)
    return out
