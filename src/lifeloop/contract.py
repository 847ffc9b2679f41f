"""The step contract (步骤契约): a daily step is a declaration plus a pure ``compute``.

A step says what it reads (lake areas, each with its as-of rule), which config files it reads, and
which lake area it writes; its ``compute(inputs) -> Output`` turns Arrow tables and engine relations
into Arrow tables. One runner (:mod:`lifeloop.pipeline`) does everything else: resolves and loads the
inputs, registers the bank's tables on the engine, calls ``compute``, publishes the output atomically
and writes a manifest naming every input snapshot (area, date, run id) and every config file (hash)
that was read. A step never sees the facade, never opens files it did not declare and never publishes.

As-of rules of a :class:`Read`:

* ``"on"``      — the snapshot of D itself (a missing one is an error naming the step to run);
* ``"before"``  — the newest snapshot strictly before D (history: yesterday's stages, closed windows);
* ``"latest"``  — the newest snapshot on or before D (evidence that is refreshed when the review runs).

``optional=True`` turns "none published" into ``None`` instead of an error. Reading the bank's
tables is declared with ``bank=True``: the runner registers every canonical table as of D on the
engine (facts dated after D are cut, see :meth:`lifeloop.engine.adapters.base.Adapter.register_bank`).
"""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from lifeloop.errors import ConfigError, DataError

if TYPE_CHECKING:
    import pyarrow as pa
    from pydantic import BaseModel
    from sqlalchemy.orm import Session, sessionmaker

    from lifeloop.config.loader import LocatedYaml
    from lifeloop.config.workspace import RunSettings
    from lifeloop.engine.adapters.base import Adapter
    from lifeloop.store.lake import Lake

When = Literal["on", "before", "latest"]


@dataclass(frozen=True)
class Read:
    """One lake area a step reads, and which snapshot of it."""

    area: str
    when: When = "on"
    optional: bool = False


@dataclass(frozen=True)
class Snapshot:
    """An input snapshot the runner resolved: its area, date, run id and file."""

    area: str
    as_of: dt.date
    run_id: str | None
    file: Path

    def read(self, columns: list[str] | None = None) -> pa.Table:
        """The snapshot's main table (only ``columns`` when given)."""
        import pyarrow.parquet as pq

        return pq.read_table(self.file, columns=columns)

    def schema(self) -> pa.Schema:
        """The snapshot's columns without reading its rows."""
        import pyarrow.parquet as pq

        return pq.read_schema(self.file)


class HistoryPort(Protocol):
    """The plan's view of the past (contacts, consent, DND, refusals); see lifeloop.strategy.history."""

    def load(self, as_of: dt.date, lookback_days: int) -> Any: ...


class ConfigPort(Protocol):
    """Validated config files of the workspace, by name (``strategies`` -> config/strategies.yaml)."""

    folder: Path
    checked: str | None   # the hash of the files the last successful pre-flight check saw

    def load(self, name: str, model: type[BaseModel]) -> tuple[Any, LocatedYaml]: ...

    def hash(self, *names: str) -> str: ...

    def exists(self, name: str) -> bool: ...

    def path(self, name: str) -> Path: ...

    def source(self, name: str) -> bytes: ...


@dataclass(frozen=True)
class Bank:
    """What a step may know about the bank beyond its data: name, time zone, workspace folder."""

    name: str
    timezone: str
    workspace: Path


@dataclass
class Inputs:
    """What ``compute`` gets: the as-of date, the resolved snapshots, the configs it declared, and ports."""

    as_of: dt.date
    engine: Adapter
    snapshots: dict[str, Snapshot | None]
    configs: Mapping[str, tuple[Any, LocatedYaml]]
    bank: Bank
    lake: Lake                       # read-only use: registries and earlier days' files the step declared
    bank_files: dict[str, list[Path]] = field(default_factory=dict)
    history: HistoryPort | None = None
    ops: Callable[[], sessionmaker[Session]] | None = None
    config_source: ConfigPort | None = None
    settings: RunSettings | None = None    # lifeloop.yaml's run guards (warning thresholds)
    operator: str | None = None            # who runs the step (the signed-in user): named on approval requests

    @contextmanager
    def scratch(self) -> Iterator[Path]:
        """A private folder inside the lake for files an engine must read (Spark reads files, not memory); removed
        after."""
        folder = Path(self.lake.root) / ".staging" / f"scratch-{uuid.uuid4().hex}"
        folder.mkdir(parents=True)
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def snapshot(self, area: str) -> Snapshot:
        """A declared, non-optional input snapshot."""
        found = self.snapshots.get(area)
        if found is None:
            raise DataError(f"no {area} snapshot for {self.as_of}", hint=f"run the {area} step first")
        return found

    def config(self, name: str) -> Any:
        """A declared config file's validated model (a ConfigError if the workspace has no such file)."""
        if name not in self.configs:
            raise ConfigError(f"config/{name}.yaml is missing", hint="restore it from `lifeloop init` 's template")
        return self.configs[name][0]

    def doc(self, name: str) -> LocatedYaml:
        """A declared config file's located YAML (for file:line in messages)."""
        return self.configs[name][1]


@dataclass
class Table:
    """One output file: an Arrow table written deterministically (sorted by ``order_by``, cast to ``schema``)."""

    name: str
    table: pa.Table
    order_by: tuple[str, ...] = ()
    schema: pa.Schema | None = None


@dataclass
class Output:
    """What ``compute`` returns: tables and verbatim files for the snapshot, manifest fields, a summary."""

    tables: list[Table] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)     # copies kept with the snapshot (config text)
    state: dict[str, bytes] = field(default_factory=dict)     # area-level state (lake/<area>/<name>), after publish
    manifest: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    rows: int | None = None

    def row_count(self) -> int:
        """Rows of the step's main table (the first one) unless set explicitly."""
        if self.rows is not None:
            return self.rows
        return self.tables[0].table.num_rows if self.tables else 0


@dataclass(frozen=True)
class Step:
    """A daily step: what it reads and writes, and its compute."""

    name: str
    compute: Callable[[Inputs], Output]
    reads: tuple[Read, ...] = ()
    configs: Mapping[str, type[BaseModel]] = field(default_factory=dict)
    writes: str | None = None          # the lake area it publishes; None for an action (dispatch)
    bank: bool = False                 # registers the bank's tables as of D on the engine
    history: bool = False              # gets the contact-history port
    ops: bool = False                  # gets the operations database (actions only)
    doc: str = ""

    def __post_init__(self) -> None:
        if self.ops and self.writes:
            raise ValueError(f"step {self.name}: a step that publishes a snapshot is pure and cannot use the ops "
                             "database; make it an action (writes=None)")


@dataclass
class StepResult:
    """What a step reports: rows written, the snapshot's run id, time taken, a summary."""

    step: str
    as_of: dt.date
    rows: int
    run_id: str
    seconds: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
