"""Paths are safe: ids from bank data never become paths, and a mapping cannot read outside SOURCE."""

from __future__ import annotations

import pytest

from lifeloop.errors import ConfigError, ValidationError
from lifeloop.execution.channels.files import FileChannel
from lifeloop.execution.worklists import export_worklist
from lifeloop.store.paths import UnsafePathError, inside, safe_part
from tests.factories import canonical_bank, new_context, write_canonical, write_csv
from tests.refusals import state
from tests.unit.test_channels import message

ESCAPE = "../../../../outside/x"


def files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# ------------------------------------------------------------------ ids at ingest
@pytest.mark.parametrize("table, column, row", [
    ("relationship_managers", "rm_id", 0), ("branches", "branch_id", 0), ("customers", "customer_id", 1),
    ("products", "product_id", 2), ("holdings", "account_id", 3)])
def test_an_id_with_a_path_in_it_is_refused_at_ingest_with_file_row_and_column(tmp_path, table, column, row):
    bank = canonical_bank()
    bank[table][row][column] = ESCAPE
    ctx = new_context(tmp_path)
    before = state(ctx)
    with pytest.raises(ValidationError) as info:
        ctx.ingest(write_canonical(tmp_path / "src", bank))
    safe = [p for p in info.value.problems if p.rule == "safe_id" and p.table == table]
    assert safe[0].file == f"{table}.csv" and safe[0].row == row + 1 and safe[0].column == column
    assert "is not a safe id" in safe[0].message and "nothing was published" in info.value.message
    assert state(ctx) == before
    assert not (tmp_path / "outside").exists()


@pytest.mark.parametrize("bad", [".hidden", "a..b", "a\\b", "tab\there", "x" * 65, "客户1"])
def test_ids_that_could_act_as_paths_or_exceed_the_set_are_refused(tmp_path, bad):
    bank = canonical_bank()
    bank["relationship_managers"][0]["rm_id"] = bad
    bank["customers"][0]["rm_id"] = bad
    ctx = new_context(tmp_path)
    with pytest.raises(ValidationError) as info:
        ctx.ingest(write_canonical(tmp_path / "src", bank))
    assert {(p.table, p.column) for p in info.value.problems if p.rule == "safe_id"} == \
        {("relationship_managers", "rm_id"), ("customers", "rm_id")}


def test_a_widened_id_pattern_admits_chinese_ids_but_never_a_path(tmp_path):
    ctx = new_context(tmp_path)
    (ctx.workspace / "lifeloop.yaml").write_text(
        (ctx.workspace / "lifeloop.yaml").read_text(encoding="utf-8")
        + '\ningest:\n  id_pattern: "[A-Za-z0-9_.\\\\-\\u4e00-\\u9fff/]{1,64}"\n', encoding="utf-8")
    bank = canonical_bank()
    bank["relationship_managers"][0]["rm_id"] = bank["customers"][0]["rm_id"] = "客户经理1"
    assert ctx.ingest(write_canonical(tmp_path / "src", bank)).tables["relationship_managers"] == 1
    bank["relationship_managers"][0]["rm_id"] = bank["customers"][0]["rm_id"] = "RM/1"  # the pattern allows "/"
    with pytest.raises(ValidationError, match="is not a safe id"):
        ctx.ingest(write_canonical(tmp_path / "src2", bank))


# ------------------------------------------------------------------ file names from data
def test_an_rm_file_for_an_escaping_rm_id_is_written_inside_the_export_folder(tmp_path):
    folder = tmp_path / "ws" / "exports"
    ch = FileChannel("branch", folder, format="csv", recipient_role="rm")
    results = ch.send([message(1, rm_id=ESCAPE), message(2, rm_id="RM002")])
    assert all(r.ok for r in results)
    written = files_under(folder)
    assert not (tmp_path / "outside").exists() and files_under(tmp_path) == [f"ws/exports/{p}" for p in written]
    assert len(written) == 2 and all(p.startswith("branch/2026-03-02/") for p in written)
    escaping = [p for p in written if "RM002" not in p][0]
    assert escaping.split("/")[2].startswith("________outside_x-")  # one folder named after the id


def test_a_channel_name_or_format_cannot_lead_out_of_the_folder_either(tmp_path):
    ch = FileChannel("../../up", tmp_path / "exports", format="csv", recipient_role="analyst")
    ch.format = "csv/../../../../x"
    assert all(r.ok for r in ch.send([message(1)]))
    assert all(p.resolve().is_relative_to((tmp_path / "exports").resolve()) for p in ch.written)


def test_a_worklist_exported_to_a_folder_is_named_from_the_sanitised_rm_id(tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    path = export_worklist([], folder, rm_id=ESCAPE)
    assert path.parent == folder.resolve() and path.name.startswith("worklist-________outside_x-")
    assert files_under(tmp_path) == [f"exports/{path.name}"]


def test_safe_parts_keep_plain_ids_and_never_merge_two_different_ids():
    assert safe_part("RM001") == "RM001" and safe_part("网点A-1") == "网点A-1"
    assert safe_part("a/b") != safe_part("a_b") and "/" not in safe_part("a/b")
    assert not safe_part("..").startswith(".") and ".." not in safe_part("x/../y")
    assert safe_part("") == "_-e3b0c442"


def test_a_symbolic_link_out_of_the_folder_is_refused(tmp_path):
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "link").symlink_to(tmp_path)
    with pytest.raises(UnsafePathError, match="resolves outside"):
        inside(tmp_path / "exports", "link", "x.csv")


# ------------------------------------------------------------------ mapping sources
def mapping_with_source(tmp_path, file: str):
    path = tmp_path / "mapping.yaml"
    path.write_text(f"sources:\n  c: {{file: {file!r}}}\ntables:\n  customers:\n    from: c\n", encoding="utf-8")
    return path


def test_a_mapping_source_outside_the_source_folder_is_refused_with_its_line(tmp_path):
    src = write_canonical(tmp_path / "src")
    ctx = new_context(tmp_path)
    before = state(ctx)
    for escape in ("../../../../etc/passwd", "/etc/passwd", "~/anything.csv"):
        with pytest.raises(ConfigError) as info:
            ctx.ingest(src, mapping_with_source(tmp_path, escape))
        assert "outside the source folder" in info.value.message
        assert info.value.problems[0].line == 2 and info.value.problems[0].field == "sources.c.file"
    assert state(ctx) == before


def test_a_canonical_file_that_is_a_link_out_of_the_folder_is_refused(tmp_path):
    src = write_canonical(tmp_path / "src")
    write_csv(tmp_path / "elsewhere" / "x.csv", [{"a": "1"}])
    (src / "events.csv").symlink_to(tmp_path / "elsewhere" / "x.csv")
    with pytest.raises(ConfigError, match="outside the source folder"):
        new_context(tmp_path).ingest(src)


def test_a_folder_listed_in_the_settings_may_hold_sources(tmp_path):
    src = write_canonical(tmp_path / "src")
    shared = write_canonical(tmp_path / "shared")
    ctx = new_context(tmp_path)
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("sources:\n" + "".join(f"  {t}: {{file: ../shared/{t}.csv}}\n" for t in canonical_bank())
                       + "tables:\n" + "".join(f"  {t}: {{from: {t}}}\n" for t in canonical_bank()), encoding="utf-8")
    with pytest.raises(ConfigError, match="outside the source folder"):
        ctx.ingest(src, mapping)
    (ctx.workspace / "lifeloop.yaml").write_text(
        (ctx.workspace / "lifeloop.yaml").read_text(encoding="utf-8") + f"\ningest:\n  source_folders: [{shared}]\n",
        encoding="utf-8")
    ctx = type(ctx)(ctx.workspace)
    assert ctx.ingest(src, mapping).tables["customers"] == 3
