"""Event sources (事件源): where a stream of events is read from, and the at-least-once loop over one.

An :class:`EventSource` hands out batches of raw events with their positions (a file's line, a Kafka
partition's offset) and is told to commit a position only after the batch is durable *and decided*. So a
crash anywhere in between re-reads the batch: intake acknowledges the repeats as duplicates and the decider's
unique keys (moments, decisions, outbox items) change nothing — at least once from the source, once in effect.

:class:`JsonLinesSource` is the file implementation (the committed position is kept in ``<file>.offset``,
written atomically). A Kafka adapter (confluent-kafka: ``poll`` = ``consume``, ``commit`` = ``commit`` of the
offsets after the decision) would implement the same protocol; it is not built (docs/realtime.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lifeloop.errors import EventError, Problem


@dataclass(frozen=True)
class Polled:
    """One raw event and its position in the source."""

    raw: Any
    position: int


class EventSource(Protocol):
    """A source of raw events read in order, committed by position once decided."""

    name: str

    def poll(self, max_events: int) -> list[Polled]: ...

    def commit(self, position: int) -> None: ...

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
    committed: list[int] = field(default_factory=list)


def pump(source: EventSource, accept: Callable[[Sequence[Any]], Any], decide: Callable[[], Any], *,
         batch: int = 500, max_batches: int | None = None) -> Pumped:
    """Read the source to its end: accept a batch (stored, committed), decide, then commit its position."""
    out = Pumped()
    while max_batches is None or out.batches < max_batches:
        polled = source.poll(batch)
        if not polled:
            break
        receipt = accept([p.raw for p in polled])
        decide()
        source.commit(polled[-1].position)   # only now: the events are stored and decided
        out.batches += 1
        out.accepted += len(receipt.accepted)
        out.duplicates += len(receipt.duplicates)
        out.committed.append(polled[-1].position)
    return out
