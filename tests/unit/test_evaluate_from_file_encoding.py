"""`evaluate --from-file` takes --encoding; a GBK file read as UTF-8 says to pass `--encoding gbk`."""

import json

from typer.testing import CliRunner

from lifeloop.cli.app import app
from lifeloop.errors import LifeloopError
from tests.factories import new_context
from tests.refusals import state


def gbk_results(path):
    rows = ["组别,bought"] + [f"对照组,{1 if i < 6 else 0}" for i in range(40)] + \
        [f"短信组,{1 if i < 14 else 0}" for i in range(40)]
    path.write_bytes(("\n".join(rows) + "\n").encode("gbk"))
    return path


def evaluate(ws, path, *extra):
    return CliRunner().invoke(app, ["-w", str(ws), "evaluate", "--from-file", str(path), "--arm", "组别",
                                    "--control", "对照组", "--outcome", "bought", *extra])


def test_a_gbk_file_read_as_utf8_is_refused_with_a_hint_naming_the_encoding_option(tmp_path):
    ctx = new_context(tmp_path)
    before = state(ctx)
    result = evaluate(ctx.workspace, gbk_results(tmp_path / "results.csv"))
    message = str(result.exception)   # main() prints it as "Error: ..." and exits 1
    assert result.exit_code == 1 and isinstance(result.exception, LifeloopError)
    assert message.startswith("results.csv: not valid utf-8 text at line 1, byte 0")
    assert message.endswith("What to do: this file looks like GBK: pass --encoding gbk")
    assert "mapping" not in message
    assert state(ctx) == before


def test_the_same_file_with_encoding_gbk_is_evaluated(tmp_path):
    ctx = new_context(tmp_path)
    result = evaluate(ctx.workspace, gbk_results(tmp_path / "results.csv"), "--encoding", "gbk", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert [(a["arm"], a["customers"]) for a in doc["arms"]] == [("对照组", 40), ("短信组", 40)]
    assert doc["outcomes"][0]["versus_control"][0]["uplift"] == 14 / 40 - 6 / 40


def test_an_unknown_encoding_is_refused_by_name(tmp_path):
    ctx = new_context(tmp_path)
    result = evaluate(ctx.workspace, gbk_results(tmp_path / "results.csv"), "--encoding", "gbkk")
    assert result.exit_code == 1 and "unknown encoding 'gbkk'" in str(result.exception)


def test_encoding_without_from_file_is_refused(tmp_path):
    ctx = new_context(tmp_path)
    result = CliRunner().invoke(app, ["-w", str(ctx.workspace), "evaluate", "--encoding", "gbk"])
    assert result.exit_code != 0 and "--encoding only applies with --from-file" in str(result.exception)
