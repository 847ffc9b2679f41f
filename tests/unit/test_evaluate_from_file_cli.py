"""`lifeloop evaluate --from-file ... [--json]` end to end through the CLI (skipped until the command is wired)."""

import json

import pytest
from typer.testing import CliRunner

from lifeloop.cli.app import app

pytestmark = pytest.mark.skipif(
    not any(getattr(c, "name", None) == "evaluate" or getattr(c.callback, "__name__", "") == "evaluate"
            for c in app.registered_commands),
    reason="lifeloop evaluate is not wired into cli/app.py yet")


def results_csv(path):
    rows = ["cell,bought,fee"]
    rows += [f"ctl,{1 if i < 6 else 0},{100 + i}" for i in range(40)]  # 6 of 40 bought
    rows += [f"sms,{1 if i < 14 else 0},{130 + i}" for i in range(40)]  # 14 of 40 bought; fee +30 each
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_the_json_output_carries_the_uplift_of_each_arm(tmp_path):
    path = results_csv(tmp_path / "results.csv")
    result = CliRunner().invoke(app, ["evaluate", "--from-file", str(path), "--arm", "cell", "--control", "ctl",
                                      "--outcome", "bought", "--money", "fee", "--cost-per-contact", "1",
                                      "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["schema"] == "lifeloop.evaluation/1"
    bought, fee = doc["outcomes"]
    assert bought["versus_control"][0]["uplift"] == pytest.approx(0.2)  # 14/40 - 6/40
    assert fee["versus_control"][0]["uplift"] == pytest.approx(30.0)
    assert fee["versus_control"][0]["roi"] == pytest.approx((30 * 40 - 40) / 40)


def test_a_file_option_without_from_file_is_refused_with_what_to_do(tmp_path):
    result = CliRunner().invoke(app, ["evaluate", "retention_call", "--arm", "cell"])
    assert result.exit_code != 0
    assert "--arm only applies with --from-file" in str(result.exception)
