"""Read a bank's extract files into Arrow: CSV (any delimiter, quoting, encoding, gzip) and Parquet.

CSV values are read as text, never guessed: ``0123`` stays ``0123`` and a date that does not parse
is reported later by the mapping with its row and column instead of failing inside a reader. Text
that is not valid in the declared encoding fails here with the file, the line and the byte, and a
guess at the real encoding ("this file looks like GBK: set encoding: gbk").

Encoding ``auto`` (the default for a folder of canonical extracts) decides per file: UTF-8 when the
file is valid UTF-8, else GB18030 (the superset of GBK and GB2312 that Chinese banks' exports use)
when the file looks like Chinese text in it and decodes in full; anything else keeps the precise UTF-8
error. The table returned carries the encoding it was read with (:func:`encoding_of`).

Row numbers: a value's row is its 1-based *data* row in the file (the header is not counted), which
is also the Arrow row index + 1 of the table returned.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING

from lifeloop.errors import IngestError, Problem, did_you_mean

if TYPE_CHECKING:
    import pyarrow as pa

_CHUNK = 1 << 22  # 4 MiB: big enough to be fast, small enough for a smooth progress bar
# encodings tried, in order, to say what a file that is not valid UTF-8 probably is
_GUESSES = (("gbk", "GBK"), ("big5", "Big5"), ("shift_jis", "Shift-JIS"), ("cp1250", "cp1250 (Central European)"),
            ("latin-1", "latin-1"))


AUTO = "auto"
FALLBACK = "gb18030"   # GB18030 decodes every GBK and GB2312 file, and more
_ENCODING_KEY = b"lifeloop.encoding"


class _DecodeError(IngestError):
    """Text that is not valid in the encoding it was read with (a private marker for ``auto``)."""


@dataclass(frozen=True)
class CsvFormat:
    """How a CSV file is written (the mapping's ``source:`` block)."""

    encoding: str = "utf-8"
    delimiter: str = ","
    quote: str | None = '"'
    header: bool = True
    null_values: tuple[str, ...] = ("",)
    trim: bool = True
    columns: tuple[str, ...] | None = None  # column names when the file has no header row


def header_problems(name: str, header: list[str], columns: tuple[str, ...] | list[str],
                    required: tuple[str, ...] | list[str]) -> list[Problem]:
    """A CSV import's header checked: unknown columns (with did-you-mean) and missing required ones (line 1)."""
    problems = [Problem(f"unknown column {c!r}" + did_you_mean(c, columns), file=name, line=1, column=c)
                for c in header if c not in columns]
    return problems + [Problem(f"required column {c!r} is missing", file=name, line=1, column=c)
                       for c in required if c not in header]


def is_parquet(path: Path) -> bool:
    """A Parquet file, judged by its name."""
    return path.name.lower().endswith((".parquet", ".pq"))


def read_source(path: Path, fmt: CsvFormat, *, tmpdir: Path, progress: bool = False) -> pa.Table:
    """Read one extract file (CSV, CSV.gz or Parquet) into an Arrow table."""
    if not path.is_file():
        raise IngestError(f"{path}: file not found", problems=[Problem("file not found", file=str(path))],
                          hint="check the path in the mapping's sources, relative to the SOURCE folder")
    if is_parquet(path):
        return read_parquet(path)
    return read_csv(path, fmt, tmpdir=tmpdir, progress=progress)


def read_parquet(path: Path) -> pa.Table:
    """Read a Parquet file; a damaged file is an IngestError naming it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise IngestError(f"{path.name}: cannot read Parquet: {exc}", problems=[Problem(str(exc), file=path.name)],
                          hint="export the file again; it is damaged or not Parquet") from None


# how a user sets a file's encoding, for the hint of a decode error: the mapping's source block by default;
# a command with its own option (evaluate --from-file) names that instead
IN_MAPPING = "set encoding: {} for it in the mapping's source block"


def read_csv(path: Path, fmt: CsvFormat, *, tmpdir: Path, progress: bool = False,
             set_encoding: str = IN_MAPPING) -> pa.Table:
    """Read a CSV (optionally gzip) as text columns; trim and turn null markers into NULL.

    ``set_encoding`` tells the user how to name another encoding (a template with ``{}`` for it).
    With ``encoding: auto``, UTF-8 is tried first and GB18030 second (module docstring).
    """
    if fmt.encoding.lower() != AUTO:
        return _read_csv(path, fmt, tmpdir, progress, set_encoding)
    try:
        return _read_csv(path, replace(fmt, encoding="utf-8"), tmpdir, progress, set_encoding)
    except _DecodeError as not_utf8:
        guess = _guess_encoding(path, "utf-8")
        if guess is None or guess[0] != "gbk":
            raise
        try:
            return _read_csv(path, replace(fmt, encoding=FALLBACK), tmpdir, progress, set_encoding)
        except _DecodeError:
            raise not_utf8 from None


def encoding_of(table: pa.Table) -> str | None:
    """The encoding a CSV table was read with (None for Parquet)."""
    value = (table.schema.metadata or {}).get(_ENCODING_KEY)
    return value.decode() if value else None


def _read_csv(path: Path, fmt: CsvFormat, tmpdir: Path, progress: bool, set_encoding: str) -> pa.Table:
    import pyarrow as pa

    encoding = _encoding_name(path, fmt.encoding)
    if encoding != "utf-8":
        path_utf8 = _transcode(path, encoding, tmpdir, progress, set_encoding)
    else:
        path_utf8 = path
    invalid: list[str] = []
    try:
        names = _column_names(path_utf8, path, fmt, set_encoding)
        table = _read_utf8(path_utf8, names, fmt, invalid, progress and encoding == "utf-8", path.name)
        if invalid:  # read again on one thread: only then does Arrow know the rows' numbers
            invalid.clear()
            _read_utf8(path_utf8, names, fmt, invalid, False, path.name, threads=False)
    except (OSError, EOFError) as exc:  # a damaged or truncated gzip file, an unreadable disk
        raise IngestError(f"{path.name}: cannot read the file: {exc}", problems=[Problem(str(exc), file=path.name)],
                          hint="copy or export the file again; it looks damaged or truncated") from None
    except pa.ArrowInvalid as exc:
        if "UTF8" in str(exc) or "utf8" in str(exc).lower():
            raise _decode_error(path, encoding, set_encoding) from None
        raise IngestError(f"{path.name}: cannot parse CSV: {exc}", problems=[Problem(str(exc), file=path.name)],
                          hint="check the delimiter and quote settings in the mapping's source block") from None
    if invalid:
        raise IngestError(
            f"{path.name}: {len(invalid):,} row(s) do not have the {len(names)} fields of the header",
            problems=[Problem(text, file=path.name) for text in invalid[:20]], total=len(invalid),
            hint=f"check the delimiter ({fmt.delimiter!r}) and quoting ({fmt.quote!r}); a value holding the "
                 "delimiter must be quoted")
    return table.replace_schema_metadata({**(table.schema.metadata or {}), _ENCODING_KEY: encoding.encode()})


def _encoding_name(path: Path, encoding: str) -> str:
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise IngestError(f"{path.name}: unknown encoding {encoding!r}",
                          hint="use a Python codec name such as utf-8, gbk, gb18030, big5, latin-1, or auto "
                               "(UTF-8, else GB18030)") from None
    return "utf-8" if name in ("utf-8", "utf-8-sig") else name


@contextmanager
def _open_bytes(path: Path) -> Iterator[IO[bytes]]:
    """The file's bytes, decompressed when it is gzip (by name or by its magic number)."""
    with open(path, "rb") as raw:
        magic = raw.read(2)
        raw.seek(0)
        if path.name.lower().endswith(".gz") or magic == b"\x1f\x8b":
            with gzip.open(raw) as gz:
                yield gz
        else:
            yield raw


def _progress(enabled: bool, label: str, total: int) -> tuple[Callable[[int], None], Callable[[], None]]:
    """(advance-to, close) for a rich progress bar, or no-ops when progress is off."""
    if not enabled:
        return (lambda _pos: None), (lambda: None)
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                   transient=True)
    task = bar.add_task(label, total=total)
    bar.start()
    return (lambda pos: bar.update(task, completed=pos)), bar.stop


def _transcode(path: Path, encoding: str, tmpdir: Path, progress: bool, set_encoding: str = IN_MAPPING) -> Path:
    """Stream-decode a file in ``encoding`` into a UTF-8 copy; a bad byte fails with its location."""
    out = tmpdir / (path.name + ".utf8.csv")
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    raw_size = path.stat().st_size
    advance, close = _progress(progress, f"reading {path.name} ({encoding})", raw_size)
    try:
        with open(path, "rb") as raw_probe:
            is_gz = path.name.lower().endswith(".gz") or raw_probe.read(2) == b"\x1f\x8b"
        with open(path, "rb") as raw, open(out, "w", encoding="utf-8", newline="") as dst:
            src: IO[bytes] = gzip.open(raw) if is_gz else raw
            while chunk := src.read(_CHUNK):
                try:
                    dst.write(decoder.decode(chunk))
                except UnicodeDecodeError:
                    raise _decode_error(path, encoding, set_encoding) from None
                advance(raw.tell())
            try:
                dst.write(decoder.decode(b"", final=True))
            except UnicodeDecodeError:
                raise _decode_error(path, encoding, set_encoding) from None
    finally:
        close()
    return out


def _column_names(path_utf8: Path, original: Path, fmt: CsvFormat, set_encoding: str = IN_MAPPING) -> list[str]:
    """Column names from the header row (or the mapping's ``columns``), checked for repeats."""
    with _open_bytes(path_utf8) as f:
        first = f.readline()
    if first.startswith(codecs.BOM_UTF8):
        first = first[len(codecs.BOM_UTF8):]
    try:
        line = first.decode("utf-8")
    except UnicodeDecodeError:
        raise _decode_error(original, "utf-8", set_encoding) from None
    fields = next(csv.reader(io.StringIO(line), delimiter=fmt.delimiter, quotechar=fmt.quote or "\x00",
                             quoting=csv.QUOTE_MINIMAL if fmt.quote else csv.QUOTE_NONE), [])
    if not fmt.header:
        if fmt.columns:
            if len(fmt.columns) != len(fields):
                raise IngestError(
                    f"{original.name}: the mapping names {len(fmt.columns)} columns but row 1 has {len(fields)} fields",
                    problems=[Problem("column count differs", file=original.name, row=1)],
                    hint="list one name per field in the source's columns:")
            return list(fmt.columns)
        return [f"column{i + 1}" for i in range(len(fields))]
    names = [n.strip() for n in fields]
    if not names or names == [""]:
        raise IngestError(f"{original.name}: the file is empty (no header row)",
                          problems=[Problem("no header row", file=original.name, line=1)],
                          hint="export the file again with a header row, or set header: false and columns:")
    seen: set[str] = set()
    for n in names:
        key = n.lower()  # DuckDB names are case-insensitive
        if key in seen or not n:
            what = "an empty column name" if not n else f"the column name {n!r} twice"
            raise IngestError(f"{original.name}: the header has {what}",
                              problems=[Problem(f"header has {what}", file=original.name, line=1, column=n or None)],
                              hint="give every column a distinct name in the header row")
        seen.add(key)
    return names


def _read_utf8(path: Path, names: list[str], fmt: CsvFormat, invalid: list[str], progress: bool,
               label: str, threads: bool = True) -> pa.Table:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    def on_invalid(row) -> str:
        where = f"row {row.number - (1 if fmt.header else 0):,}: " if row.number else ""
        invalid.append(f"{where}{row.actual_columns} fields instead of {row.expected_columns}: {row.text[:120]!r}")
        return "skip"

    read = pacsv.ReadOptions(column_names=names, skip_rows=1 if fmt.header else 0, block_size=_CHUNK * 4,
                             use_threads=threads)
    parse = pacsv.ParseOptions(delimiter=fmt.delimiter, quote_char=fmt.quote or False, double_quote=True,
                               newlines_in_values=True, ignore_empty_lines=True, invalid_row_handler=on_invalid)
    convert = pacsv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=False,
                                   quoted_strings_can_be_null=False, check_utf8=True)
    size = path.stat().st_size
    advance, close = _progress(progress, f"reading {label}", size)
    try:
        with open(path, "rb") as raw:
            is_gz = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            stream = pa.PythonFile(raw, mode="r")
            if is_gz:
                stream = pa.CompressedInputStream(stream, "gzip")
            reader = pacsv.open_csv(stream, read_options=read, parse_options=parse, convert_options=convert)
            # clean batch by batch, so a large file is held once (cleaned), not twice
            batches = [_clean(pa.Table.from_batches([batch]), fmt) for batch in _advancing(reader, raw, advance)]
            if not batches:
                return _clean(pa.Table.from_batches([], schema=reader.schema), fmt)
            return pa.concat_tables(batches)
    finally:
        close()


def _advancing(reader, raw, advance) -> Iterator:
    for batch in reader:
        yield batch
        advance(raw.tell())


def _clean(table: pa.Table, fmt: CsvFormat) -> pa.Table:
    """Trim spaces and turn the source's null markers (e.g. "" and "?") into NULL."""
    import pyarrow as pa
    import pyarrow.compute as pc

    nulls = pa.array(list(fmt.null_values), pa.string())
    columns = []
    for col in table.columns:
        if fmt.trim:
            col = pc.utf8_trim_whitespace(col)
        if len(nulls):
            col = pc.if_else(pc.is_in(col, value_set=nulls), pa.scalar(None, pa.string()), col)
        columns.append(col)
    return pa.table(columns, names=table.column_names)


def _decode_error(path: Path, encoding: str, set_encoding: str = IN_MAPPING) -> _DecodeError:
    """Find the first byte that is not valid ``encoding`` and say where it is and what to do."""
    line_no, offset, start, bad = 0, 0, 0, b""
    with _open_bytes(path) as f:
        for line_no, line in enumerate(f, start=1):  # noqa: B007 -- read after the loop
            try:
                line.decode(encoding)
            except UnicodeDecodeError as exc:
                bad, start = line, exc.start
                offset += exc.start
                break
            offset += len(line)
    guess = _guess_encoding(path, encoding)
    hint = (f"this file looks like {guess[1]}: {set_encoding.format(guess[0])}"
            if guess else set_encoding.format("ENCODING") + ", with the file's real encoding")
    row = line_no - 1 if line_no > 1 else None
    snippet = bad[max(0, start - 8):][:24] if bad else b""
    msg = f"not valid {encoding} text at line {line_no:,}, byte {offset:,}"
    return _DecodeError(f"{path.name}: {msg}" + (f" ({snippet!r})" if snippet else ""),
                        problems=[Problem(msg, file=path.name, line=line_no, row=row)], hint=hint)


def _guess_encoding(path: Path, declared: str) -> tuple[str, str] | None:
    with _open_bytes(path) as f:
        sample = f.read(1 << 20)
    # cut at the last newline so a multi-byte character is not split
    if b"\n" in sample:
        sample = sample[: sample.rfind(b"\n") + 1]
    for codec, label in _GUESSES:
        if codecs.lookup(codec).name == codecs.lookup(declared).name:
            continue
        try:
            text = sample.decode(codec)
        except UnicodeDecodeError:
            continue
        if codec in ("gbk", "big5", "shift_jis") and not any("\u4e00" <= ch <= "\u9fff" for ch in text):
            continue
        return codec, label
    return None

