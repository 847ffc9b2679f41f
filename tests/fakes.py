"""Fakes for unit tests through the step ports: no lake, no database, no engine.

A step's ``compute(inputs)`` reads only its ports (lifeloop.contract.Inputs). These stand-ins let a test
hand it in-memory Arrow tables:

* :class:`TableSnapshot` — a resolved input snapshot whose ``read()`` returns a table held in memory;
* :class:`BankTables` — the engine port for steps that only look small bank tables up
  (``SELECT col, ... FROM table``); any other query fails the test, so a step that needs a real engine
  cannot pass on the fake by accident;
* :class:`NoLake` — the lake port for steps that must not touch the lake: any use fails the test;
* :class:`FolderLake` — a tiny read-only lake over Parquet files in a temporary folder, for the few pure
  helpers that read earlier days by date (``outcomes.read_lists``), with no manifests and no publishing;
* :func:`config` — a config file's validated model and located YAML from YAML text, as the runner loads it;
* :func:`inputs` — an :class:`~lifeloop.contract.Inputs` from all of the above.

The history port is :class:`lifeloop.strategy.history.InMemoryHistory` (it keeps the look-back window).
"""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel
from sqlglot import exp

from lifeloop.config.loader import LocatedYaml, load_yaml, validate_model
from lifeloop.contract import Bank, HistoryPort, Inputs

D = dt.date(2024, 6, 30)


class NotAvailable(AssertionError):
    """A unit test reached for a port it must not need (the lake, an engine, the operations database)."""


def _refuse(owner: str, name: str, what: str) -> Exception:
    """Dunder look-ups (copy, pickle, hasattr probes) get a plain AttributeError; a real use fails the test."""
    if name.startswith("__"):
        return AttributeError(name)
    return NotAvailable(f"a unit test used {owner}'s {name!r}{what}")


class TableSnapshot:
    """A Snapshot-like input whose main table is in memory (``read``, ``schema`` as lifeloop.contract.Snapshot)."""

    def __init__(self, area: str, table: pa.Table, as_of: dt.date = D, run_id: str | None = "fake"):
        self.area, self.as_of, self.run_id, self.table = area, as_of, run_id, table
        self.file = Path(f"<memory:{area}>")

    def read(self, columns: list[str] | None = None) -> pa.Table:
        return self.table.select(columns) if columns is not None else self.table

    def schema(self) -> pa.Schema:
        return self.table.schema


class BankTables:
    """An engine port that answers ``SELECT a, b FROM table`` from in-memory tables, and nothing else."""

    name = "fake"

    def __init__(self, **tables: pa.Table):
        self.tables = tables
        self.queries: list[str] = []

    def to_arrow(self, expression: exp.Expression) -> pa.Table:
        used = {k for k, v in expression.args.items() if v}
        if not isinstance(expression, exp.Select) or used != {"expressions", "from_"}:
            raise NotAvailable(f"a unit test asked the fake engine for more than a look-up: {expression.sql()}")
        name = expression.find(exp.Table).name
        if name not in self.tables:
            raise NotAvailable(f"the fake bank has no table {name!r} (has: {', '.join(sorted(self.tables))})")
        self.queries.append(name)
        return self.tables[name].select([e.alias_or_name for e in expression.expressions])

    def __getattr__(self, name: str) -> Any:
        raise _refuse("the engine", name, ": only look-ups of small tables are faked")


class NoLake:
    """The lake port of a step that must not read the lake: any use fails the test."""

    root = Path("<no lake>")

    def __getattr__(self, name: str) -> Any:
        raise _refuse("the lake", name, "")


class FolderLake:
    """Parquet files at ``root/<area>/as_of=D/<area>.parquet``: dates and files, read-only, nothing else."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def put(self, area: str, as_of: dt.date, table: pa.Table) -> None:
        folder = self.snapshot_dir(area, as_of)
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / f"{area}.parquet")

    def snapshot_dir(self, area: str, as_of: dt.date) -> Path:
        return self.root / area / f"as_of={as_of.isoformat()}"

    def snapshot_file(self, area: str, as_of: dt.date) -> Path:
        return self.snapshot_dir(area, as_of) / f"{area}.parquet"

    def dates(self, area: str) -> list[dt.date]:
        base = self.root / area
        return sorted(dt.date.fromisoformat(p.name[len("as_of="):]) for p in base.glob("as_of=*")) \
            if base.exists() else []

    def exists(self, area: str, as_of: dt.date) -> bool:
        return self.snapshot_file(area, as_of).exists()

    def previous_date(self, area: str, as_of: dt.date) -> dt.date | None:
        return max((d for d in self.dates(area) if d < as_of), default=None)

    def latest_date(self, area: str, as_of: dt.date) -> dt.date | None:
        return max((d for d in self.dates(area) if d <= as_of), default=None)

    def __getattr__(self, name: str) -> Any:
        raise _refuse("the lake", name, ": the folder lake only lists and reads")


def config(model: type[BaseModel], text: str, name: str | None = None) -> tuple[Any, LocatedYaml]:
    """A config file's validated model and located YAML from (dedented) YAML text, as the runner loads it."""
    file = f"config/{name or model.__name__}.yaml"
    doc = load_yaml(file, text=textwrap.dedent(text))
    return validate_model(model, doc), doc


def inputs(as_of: dt.date = D, *, snapshots: dict[str, pa.Table | None] | None = None,
           configs: dict[str, tuple[Any, LocatedYaml]] | None = None, history: HistoryPort | None = None,
           engine: Any = None, lake: Any = None) -> Inputs:
    """A step's Inputs from in-memory tables: declared snapshots, configs, history; no lake or engine by default."""
    snaps = {area: None if t is None else TableSnapshot(area, t, as_of) for area, t in (snapshots or {}).items()}
    return Inputs(as_of=as_of, engine=engine if engine is not None else BankTables(), snapshots=snaps,
                  configs=configs or {}, bank=Bank("Unit Test Bank", "Asia/Shanghai", Path("<no workspace>")),
                  lake=lake if lake is not None else NoLake(), history=history)
