"""Mapping files: every mistake names the mapping file, the line and the field."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from lifeloop.data.mapping import load_mapping
from lifeloop.errors import ConfigError, RuleError

SOURCES = "sources:\n  client: {file: client.csv}\n"


def _load(tmp_path: Path, text: str):
    path = tmp_path / "mapping.yaml"
    path.write_text(text, encoding="utf-8")
    return load_mapping(path, tmp_path)


def _only_problem(err) -> tuple:
    assert len(err.problems) == 1, err.render()
    p = err.problems[0]
    return Path(p.file).name, p.line, p.field, p.message


def test_an_unknown_key_names_file_line_and_field_with_did_you_mean(tmp_path):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, SOURCES + "tables:\n  customers:\n    from: client\n    colums: {customer_id: id}\n")
    name, line, field, message = _only_problem(info.value)
    assert (name, line, field) == ("mapping.yaml", 6, "tables.customers.colums")
    assert message.startswith("unknown key 'colums'")


def test_an_unknown_canonical_column_is_refused_with_did_you_mean(tmp_path):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, SOURCES + "tables:\n  customers:\n    from: client\n    columns:\n"
                                  "      customer_id: id\n      birthdate: born\n")
    assert _only_problem(info.value) == ("mapping.yaml", 8, "tables.customers.columns.birthdate",
                                         "unknown column of customers 'birthdate'; did you mean 'birth_date'?")


def test_an_unknown_source_is_refused_with_did_you_mean(tmp_path):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, SOURCES + "tables:\n  customers:\n    from: clients\n")
    assert _only_problem(info.value) == ("mapping.yaml", 5, "tables.customers.from",
                                         "unknown source 'clients'; did you mean 'client'?")


def test_an_unknown_canonical_table_is_refused_with_did_you_mean(tmp_path):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, SOURCES + "tables:\n  customer:\n    from: client\n")
    assert _only_problem(info.value)[1:] == (4, "tables.customer",
                                             "unknown canonical table 'customer'; did you mean 'customers'?")


def test_a_table_takes_exactly_one_of_from_union_or_rows(tmp_path):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, SOURCES + "tables:\n  products:\n    from: client\n    rows: []\n")
    name, line, field, message = _only_problem(info.value)
    assert (line, field) == (4, "tables.products")
    assert "give exactly one of from, union or rows (got from, rows)" in message


def test_a_column_takes_exactly_one_of_column_expr_or_value(tmp_path):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, SOURCES + "tables:\n  customers:\n    from: client\n    columns:\n"
                                  "      customer_id: {column: id, value: x}\n")
    name, line, field, message = _only_problem(info.value)
    assert (line, field) == (7, "tables.customers.columns.customer_id")
    assert "give exactly one of column, expr or value (got column, value)" in message


def test_a_bad_expression_names_the_mapping_file_line_and_field(tmp_path):
    import duckdb

    from lifeloop.data.transform import stage

    (tmp_path / "client.csv").write_text("id,born,branch\n1,1970-01-02,B1\n", encoding="utf-8")
    loaded = _load(tmp_path, SOURCES + "tables:\n  customers:\n    from: client\n    columns:\n"
                                       "      customer_id: id\n      branch_id: branch\n"
                                       "      birth_date: {expr: \"(select born)\"}\n")
    with pytest.raises(RuleError) as info:
        stage(duckdb.connect(), loaded, dt.date(2024, 1, 1), tmp_path)
    assert info.value.message.startswith(f"{tmp_path / 'mapping.yaml'}:9 field tables.customers.columns.birth_date: ")
    assert "not allowed" in info.value.message


def test_an_unknown_column_in_an_expression_gets_did_you_mean(tmp_path):
    import duckdb

    from lifeloop.data.transform import stage

    (tmp_path / "client.csv").write_text("id,born,branch\n1,1970-01-02,B1\n", encoding="utf-8")
    loaded = _load(tmp_path, SOURCES + "tables:\n  customers:\n    from: client\n    columns:\n"
                                       "      customer_id: id\n      branch_id: {expr: \"upper(brnch)\"}\n")
    with pytest.raises(RuleError) as info:
        stage(duckdb.connect(), loaded, dt.date(2024, 1, 1), tmp_path)
    assert ":8 field tables.customers.columns.branch_id: unknown column 'brnch'" in info.value.message
    assert info.value.hint.startswith("did you mean 'branch'")


def test_a_mapping_without_tables_describes_a_canonical_folder(tmp_path):
    (tmp_path / "customers.csv").write_text("customer_id;branch_id\n1;B1\n", encoding="utf-8")
    loaded = _load(tmp_path, 'source: {delimiter: ";", encoding: gbk}\n')
    assert list(loaded.mapping.tables) == ["customers"]
    assert loaded.mapping.source.delimiter == ";" and loaded.mapping.source.encoding == "gbk"


def test_dropping_rows_after_the_as_of_date_applies_to_fact_tables_only(tmp_path):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, SOURCES + "tables:\n  customers:\n    from: client\n    rows_after_as_of: drop\n")
    name, line, field, message = _only_problem(info.value)
    assert (line, field) == (6, "tables.customers.rows_after_as_of")
    assert message.startswith("customers is a state table")


def test_a_file_without_header_is_named_in_the_mapping(tmp_path):
    import duckdb

    from lifeloop.data.transform import stage

    (tmp_path / "c.txt").write_text("7|B1\n8|B2\n", encoding="utf-8")
    loaded = _load(tmp_path, "sources:\n  c: {file: c.txt, delimiter: '|', header: false, columns: [id, branch]}\n"
                             "tables:\n  customers:\n    from: c\n    columns: {customer_id: id, branch_id: branch}\n")
    con = duckdb.connect()
    stage(con, loaded, None, tmp_path)
    assert con.execute("select customer_id, branch_id, __row from stage_customers order by 1").fetchall() == \
        [("7", "B1", 1), ("8", "B2", 2)]
