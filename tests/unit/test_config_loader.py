"""Config files load into strict models; every error names the file, the line and the field."""

import pytest

from lifeloop.config.loader import load_model, load_yaml
from lifeloop.config.workspace import WorkspaceConfig
from lifeloop.errors import ConfigError


def write(tmp_path, text):
    path = tmp_path / "lifeloop.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_valid_workspace_file_loads_with_defaults(tmp_path):
    config, _ = load_model(WorkspaceConfig, write(tmp_path, "engine: spark\nbank:\n  name: 招商测试银行\n"))
    assert config.engine == "spark" and config.bank.name == "招商测试银行"
    assert config.lake.path == "lake" and not config.lake.encryption   # `lake:` absent: a plaintext lake


def test_an_unknown_key_names_file_line_and_field_and_suggests_the_right_key(tmp_path):
    path = write(tmp_path, "bank:\n  name: x\n  curency: CNY\n")
    with pytest.raises(ConfigError) as info:
        load_model(WorkspaceConfig, path)
    problem = info.value.problems[0]
    assert (problem.file, problem.line, problem.field) == (str(path), 3, "bank.curency")
    assert "did you mean 'currency'" in problem.message


def test_a_wrong_value_names_its_line(tmp_path):
    path = write(tmp_path, "lake: lake\nengine: oracle\n")
    with pytest.raises(ConfigError) as info:
        load_model(WorkspaceConfig, path)
    assert info.value.problems[0].line == 2 and info.value.problems[0].field == "engine"
    assert "oracle" in str(info.value)


def test_a_yaml_syntax_error_names_its_line(tmp_path):
    path = write(tmp_path, "bank:\n  name: [unclosed\nengine: duckdb\n")
    with pytest.raises(ConfigError) as info:
        load_model(WorkspaceConfig, path)
    assert f"{path}:" in info.value.message and "syntax" in info.value.message


def test_a_duplicate_key_is_an_error_not_a_silent_override(tmp_path):
    with pytest.raises(ConfigError, match="duplicate key 'engine'"):
        load_model(WorkspaceConfig, write(tmp_path, "engine: duckdb\nengine: spark\n"))


def test_a_missing_file_says_how_to_create_one(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_yaml(tmp_path / "nope.yaml")
    assert "not found" in info.value.message and "lifeloop init" in info.value.hint


def test_lines_are_kept_for_list_items(tmp_path):
    doc = load_yaml(tmp_path / "x.yaml", text="tags:\n  - name: a\n  - name: b\n    window: 3\n")
    assert doc.line_of(("tags", 1, "window")) == 4
    assert doc.line_of(("tags", 1, "unknown_deeper")) == 3
