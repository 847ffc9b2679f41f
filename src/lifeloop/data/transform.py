"""Apply a mapping in DuckDB: read the sources, join lookups, derive, filter, map and cast.

For every canonical table the result is a DuckDB table ``stage_<name>`` with the canonical columns
(typed) plus ``__file``, ``__part`` and ``__row`` — where each row came from, so that every later
check can name the file and the 1-based data row. All SQL is built as sqlglot trees; user
expressions come in as trees from :func:`lifeloop.engine.rules.parse_expression`.

Rows that cannot be read (unknown codes, unparsable dates and numbers, orphans of a required lookup)
are collected as located problems and raised together as one ValidationError before anything else.
"""

from __future__ import annotations

import datetime as dt
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlglot import exp

from lifeloop.config.loader import format_loc
from lifeloop.data.mapping import ColumnSpec, LoadedMapping, Lookup, Part
from lifeloop.data.readers import encoding_of, read_source
from lifeloop.data.row_checks import unreadable_rows
from lifeloop.data.schema import TABLES
from lifeloop.data.sensitive import refuse_named_columns
from lifeloop.data.sql import CAP, FILE, PART, ROW, col, create_table, ident
from lifeloop.data.values import ValueCheck, build_value
from lifeloop.engine.adapters.base import date_literal
from lifeloop.engine.macros import MACROS, expand
from lifeloop.engine.rules import parse_expression
from lifeloop.errors import IngestError, Problem, RuleError, ValidationError


@dataclass
class SourceData:
    """A source file read and registered in DuckDB."""

    name: str
    label: str               # the file as the user wrote it, used in problems
    relation: str            # the registered DuckDB name
    types: dict[str, str]    # column -> DuckDB type (CSV: all VARCHAR)


@dataclass
class PartPlan:
    """One compiled part: the prepared query, its row filter, outputs and row checks."""

    table: str
    index: int
    source: SourceData
    path: tuple[Any, ...]
    prep: exp.Select
    where: exp.Expression | None = None
    outputs: dict[str, exp.Expression] = field(default_factory=dict)
    checks: list[ValueCheck] = field(default_factory=list)
    derive_checks: list[ValueCheck] = field(default_factory=list)
    required_lookups: list[tuple[str, Lookup, str]] = field(default_factory=list)  # (hit column, lookup, label)
    lookup_subs: list[tuple[exp.Select, Lookup, str, list[str]]] = field(default_factory=list)


class Stager:
    """Compiles a loaded mapping against the sources' real columns, then builds the stage tables."""

    def __init__(self, con: Any, loaded: LoadedMapping, as_of: dt.date | None, tmpdir: Path, progress: bool):
        self.con, self.loaded, self.tmpdir, self.progress = con, loaded, tmpdir, progress
        self.as_of_given = as_of
        self.as_of = as_of or dt.date(2000, 1, 1)  # placeholder: only used if the mapping never names as_of
        self.uses_as_of: list[str] = []
        self.sources: dict[str, SourceData] = {}
        self.encodings: dict[str, str] = {}   # CSV file -> the encoding it was read with
        self.problems: list[Problem] = []

    # ------------------------------------------------------------------ reading
    def source(self, name: str) -> SourceData:
        """Read (once) and register a named source."""
        if name in self.sources:
            return self.sources[name]
        import pyarrow as pa

        spec = self.loaded.mapping.sources[name]
        path = self.loaded.source_path(name)
        table = read_source(path, spec.csv_format(self.loaded.mapping.source), tmpdir=self.tmpdir,
                            progress=self.progress)
        if encoding := encoding_of(table):
            self.encodings[spec.file] = encoding
        bad = [c for c in table.column_names if c.startswith("__")]
        if bad:
            raise IngestError(f"{spec.file}: column names starting with '__' are reserved ({', '.join(bad)})",
                              hint="rename the column in the file or in the source's columns:")
        refuse_named_columns(spec.file, table)  # C3 never enters, whatever the mapping renames it to
        table = table.append_column(ROW, pa.array(range(1, table.num_rows + 1), pa.int64()))
        relation = f"src_{len(self.sources)}"
        self.con.register(relation, table)
        rel = self.con.table(relation)
        types = {c: str(t) for c, t in zip(rel.columns, rel.types, strict=False) if c != ROW}
        self.sources[name] = SourceData(name, spec.file, relation, types)
        return self.sources[name]

    # ------------------------------------------------------------------ expressions
    def parse(self, text: str, env: dict[str, str], kind: str, path: tuple[Any, ...]) -> tuple[exp.Expression, str]:
        """A user expression as a checked tree, with as_of and macros replaced for this as-of date."""

        try:
            tree = parse_expression(text, columns={**env, "as_of": "DATE"}, kind=kind,  # type: ignore[arg-type]
                                    where=self.loaded.where(*path))
        except RuleError:
            if self.problems:  # most likely a consequence of a column reported missing above
                return exp.null(), "VARCHAR"
            raise
        sql_type = tree.meta.get("sql_type", "VARCHAR")
        names = {c.name for c in tree.find_all(exp.Column)}
        if "as_of" in names or any(isinstance(a, exp.Anonymous) and a.name.lower() in MACROS
                                   for a in tree.find_all(exp.Anonymous)):
            self.uses_as_of.append(self.loaded.where(*path))
        as_of_lit = date_literal(self.as_of)
        tree = tree.transform(lambda n: as_of_lit.copy() if isinstance(n, exp.Column) and n.name == "as_of"
                              and not n.table else n, copy=True)
        return expand(tree, self.as_of), sql_type

    def _missing(self, source: SourceData, env: dict[str, str], path: tuple[Any, ...]):
        def report(name: str) -> None:
            close = difflib.get_close_matches(name, list(env), n=1)
            msg = f"{source.label} has no column {name!r}" + (f"; did you mean {close[0]!r}?" if close else "")
            line = self.loaded.doc.line_of(("tables", *path)) if self.loaded.doc else None
            used = f"{Path(self.loaded.file).name}:{line}" if line else Path(self.loaded.file).name
            self.problems.append(Problem(f"{msg} (needed by {used})", file=source.label, line=1, column=name,
                                         field=format_loc(("tables", *path))))
        return report

    # ------------------------------------------------------------------ compiling
    def compile_part(self, table: str, index: int, part: Part, path: tuple[Any, ...]) -> PartPlan:
        """Compile one part of a table against its source's columns."""
        src = self.source(part.from_)
        env = dict(src.types)
        query = exp.select(exp.Star()).from_(exp.Table(this=ident(src.relation)))
        plan = PartPlan(table, index, src, path, query)
        for i, lk in enumerate(part.lookups):
            query = self._lookup(plan, query, env, lk, i, path + ("lookups", i))
        for name, spec in part.derive.items():
            dpath = path + ("derive", name)
            if name in env:
                self.problems.append(self.loaded.problem(f"derived column {name!r} already exists in {src.label}",
                                                         *dpath))
                continue
            value, vtype, checks = build_value(spec, env=env, target_type=None, target=name,
                                               parse_expr=lambda t, p=dpath: self.parse(t, env, "value", p),
                                               missing_column=self._missing(src, env, dpath))
            plan.derive_checks.extend(checks)
            query = exp.select(exp.Star(), exp.alias_(value, name, quoted=True)).from_(query.subquery("b"))
            env[name] = vtype
        plan.prep = query
        if part.where:
            plan.where, _ = self.parse(part.where, env, "boolean", path + ("where",))
        self._outputs(plan, part, env, path)
        return plan

    def _lookup(self, plan: PartPlan, query: exp.Select, env: dict[str, str], lk: Lookup, i: int,
                path: tuple[Any, ...]) -> exp.Select:
        other = self.source(lk.from_)
        missing = self._missing(other, other.types, path)
        before = len(self.problems)
        for here, there in lk.match.items():
            if here not in env:
                self._missing(plan.source, env, path + ("match", here))(here)
            if there not in other.types:
                missing(there)
        for there, alias in lk.columns.items():
            if there not in other.types:
                missing(there)
            if alias in env:
                self.problems.append(self.loaded.problem(f"lookup column name {alias!r} is already used; "
                                                         f"pick another name", *path, "columns", there))
        if len(self.problems) > before:  # reported; name the columns anyway so later steps do not cascade
            env.update({alias: "VARCHAR" for alias in lk.columns.values()})
            return query
        keys = [f"__k{j}" for j in range(len(lk.match))]
        hit = f"__hit{i}"
        sub = exp.select(*[exp.alias_(exp.cast(col(there), "VARCHAR"), k, quoted=True)
                           for k, there in zip(keys, lk.match.values(), strict=False)],
                         *[exp.alias_(col(there), alias, quoted=True) for there, alias in lk.columns.items()],
                         exp.alias_(exp.true(), hit, quoted=True), col(ROW)
                         ).from_(exp.Table(this=ident(other.relation)))
        if lk.where:
            cond, _ = self.parse(lk.where, dict(other.types), "boolean", path + ("where",))
            sub = sub.where(cond)
        plan.lookup_subs.append((sub, lk, other.label, keys))
        on = exp.and_(*[exp.EQ(this=exp.cast(col(here, "b"), "VARCHAR"), expression=col(k, "l"))
                        for here, k in zip(lk.match, keys, strict=False)])
        joined = exp.select(exp.Column(this=exp.Star(), table=ident("b")),
                            *[col(alias, "l") for alias in lk.columns.values()], col(hit, "l")) \
            .from_(query.subquery("b")).join(sub.subquery("l"), on=on, join_type="left")
        for there, alias in lk.columns.items():
            env[alias] = other.types[there]
        env[hit] = "BOOLEAN"
        if lk.required:
            plan.required_lookups.append((hit, lk, other.label))
        return joined

    def _outputs(self, plan: PartPlan, part: Part, env: dict[str, str], path: tuple[Any, ...]) -> None:
        tdef = TABLES[plan.table]
        specs: dict[str, ColumnSpec]
        if part.columns is None:  # canonical file: columns by name; anything else is a typo
            specs = {c: ColumnSpec(column=c) for c in tdef.column_names if c in env}
            for name in env:
                if name not in tdef.column_names and not name.startswith("__") and name not in part.derive:
                    close = difflib.get_close_matches(name, tdef.column_names, n=1)
                    self.problems.append(Problem(
                        f"{name!r} is not a column of {plan.table}"
                        + (f"; did you mean {close[0]!r}?" if close else ""),
                        file=plan.source.label, line=1, table=plan.table, column=name))
        else:
            specs = dict(part.columns)
        for c in tdef.columns:
            spec = specs.get(c.name)
            if spec is None:
                if c.required:
                    where = (f"{plan.source.label} (header)" if part.columns is None
                             else self.loaded.where(*path, "columns"))
                    self.problems.append(Problem(f"required column {c.name} of {plan.table} is not "
                                                 + ("in the file" if part.columns is None else "mapped"),
                                                 file=plan.source.label, line=1 if part.columns is None else None,
                                                 table=plan.table, column=c.name, field=where))
                plan.outputs[c.name] = exp.cast(exp.null(), exp.DataType.build(c.type, dialect="duckdb"))
                continue
            cpath = (*path, "columns", c.name)
            value, _, checks = build_value(spec, env=env, target_type=c.type, target=c.name,
                                           parse_expr=lambda t, p=cpath: self.parse(t, env, "value", p),
                                           missing_column=self._missing(plan.source, env, cpath))
            plan.outputs[c.name] = value
            plan.checks.extend(checks)

    def compile(self) -> dict[str, list[PartPlan]]:
        """Compile every table of the mapping; raise once with every mapping problem found."""
        plans: dict[str, list[PartPlan]] = {}
        for tname in TABLES:  # schema order
            tm = self.loaded.mapping.tables.get(tname)
            if tm is None:
                continue
            if tm.rows is not None:
                plans[tname] = [self._rows_part(tname, tm.rows)]
                continue
            plans[tname] = [self.compile_part(tname, i, part, (tname, *ppath))
                            for i, (part, ppath) in enumerate(tm.parts())]
        if self.problems:
            raise IngestError(f"the mapping does not fit the source files: {self.problems[0]}",
                              problems=self.problems[:50], total=len(self.problems),
                              hint="fix the column names in the mapping or in the files' header rows")
        if self.uses_as_of and self.as_of_given is None:
            raise IngestError(f"the mapping uses the as-of date ({self.uses_as_of[0]}) but none was given",
                              hint="pass --as-of YYYY-MM-DD (as_of=... from Python)")
        return plans

    def _rows_part(self, tname: str, rows: list[dict[str, Any]]) -> PartPlan:
        """Inline rows of a catalogue table, registered as a small text source."""
        import pyarrow as pa

        def text(v: Any) -> str | None:
            if v is None:
                return None
            if isinstance(v, bool):
                return "true" if v else "false"
            return v.isoformat() if isinstance(v, dt.date) else str(v)

        names = TABLES[tname].column_names
        data = {c: pa.array([text(r.get(c)) for r in rows], pa.string()) for c in names}
        data[ROW] = pa.array(range(1, len(rows) + 1), pa.int64())
        relation = f"rows_{tname}"
        self.con.register(relation, pa.table(data))
        label = f"{Path(self.loaded.file).name} (tables.{tname}.rows)"
        src = SourceData(relation, label, relation, {c: "VARCHAR" for c in names})
        plan = PartPlan(tname, 0, src, (tname, "rows"), exp.select(exp.Star()).from_(exp.Table(this=ident(relation))))
        self._outputs(plan, Part.model_validate({"from": relation, "columns": None}), dict(src.types), plan.path)
        return plan

    # ------------------------------------------------------------------ building
    def build(self, plans: dict[str, list[PartPlan]]) -> dict[str, int]:
        """Run the compiled plans into ``stage_<table>``; raise once with every unreadable row."""
        import duckdb

        problems: list[Problem] = []
        total = 0
        rows: dict[str, int] = {}
        for tname, parts in plans.items():
            try:
                total += self._build_table(tname, parts, problems)
            except duckdb.Error as exc:  # e.g. CAST('abc' AS INTEGER) in one of the mapping's expressions
                msg = str(exc).split("\n")[0]
                files = ", ".join(sorted({p.source.label for p in parts}))
                raise IngestError(f"tables.{tname}: the mapping's expressions fail on the data of {files}: {msg}",
                                  problems=[Problem(msg, file=files, table=tname, field=self.loaded.where(tname))],
                                  hint="an expression met a value it cannot handle: use TRY_CAST instead of CAST "
                                       "(failures then show as missing values with their rows), or fix the "
                                       "values in the source") from None
            rows[tname] = self.con.execute(exp.select(exp.Count(this=exp.Star())).from_(
                exp.Table(this=ident(f"stage_{tname}"))).sql(dialect="duckdb")).fetchall()[0][0]
        for src in self.sources.values():
            self.con.unregister(src.relation)
        if problems:
            raise ValidationError(f"{total:,} value(s) cannot be read; nothing was published. First: {problems[0]}",
                                  problems=problems, total=total,
                                  hint="correct the rows named above in the source files, or extend the "
                                       "mapping (a map: entry, a default:, the right format:)")
        return rows

    def _build_table(self, tname: str, parts: list[PartPlan], problems: list[Problem]) -> int:
        """Stage one table from its parts; add unreadable rows to ``problems``; return how many."""
        total = 0
        selects = []
        for plan in parts:
            self._check_lookup_keys(plan)
            prep = f"prep_{tname}_{plan.index}"
            # joins are worth computing once; a plain source is read through a view (no copy)
            self.con.execute(create_table(prep, plan.prep, self._prep_kind(plan))).fetchall()
            for found, count in unreadable_rows(self.con, plan, prep):
                problems.extend(found)
                total += count
            select = exp.select(exp.alias_(exp.Literal.string(plan.source.label), FILE, quoted=True),
                                exp.alias_(exp.Literal.number(plan.index), PART, quoted=True), col(ROW),
                                *[exp.alias_(v.copy(), name, quoted=True) for name, v in plan.outputs.items()]
                                ).from_(exp.Table(this=ident(prep)))
            if plan.where is not None:
                select = select.where(plan.where.copy())
            selects.append(select)
        union = selects[0]
        for s in selects[1:]:
            union = exp.union(union, s, distinct=False)
        self.con.execute(create_table(f"stage_{tname}", union)).fetchall()
        for plan in parts:  # the prepared rows are not needed once staged
            self.con.execute(exp.Drop(tables=[exp.Table(this=ident(f"prep_{tname}_{plan.index}"))],
                                      kind=self._prep_kind(plan)).sql(dialect="duckdb")).fetchall()
        return total

    @staticmethod
    def _prep_kind(plan: PartPlan) -> str:
        return "TABLE" if plan.lookup_subs else "VIEW"

    def _check_lookup_keys(self, plan: PartPlan) -> None:
        for sub, lk, label, keys in plan.lookup_subs:
            q = exp.select(*[col(k) for k in keys], exp.alias_(exp.Count(this=exp.Star()), "n", quoted=True),
                           exp.alias_(exp.Min(this=col(ROW)), "first", quoted=True),
                           exp.alias_(exp.Max(this=col(ROW)), "last", quoted=True)) \
                .from_(sub.subquery("s")).group_by(*[col(k) for k in keys]) \
                .having(exp.GT(this=exp.Count(this=exp.Star()), expression=exp.Literal.number(1))) \
                .order_by(exp.column("first", quoted=True))
            dups = self.con.sql(q.sql(dialect="duckdb")).fetchall()
            if dups:
                probs = [Problem(f"{', '.join(lk.match.values())} = "
                                 f"{'/'.join(map(str, d[:len(keys)]))} appears {d[-3]} "
                                 f"times (rows {d[-2]:,} and {d[-1]:,})", file=label, row=d[-2],
                                 column=", ".join(lk.match.values())) for d in dups[:CAP]]
                where = self.loaded.where(*plan.path, "lookups")
                raise IngestError(f"lookup of {lk.from_} at {where} is not unique: {probs[0]}", problems=probs,
                                  total=len(dups), hint="a lookup must find at most one row per key: add a where: "
                                                        "that keeps one (e.g. type = 'OWNER')")

def stage(con: Any, loaded: LoadedMapping, as_of: dt.date | None, tmpdir: Path, progress: bool = False,
          encodings: dict[str, str] | None = None) -> dict[str, int]:
    """Read, map and cast every table of a mapping into ``stage_<table>``; rows per table.

    ``encodings``, when given, is filled with the encoding each CSV file was read with.
    """
    stager = Stager(con, loaded, as_of, tmpdir, progress)
    rows = stager.build(stager.compile())
    if encodings is not None:
        encodings.update(stager.encodings)
    return rows
