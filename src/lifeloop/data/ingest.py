"""Ingest one batch: read -> map -> validate -> publish atomically (docs/ingestion.md).

Nothing reaches the lake unless every check passes; the batch is then written as one snapshot
``lake/bank/as_of=D/<table>.parquet`` through :meth:`Lake.publish` (write aside, then rename), so a
failed ingest leaves the lake byte-for-byte unchanged. Files are Parquet (zstd) with rows ordered by
primary key, so the same input gives the same bytes and a repeated ingest reports ``unchanged``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlglot import exp

from lifeloop.data.mapping import LoadedMapping, canonical_mapping, load_mapping
from lifeloop.data.schema import TABLES, arrow_schema
from lifeloop.data.sensitive import refuse_authentication_values
from lifeloop.data.sql import FILE, PART, ROW, col, create_table, ident
from lifeloop.data.transform import stage
from lifeloop.data.validate import check_batch, parquet
from lifeloop.engine.adapters.base import date_literal
from lifeloop.errors import IngestError, Problem, ValidationError
from lifeloop.store.lake import BANK, file_sha256
from lifeloop.store.lake_crypto import LakeCrypto, duckdb_view

ROW_GROUP = 1_000_000
# an inferred as-of date more than this many days after the previous batch is more likely a typo in one
# row (a year 2034 for 2024) than a real gap; a monthly extract stays within it
MAX_GAP_DAYS = 31
SHOWN_ROWS = 5   # rows named in the message when an inferred as-of is refused


@dataclass
class IngestReport:
    """What one ingest published."""

    as_of: dt.date
    run_id: str
    source: str
    tables: dict[str, int]        # rows published per canonical table, in schema order
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    unchanged: bool = False       # same bytes as the already published batch
    encodings: dict[str, str] = field(default_factory=dict)   # CSV file -> the encoding it was read with
    # customers matching a purged person's keyed hashes -> the identifiers that matched; kept out of marketing
    suppressed: dict[str, list[str]] = field(default_factory=dict)


def ingest(ctx: Any, source: Path, mapping: Path | None = None, as_of: dt.date | None = None,
           progress: bool = False, *, today: dt.date | None = None) -> IngestReport:
    """Read a bank's extracts, map them onto the canonical tables, check them, publish one batch.

    Without ``as_of`` the batch's date is inferred from its data and must be plausible: not after
    ``today`` (default: the real date) and not more than ``MAX_GAP_DAYS`` after the previous batch.
    """
    import duckdb


    started = time.perf_counter()
    source = Path(source)
    if not source.exists():
        raise IngestError(f"{source}: not found", hint="point SOURCE at the folder holding the extract files")
    folder = source if source.is_dir() else source.parent
    guards = ctx.config.ingest
    roots = tuple(ctx.workspace / f for f in guards.source_folders)
    loaded = load_mapping(Path(mapping), folder, roots) if mapping else canonical_mapping(source)
    lake = ctx.lake
    warnings: list[str] = []
    encodings: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="lifeloop-ingest-") as tmp:
        con = duckdb.connect(":memory:")
        try:
            rows = stage(con, loaded, as_of, Path(tmp), progress, encodings)
            refuse_authentication_values(con, rows)  # track data anywhere, card numbers in free text (C3)
            if as_of is None:
                as_of = default_as_of(con, rows)
                check_inferred_as_of(con, rows, as_of, lake.dates(BANK), today or dt.date.today())
            drop_rows_after(con, loaded, rows, as_of, warnings)
            keep_latest(con, loaded, rows)
            published, others = published_files(lake, as_of)
            require_tables(rows, published)
            failed = check_batch(con, list(rows), as_of, published, others, id_pattern=guards.id_pattern,
                                 reader=lambda files: lake_relation(con, lake, files))
            if failed:
                problems = [p for r in failed for p in r.problems]
                total = sum(r.total for r in failed)
                rules = ", ".join(sorted({f"{p.table}.{r.rule}" for r in failed for p in r.problems[:1]}))
                raise ValidationError(f"{total:,} row(s) failed checks ({rules}); nothing was published. "
                                      f"First: {problems[0]}", problems=problems, total=total,
                                      hint=failed[0].hint)
            out = Path(tmp) / "out"
            out.mkdir()
            content = {f"{name}.parquet": write_table(con, name, out / f"{name}.parquet", lake.crypto)
                       for name in rows}
        finally:
            con.close()
        files = {p.name: file_sha256(p) for p in sorted(out.iterdir())}
        old = lake.manifest(BANK, as_of) if lake.exists(BANK, as_of) else None
        # encrypted files differ on every write: an unchanged batch is one with the same plaintext content
        # (and the same encryption), else the same bytes (a batch published before content hashes existed)
        same = old is not None and (old.get("content") == content and old.get("encrypted") == encrypted(lake)
                                    if "content" in old else old.get("files") == files)
        if old is not None and same:
            return IngestReport(as_of, old["run_id"], str(source), dict(rows), warnings,
                                round(time.perf_counter() - started, 3), unchanged=True, encodings=encodings)
        manifest = {"kind": "ingest", "source": source.name, "rows": dict(rows),
                    "mapping": Path(mapping).name if mapping else None,
                    "mapping_sha256": file_sha256(Path(mapping)) if mapping else None, "warnings": warnings,
                    "content": content, "encrypted": encrypted(lake)}

        def write(staging: Path) -> None:
            for name in files:
                shutil.copyfile(out / name, staging / name)

        body = lake.publish(BANK, as_of, write, manifest)
    return IngestReport(as_of, body["run_id"], str(source), dict(rows), warnings,
                        round(time.perf_counter() - started, 3), encodings=encodings)


def _count(con: Any, query: exp.Select) -> int:
    return con.execute(query.sql(dialect="duckdb")).fetchall()[0][0]


def _stage(name: str) -> exp.Table:
    return exp.Table(this=ident(f"stage_{name}"))


def default_as_of(con: Any, rows: dict[str, int]) -> dt.date:
    """The latest date in the batch's fact tables (the batch's natural as-of date)."""
    dates = []
    for name in rows:
        t = TABLES[name]
        if t.kind == "fact" and t.date_column:
            d = con.execute(exp.select(exp.Max(this=col(t.date_column))).from_(_stage(name))
                            .sql(dialect="duckdb")).fetchall()[0][0]
            if d is not None:
                dates.append(d)
    if not dates:
        raise IngestError("cannot tell the batch's as-of date: it has no dated fact rows",
                          hint="pass --as-of YYYY-MM-DD")
    return max(dates)


def check_inferred_as_of(con: Any, rows: dict[str, int], as_of: dt.date, published: list[dt.date],
                         today: dt.date) -> None:
    """Refuse an inferred as-of date after ``today`` or far after the previous batch, naming the rows behind it."""
    previous = max((d for d in published if d < as_of), default=None)
    if as_of > today:
        limit, why = today, f"after today ({today})"
    elif previous is not None and (as_of - previous).days > MAX_GAP_DAYS:
        limit = previous + dt.timedelta(days=MAX_GAP_DAYS)
        why = f"{(as_of - previous).days} days after the previous batch ({previous}; at most {MAX_GAP_DAYS} expected)"
    else:
        return
    found: list[tuple[Any, Problem]] = []
    total = 0
    for name in rows:
        t = TABLES[name]
        if t.kind != "fact" or not t.date_column:
            continue
        later = exp.GT(this=col(t.date_column), expression=date_literal(limit))
        total += _count(con, exp.select(exp.Count(this=exp.Star())).from_(_stage(name)).where(later))
        q = exp.select(col(FILE), col(ROW), col(t.date_column)).from_(_stage(name)).where(later) \
            .order_by(exp.Ordered(this=col(t.date_column), desc=True), col(FILE), col(ROW)).limit(SHOWN_ROWS)
        found += [(value, Problem(f"{value} is after {limit}", file=f, table=name, row=r, column=t.date_column))
                  for f, r, value in con.execute(q.sql(dialect="duckdb")).fetchall()]
    problems = [p for _, p in sorted(found, key=lambda x: x[0], reverse=True)[:SHOWN_ROWS]]  # latest first
    raise IngestError(f"the batch's as-of date would be {as_of}, inferred from its latest dated row, which is {why}; "
                      f"nothing was published. {total:,} row(s) are dated after {limit}",
                      problems=problems, total=total,
                      hint=f"correct the dates of the rows above (a typo in the year?), or pass --as-of DATE "
                           f"if {as_of} is really meant (--as-of {as_of})")


def drop_rows_after(con: Any, loaded: LoadedMapping, rows: dict[str, int], as_of: dt.date,
                    warnings: list[str]) -> None:
    """Leave out fact rows dated after the as-of date where the mapping says so (time-cut extracts)."""
    for name in list(rows):
        tm = loaded.mapping.tables.get(name)
        t = TABLES[name]
        if tm is None or tm.rows_after_as_of != "drop" or not t.date_column:
            continue
        later = exp.GT(this=col(t.date_column), expression=date_literal(as_of))
        n = _count(con, exp.select(exp.Count(this=exp.Star())).from_(_stage(name)).where(later))
        if n:
            con.execute(exp.Delete(this=_stage(name), where=exp.Where(this=later)).sql(dialect="duckdb")).fetchall()
            rows[name] -= n
            warnings.append(f"{name}: {n:,} row(s) dated after {as_of} were left out (rows_after_as_of: drop)")


def keep_latest(con: Any, loaded: LoadedMapping, rows: dict[str, int]) -> None:
    """Keep the last row per key where the mapping asks for it (ties: the later part, the later row)."""
    for name in list(rows):
        tm = loaded.mapping.tables.get(name)
        if tm is None or tm.latest is None:
            continue
        order = [exp.Ordered(this=col(c), desc=True, nulls_first=False) for c in tm.latest.order_by]
        order += [exp.Ordered(this=col(PART), desc=True), exp.Ordered(this=col(ROW), desc=True)]
        rank = exp.Window(this=exp.RowNumber(), partition_by=[col(k) for k in tm.latest.key],
                          order=exp.Order(expressions=order))
        q = exp.select(exp.Star()).from_(_stage(name)).qualify(exp.EQ(this=rank, expression=exp.Literal.number(1)))
        con.execute(create_table(f"stage_{name}", q)).fetchall()  # replaces the table it reads from
        rows[name] = _count(con, exp.select(exp.Count(this=exp.Star())).from_(_stage(name)))


def require_tables(rows: dict[str, int], published: dict[str, list[Path]]) -> None:
    """The first batch must hold every table a bank always has (later batches may hold only some).

    ``published``: what earlier batches serve (:func:`published_files`)."""
    missing = [name for name, t in TABLES.items() if t.required_in_ingest and name not in rows
               and name not in published]
    if missing:
        raise ValidationError(f"the batch lacks the table(s) {', '.join(missing)}, and no earlier batch has them",
                              problems=[Problem("table missing", table=m, rule="required_table") for m in missing],
                              hint="add them to the mapping (or the folder); a bank without, e.g., relationship "
                                   "managers maps an empty table with rows: []")


def published_files(lake: Any, as_of: dt.date) -> tuple[dict[str, list[Path]], dict[str, list[Path]]]:
    """What the lake serves as of the date without this batch, and every other batch's fact files."""

    dates = lake.dates(BANK)
    # the lake's own view of the day before: state tables' newest batch, fact tables' every batch
    published = lake.bank_files(as_of - dt.timedelta(days=1))
    others: dict[str, list[Path]] = {}
    for name, t in TABLES.items():
        if t.kind == "fact":
            other = [lake.snapshot_dir(BANK, d) / f"{name}.parquet" for d in dates if d != as_of]
            others[name] = [f for f in other if f.exists()]
    return published, others


def encrypted(lake: Any) -> bool:
    """Whether the lake writes bank batches with their C2 columns encrypted."""
    return bool(lake.crypto is not None and lake.crypto.encrypt)


def lake_relation(con: Any, lake: Any, files: list[Path]) -> exp.Expression:
    """A relation over published lake files for the batch checks, decrypting C2 columns where they are read."""
    name = "published_" + hashlib.sha256("|".join(map(str, files)).encode()).hexdigest()[:12]
    sql = duckdb_view(con, f"_{name}", files, lake.crypto, lambda fs, rn: parquet(fs, rn).sql(dialect="duckdb"))
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")
    return exp.Table(this=ident(name))


def write_table(con: Any, name: str, path: Path, crypto: LakeCrypto | None = None) -> str:
    """Write a staged table as Parquet: canonical schema, zstd, rows ordered by primary key, C2 encrypted.

    Returns the sha256 of the plaintext content (the same rows give the same hash, encrypted or not)."""
    t = TABLES[name]
    q = exp.select(*[col(c) for c in t.column_names]).from_(_stage(name)) \
        .order_by(*[col(k) for k in t.primary_key], col(FILE), col(ROW))
    schema = arrow_schema(name)
    # streamed in fixed-size batches (one row group each): large tables are never held whole, and
    # the same rows always give the same row groups, hence the same bytes
    reader = con.sql(q.sql(dialect="duckdb")).to_arrow_reader(ROW_GROUP)
    writer = crypto if crypto is not None else LakeCrypto(_no_keys, encrypt=False)
    return writer.write(path, schema, (batch.cast(schema) for batch in reader), name, compression="zstd")


def _no_keys() -> Any:
    raise IngestError("no keys to encrypt with", hint="open the workspace through lifeloop.context.Context")
