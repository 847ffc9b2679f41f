"""Reading source files: delimiters, quoting, headers, null markers, gzip, encodings, ragged rows."""

from __future__ import annotations

import gzip

import pytest

from lifeloop.data.readers import CsvFormat, read_source
from lifeloop.errors import IngestError


def read(tmp_path, name: str, data: bytes, **fmt):
    path = tmp_path / name
    path.write_bytes(data)
    return read_source(path, CsvFormat(**fmt), tmpdir=tmp_path).to_pylist()


def test_values_stay_text_quoted_delimiters_survive_and_null_markers_become_null(tmp_path):
    data = b'id;name;score\n007;"Smith; J.";?\n8; padded ;""\n'
    assert read(tmp_path, "a.csv", data, delimiter=";", null_values=("", "?")) == [
        {"id": "007", "name": "Smith; J.", "score": None},
        {"id": "8", "name": "padded", "score": None}]


def test_gzip_files_and_utf8_byte_order_marks_are_read(tmp_path):
    data = gzip.compress("\ufeffid,name\n1,王芳\n".encode("utf-8"))
    assert read(tmp_path, "a.csv.gz", data) == [{"id": "1", "name": "王芳"}]


def test_a_file_without_header_takes_the_mapping_column_names(tmp_path):
    assert read(tmp_path, "a.csv", b"1,x\n2,y\n", header=False, columns=("id", "code")) == [
        {"id": "1", "code": "x"}, {"id": "2", "code": "y"}]
    assert read(tmp_path, "b.csv", b"1,x\n", header=False) == [{"column1": "1", "column2": "x"}]


def test_a_gbk_file_is_decoded_when_declared(tmp_path):
    assert read(tmp_path, "a.csv", "id;城市\n1;上海\n".encode("gbk"), delimiter=";", encoding="gbk") == \
        [{"id": "1", "城市": "上海"}]


def test_a_byte_that_is_not_valid_in_the_declared_encoding_is_located(tmp_path):
    data = "id,name\n1,ok\n2,李四\n".encode("gbk")
    with pytest.raises(IngestError) as info:
        read(tmp_path, "people.csv", data)
    p = info.value.problems[0]
    assert (p.file, p.line, p.row) == ("people.csv", 3, 2)
    assert p.message == f"not valid utf-8 text at line 3, byte {data.index('李'.encode('gbk'))}"
    assert info.value.hint.startswith("this file looks like GBK: set encoding: gbk")


def test_rows_with_the_wrong_number_of_fields_are_listed_with_their_rows(tmp_path):
    with pytest.raises(IngestError) as info:
        read(tmp_path, "a.csv", b"id,name\n1,a\n2,b,c\n3\n")
    assert [p.message for p in info.value.problems] == [
        "row 2: 3 fields instead of 2: '2,b,c'", "row 3: 1 fields instead of 2: '3'"]
    assert "delimiter" in info.value.hint


def test_a_header_naming_a_column_twice_is_refused(tmp_path):
    with pytest.raises(IngestError) as info:
        read(tmp_path, "a.csv", b"id,ID\n1,2\n")
    assert "the header has the column name 'ID' twice" in info.value.message


def test_parquet_files_keep_their_types(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": [1, 2]}), tmp_path / "a.parquet")
    assert read_source(tmp_path / "a.parquet", CsvFormat(), tmpdir=tmp_path).column("id").to_pylist() == [1, 2]


def test_a_truncated_gzip_file_is_refused_with_its_name(tmp_path):
    data = gzip.compress(b"id,name\n" + b"1,abc\n" * 20_000)
    with pytest.raises(IngestError) as info:
        read(tmp_path, "big.csv.gz", data[: len(data) // 2])
    assert info.value.message.startswith("big.csv.gz: ")
    assert "again" in info.value.hint
