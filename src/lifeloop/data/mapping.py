"""The mapping file: how a bank's own extracts become Lifeloop's canonical tables (docs/ingestion.md).

A mapping is YAML, validated by the strict models below (a typo is an error naming file, line and
field) and then cross-checked against the canonical schema (unknown tables, columns and sources get
"did you mean"). Applying it is :mod:`lifeloop.data.transform`.

Without a mapping, SOURCE is a folder of canonical extracts; :func:`canonical_mapping` builds the
equivalent mapping (one source per file, columns by name), so both paths share one code path.
"""

from __future__ import annotations

import datetime as dt
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from lifeloop.config.loader import LocatedYaml, format_loc, load_model
from lifeloop.config.models import Strict
from lifeloop.data.readers import AUTO, CsvFormat, is_parquet
from lifeloop.data.schema import TABLES
from lifeloop.data.sensitive import named_in_mapping
from lifeloop.errors import ConfigError, IngestError, Problem
from lifeloop.store.paths import within

Scalar = str | int | float | bool | dt.date | None
CANONICAL_SUFFIXES = (".csv", ".csv.gz", ".parquet")


class SourceFormat(Strict):
    """Defaults for every CSV source: encoding, delimiter, quoting, header, null markers."""

    encoding: str = "utf-8"
    delimiter: str = Field(",", min_length=1, max_length=1)
    quote: str | None = Field('"', min_length=1, max_length=1)
    header: bool = True
    null_values: list[str] = Field(default_factory=lambda: [""])
    trim: bool = True


class SourceFile(Strict):
    """One named source file; any format key here overrides the defaults for this file."""

    file: str
    encoding: str | None = None
    delimiter: str | None = Field(None, min_length=1, max_length=1)
    quote: str | None = Field(None, min_length=1, max_length=1)
    header: bool | None = None
    null_values: list[str] | None = None
    trim: bool | None = None
    columns: list[str] | None = None  # names of the fields when the file has no header row

    def csv_format(self, defaults: SourceFormat) -> CsvFormat:
        """The effective CSV format of this file."""
        pick = (lambda name: getattr(self, name) if getattr(self, name) is not None else getattr(defaults, name))
        return CsvFormat(encoding=pick("encoding"), delimiter=pick("delimiter"), quote=pick("quote"),
                         header=pick("header"), null_values=tuple(pick("null_values")), trim=pick("trim"),
                         columns=tuple(self.columns) if self.columns else None)


class ColumnSpec(Strict):
    """How one value is made: from a source column, an expression or a constant; then parsed/mapped."""

    column: str | None = None
    expr: str | None = None
    value: Scalar = None
    format: str | None = None           # strptime format, e.g. "%y%m%d" (YYMMDD)
    map: dict[str, Scalar] | None = None  # source code -> canonical code
    default: Scalar = None              # for codes not in map (and missing values); without it they are errors
    type: str | None = Field(None, pattern=r"(?i)^(VARCHAR|BOOLEAN|INTEGER|BIGINT|DOUBLE|DATE|TIMESTAMP|"
                                           r"DECIMAL\(\d+, ?\d+\))$")  # of a derived value

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):  # `customer_id: client_id` names a source column
            return {"column": data}
        # YAML reads `1: x` with an int key; source codes are text
        if isinstance(data, dict) and isinstance(data.get("map"), dict):
            data = {**data, "map": {("" if k is None else str(k)): v for k, v in data["map"].items()}}
        return data

    @model_validator(mode="after")
    def _one_origin(self) -> ColumnSpec:
        given = [k for k in ("column", "expr", "value") if k in self.model_fields_set]
        if len(given) != 1:
            raise ValueError("give exactly one of column, expr or value"
                             + (f" (got {', '.join(given)})" if given else ""))
        if "value" in given and (self.format or self.map is not None):
            raise ValueError("a constant value takes no format or map")
        return self

    @property
    def has_default(self) -> bool:
        return "default" in self.model_fields_set


class Lookup(Strict):
    """A left join against another source by key, e.g. the owner of an account from the disposition file."""

    from_: str = Field(alias="from")
    # column here -> column of the looked-up source (not "on": YAML reads a bare on as true)
    match: dict[str, str] = Field(min_length=1)
    where: str | None = None                    # restricted boolean rule over the looked-up source
    columns: dict[str, str] = Field(min_length=1)  # looked-up source column -> name it gets here
    required: bool = False                      # every row must find a match (an orphan is an error)


class Part(Strict):
    """Where the rows of a canonical table (or of one part of a union) come from."""

    from_: str = Field(alias="from")
    lookups: list[Lookup] = Field(default_factory=list)
    derive: dict[str, ColumnSpec] = Field(default_factory=dict)
    where: str | None = None
    columns: dict[str, ColumnSpec] | None = None  # None: canonical columns taken by name


class Latest(Strict):
    """Keep only the last row per key (e.g. the end-of-day balance from a running-balance log)."""

    key: list[str] = Field(min_length=1)
    order_by: list[str] = Field(default_factory=list)


class TableMapping(Strict):
    """One canonical table: a single part (from...), a union of parts, or inline rows."""

    from_: str | None = Field(None, alias="from")
    lookups: list[Lookup] = Field(default_factory=list)
    derive: dict[str, ColumnSpec] = Field(default_factory=dict)
    where: str | None = None
    columns: dict[str, ColumnSpec] | None = None
    union: list[Part] | None = Field(None, min_length=1)
    rows: list[dict[str, Scalar]] | None = None
    latest: Latest | None = None
    rows_after_as_of: Literal["error", "drop"] = "error"

    @model_validator(mode="after")
    def _one_kind(self) -> TableMapping:
        kinds = [k for k, v in (("from", self.from_), ("union", self.union), ("rows", self.rows)) if v is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of from, union or rows"
                             + (f" (got {', '.join(kinds)})" if kinds else ""))
        if self.from_ is None and (self.lookups or self.derive or self.where or self.columns is not None):
            raise ValueError("lookups, derive, where and columns belong with from (or inside each union part)")
        return self

    def parts(self) -> list[tuple[Part, tuple[Any, ...]]]:
        """The parts feeding this table, each with its path in the mapping (for error locations)."""
        if self.union is not None:
            return [(p, ("union", i)) for i, p in enumerate(self.union)]
        if self.from_ is not None:
            return [(Part.model_validate({"from": self.from_, "lookups": self.lookups, "derive": self.derive,
                                          "where": self.where, "columns": self.columns}), ())]
        return []


class Mapping(Strict):
    """A whole mapping file."""

    source: SourceFormat = Field(default_factory=SourceFormat)
    sources: dict[str, SourceFile] = Field(default_factory=dict)
    tables: dict[str, TableMapping] = Field(default_factory=dict)


@dataclass
class LoadedMapping:
    """A validated mapping plus where it came from (to locate later errors by line)."""

    mapping: Mapping
    file: str
    doc: LocatedYaml | None = None
    base: Path = Path(".")
    # folders besides ``base`` that sources may name (lifeloop.yaml ingest.source_folders)
    roots: tuple[Path, ...] = ()

    def where(self, *path: Any) -> str:
        """``mapping.yaml:42 field tables.customers.columns.birth_date`` for a path in the mapping."""
        line = self.doc.line_of(("tables", *path)) if self.doc else None
        loc = format_loc(("tables", *path))
        return f"{self.file}:{line} field {loc}" if line else f"{self.file} field {loc}"

    def problem(self, message: str, *path: Any) -> Problem:
        """A problem located at a path of the mapping."""
        line = self.doc.line_of(("tables", *path)) if self.doc else None
        return Problem(message, file=self.file, line=line, field=format_loc(("tables", *path)))

    def source_path(self, name: str) -> Path:
        """The file of a named source (relative paths are relative to SOURCE), confined to SOURCE.

        A path that resolves (symlinks followed) outside SOURCE and outside every folder of
        ``ingest.source_folders`` is refused: a mapping cannot make Lifeloop read ``/etc/passwd``.
        """
        given = self.mapping.sources[name].file
        p = Path(given).expanduser()
        path = p if p.is_absolute() else self.base / p
        if not within(path, [self.base, *self.roots]):
            line = self.doc.line_of(("sources", name, "file")) if self.doc else None
            field = format_loc(("sources", name, "file"))
            raise ConfigError(f"{self.file}: source {name!r} ({given}) is outside the source folder {self.base}",
                              problems=[Problem("source file outside the source folder", file=self.file, line=line,
                                                field=field)],
                              hint="put the file in the folder given to `lifeloop ingest`, or list the folder it is "
                                   "in under ingest.source_folders in lifeloop.yaml (docs/security.md)")
        return path


def load_mapping(path: Path, source_dir: Path, roots: tuple[Path, ...] = ()) -> LoadedMapping:
    """Load and cross-check a mapping file; with no ``tables`` it describes a canonical folder's format.

    ``roots``: folders besides ``source_dir`` that its sources may name (every source is checked now).
    """
    try:
        mapping, doc = load_model(Mapping, path)
    except ConfigError as exc:
        if exc.hint and "configuration.md" in exc.hint:  # the loader's generic pointer; mappings have their own page
            exc.hint = "fix the fields named above (mapping files: see docs/ingestion.md)"
        raise
    loaded = LoadedMapping(mapping, str(path), doc, source_dir, roots)
    if not mapping.tables:
        if mapping.sources:
            raise ConfigError(f"{path}: sources are listed but no tables use them",
                              problems=[Problem("no tables", file=str(path), line=doc.line_of(("sources",)),
                                                field="tables")],
                              hint="add a tables: block, or drop sources: to read a folder of canonical files")
        canonical = canonical_mapping(source_dir, mapping.source, skip=path)
        return LoadedMapping(canonical.mapping, str(path), None, source_dir, roots)
    check_references(loaded)
    for name in mapping.sources:
        loaded.source_path(name)  # refuses a source outside the allowed folders, before anything is read
    return loaded


def check_references(loaded: LoadedMapping) -> None:
    """Every table, column and source named in the mapping must exist (else file:line + did you mean)."""
    m = loaded.mapping
    problems: list[Problem] = []

    def unknown(kind: str, name: str, known: list[str], *path: Any) -> None:
        close = difflib.get_close_matches(name, known, n=1)
        msg = f"unknown {kind} {name!r}" + (f"; did you mean {close[0]!r}?" if close else
                                            f" (known: {', '.join(known)})")
        problems.append(loaded.problem(msg, *path))

    for tname, tm in m.tables.items():
        if tname not in TABLES:
            unknown("canonical table", tname, list(TABLES), tname)
            continue
        cols = TABLES[tname].column_names
        for part, ppath in tm.parts():
            if part.from_ not in m.sources:
                unknown("source", part.from_, list(m.sources), tname, *ppath, "from")
            for i, lk in enumerate(part.lookups):
                if lk.from_ not in m.sources:
                    unknown("source", lk.from_, list(m.sources), tname, *ppath, "lookups", i, "from")
            for cname in part.columns or {}:
                if cname not in cols:
                    unknown(f"column of {tname}", cname, cols, tname, *ppath, "columns", cname)
        for i, row in enumerate(tm.rows or []):
            for cname in row:
                if cname not in cols:
                    unknown(f"column of {tname}", cname, cols, tname, "rows", i, cname)
        if tm.rows_after_as_of == "drop" and TABLES[tname].kind != "fact":
            problems.append(loaded.problem(f"{tname} is a state table (a full extract, not dated rows); "
                                           f"rows_after_as_of applies to fact tables only", tname, "rows_after_as_of"))
        if tm.latest:
            for key in ("key", "order_by"):
                for j, cname in enumerate(getattr(tm.latest, key)):
                    if cname not in cols:
                        unknown(f"column of {tname}", cname, cols, tname, "latest", key, j)
    # names given after renaming (derived values, lookup columns): C3 must not enter under a new name either
    named = [(n, (tname, *ppath, "derive", n)) for tname, tm in m.tables.items() for part, ppath in tm.parts()
             for n in part.derive]
    named += [(alias, (tname, *ppath, "lookups", i, "columns", there)) for tname, tm in m.tables.items()
              for part, ppath in tm.parts() for i, lk in enumerate(part.lookups) for there, alias in lk.columns.items()]
    for name, kind, path in named_in_mapping(named):
        problems.append(loaded.problem(f"{name!r} looks like {kind} (C3 authentication data), which is never "
                                       f"loaded", *path))
    if problems:
        raise ConfigError(f"{loaded.file}: {len(problems)} problem(s) in the mapping; first: {problems[0]}",
                          problems=problems, hint="fix the names above (see docs/ingestion.md)")


def canonical_mapping(folder: Path, fmt: SourceFormat | None = None, skip: Path | None = None) -> LoadedMapping:
    """The mapping of a folder of canonical extracts: ``<table>.csv[.gz]`` or ``<table>.parquet``.

    ``skip`` is a file to leave out (the mapping file itself, when it sits in the folder).
    """
    if not folder.exists():
        raise IngestError(f"{folder}: not found", hint="point SOURCE at the folder holding the extract files")
    # a single canonical file (e.g. a daily transactions.csv) is a folder of one
    entries = sorted(folder.iterdir()) if folder.is_dir() else [folder]
    base = folder if folder.is_dir() else folder.parent
    sources: dict[str, SourceFile] = {}
    problems: list[Problem] = []
    for entry in entries:
        if entry.name.startswith(("_", ".")) or (skip is not None and entry.resolve() == skip.resolve()):
            continue  # the simulator's _truth/, editor files, the mapping itself
        stem = _canonical_stem(entry.name)
        if entry.is_file() and stem in TABLES:
            if stem in sources:
                problems.append(Problem(f"two files for table {stem}", file=entry.name, table=stem))
            sources[stem] = SourceFile(file=entry.name)
            continue
        close = difflib.get_close_matches(stem or entry.name, list(TABLES), n=1)
        problems.append(Problem("not a canonical table file" + (f"; did you mean {close[0]}.csv?" if close else ""),
                                file=entry.name))
    if problems:
        raise IngestError(f"{folder}: {len(problems)} file(s) are not canonical extracts; first: {problems[0]}",
                          problems=problems,
                          hint=f"name files <table>.csv, <table>.csv.gz or <table>.parquet for the tables "
                               f"{', '.join(TABLES)}; move other files away or start their name with _")
    if not sources:
        raise IngestError(f"{folder}: no canonical extract files found",
                          hint="expected files such as customers.csv, transactions.parquet (tables: "
                               f"{', '.join(TABLES)})")
    tables = {name: TableMapping.model_validate({"from": name}) for name in TABLES if name in sources}
    # without a mapping each file's encoding is found on its own: one GBK file among UTF-8 ones reads
    mapping = Mapping(source=fmt or SourceFormat(encoding=AUTO), sources=sources, tables=tables)
    return LoadedMapping(mapping, str(folder), None, base)


def _canonical_stem(name: str) -> str | None:
    low = name.lower()
    for suffix in CANONICAL_SUFFIXES:
        if low.endswith(suffix):
            return name[: -len(suffix)]
    return None if not is_parquet(Path(name)) else Path(name).stem
