"""A deliberately broken copy of Berka fails with a precise message and leaves the lake untouched."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from lifeloop.errors import IngestError, ValidationError
from tests.factories import BERKA, lake_fingerprint, needs_berka, new_context
from tests.factories import BERKA_AS_OF as AS_OF
from tests.factories import BERKA_MAPPING as MAPPING

pytestmark = needs_berka


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A workspace holding a good Berka batch: every broken ingest below must leave it as it is."""
    ctx = new_context(tmp_path_factory.mktemp("lake"))
    ctx.ingest(BERKA, MAPPING, AS_OF)
    return ctx


def broken_copy(tmp_path: Path, name: str, mutate: Callable[[str], str], encoding: str = "utf-8") -> Path:
    """Copy the Berka files and rewrite one of them with ``mutate`` (text in, text out)."""
    folder = tmp_path / "berka"
    shutil.copytree(BERKA, folder)
    path = folder / name
    path.chmod(0o644)
    if name.endswith(".gz"):
        text = gzip.decompress(path.read_bytes()).decode("utf-8")
        path.write_bytes(gzip.compress(mutate(text).encode(encoding), mtime=0))
    else:
        path.write_bytes(mutate(path.read_text(encoding="utf-8")).encode(encoding))
    return folder


def fails(ctx, folder: Path, error: type[Exception]):
    before = lake_fingerprint(ctx)
    with pytest.raises(error) as info:
        ctx.ingest(folder, MAPPING, AS_OF)
    assert lake_fingerprint(ctx) == before, "a failed ingest must leave the lake byte-for-byte unchanged"
    return info.value


def _replace_line(text: str, index: int, new: str) -> str:
    lines = text.split("\n")
    lines[index] = new
    return "\n".join(lines)


def test_a_missing_column_is_named_with_its_file_and_where_the_mapping_uses_it(published, tmp_path):
    def drop_date(text: str) -> str:  # account.asc without its "date" column (the 4th field)
        return "\n".join(";".join(line.split(";")[:3]) if line else line for line in text.split("\n"))

    err = fails(published, broken_copy(tmp_path, "account.asc", drop_date), IngestError)
    assert [(p.file, p.line, p.column, p.field) for p in err.problems] == [
        ("account.asc", 1, "date", "tables.customers.lookups[1]"),
        ("account.asc", 1, "date", "tables.holdings.union[0].lookups[1]")]
    assert err.problems[0].message == "account.asc has no column 'date' (needed by mapping.yaml:51)"
    assert err.render().endswith("What to do: fix the column names in the mapping or in the files' header rows")


def test_an_unparsable_date_is_reported_with_file_row_and_column(published, tmp_path):
    # data row 10 of trans.asc.gz (line 11 of the file) gets the date 941399
    def bad_date(text: str) -> str:
        fields = text.split("\n")[10].split(";")
        fields[2] = "941399"
        return _replace_line(text, 10, ";".join(fields))

    err = fails(published, broken_copy(tmp_path, "trans.asc.gz", bad_date), ValidationError)
    p = next(p for p in err.problems if "txn_date" in p.message)
    assert (p.file, p.row, p.column, p.table) == ("trans.asc.gz", 10, "date", "transactions")
    assert p.message == "cannot read '941399' as a date with format %y%m%d (for txn_date)"
    assert "nothing was published" in err.message


def test_an_orphan_transaction_of_an_account_without_owner_is_reported(published, tmp_path):
    def orphan(text: str) -> str:  # a transaction on account 99999, which nobody owns
        body = text.rstrip("\r\n")
        return body + '\r\n999999999;99999;940101;"PRIJEM";"VKLAD";100.00;100.00;"";;\r\n'

    err = fails(published, broken_copy(tmp_path, "trans.asc.gz", orphan), ValidationError)
    p = next(p for p in err.problems if p.table == "transactions")
    assert (p.file, p.row, p.column, p.rule) == ("trans.asc.gz", 100_000, "account_id", "orphan")
    assert p.message == "orphan: no row in disp.asc (type = 'OWNER') with account_id = 99999"


def test_a_duplicate_key_names_both_rows(published, tmp_path):
    def duplicate(text: str) -> str:  # client 5 appears a second time at the end (data row 5,370)
        line5 = text.split("\n")[5]
        return text.rstrip("\r\n") + "\r\n" + line5.rstrip("\r") + "\r\n"

    err = fails(published, broken_copy(tmp_path, "client.asc", duplicate), ValidationError)
    p = next(p for p in err.problems if p.rule == "unique")
    assert (p.file, p.table, p.row, p.column) == ("client.asc", "customers", 5_370, "customer_id")
    assert p.message == "duplicate key customer_id=5 (first seen at client.asc row 5)"
    assert "customers.unique" in err.message


def test_a_gbk_file_read_as_utf8_names_line_byte_and_the_likely_encoding(published, tmp_path):
    # district 3's name in Chinese, saved as GBK: line 4 of district.asc
    def chinese(text: str) -> str:
        return text.replace('"Beroun"', '"贝龙"')

    folder = broken_copy(tmp_path, "district.asc", chinese, encoding="gbk")
    err = fails(published, folder, IngestError)
    p = err.problems[0]
    assert (p.file, p.line, p.row) == ("district.asc", 4, 3)
    raw = (folder / "district.asc").read_bytes()
    assert f"byte {raw.index('贝'.encode('gbk')):,}" in p.message
    assert "not valid utf-8 text at line 4" in err.message
    assert err.hint.startswith("this file looks like GBK: set encoding: gbk")
