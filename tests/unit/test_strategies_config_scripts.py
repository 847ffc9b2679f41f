"""Scripts render masked, whitelisted variables in a sandbox; the map renders as segment x stage."""

from __future__ import annotations

import pytest

from lifeloop.cli.strategies import map_grid, strategy_rows
from lifeloop.config.loader import load_model
from lifeloop.config.scripts import customer_variables, mask_name, render, round_amount, template_problems
from lifeloop.config.strategies import StrategiesConfig
from lifeloop.workspace import template_root


def test_a_script_shows_a_masked_name_a_title_and_a_rounded_amount():
    v = customer_variables({"customer_name": "王小明", "gender": "M", "maturing_amount": 52300.17,
                            "rm_name": "李雷", "days_to_maturity": 5})
    text = render("{{ customer_name }}{{ title }}，您约{{ maturing_amount }}的产品{{ days_to_maturity }}天后到期，"
                  "客户经理{{ rm_name }}", v)
    assert text == "王**先生，您约5万的产品5天后到期，客户经理李雷"


def test_names_and_amounts_are_never_shown_in_full():
    assert mask_name("Alice") == "A****" and mask_name("王") == "王*" and mask_name(None) == ""
    assert round_amount(4000) == "1万" and round_amount(1_234_567) == "123万" and round_amount(None) == ""


def test_a_variable_that_was_not_whitelisted_cannot_reach_a_script():
    v = customer_variables({"customer_name": "王小明", "mobile": "13800000000"})
    assert "mobile" not in v
    assert render("{{ customer_name }}", {**v, "mobile": "13800000000"}) == "王**"
    from jinja2.exceptions import UndefinedError

    with pytest.raises(UndefinedError):  # StrictUndefined: an unknown name fails instead of printing nothing
        render("{{ mobile }}", {**v, "mobile": "13800000000"})


def test_the_sandbox_refuses_attribute_tricks():
    from jinja2.exceptions import SecurityError

    assert template_problems("{{ customer_name.__class__ }}") == []  # the name is allowed ...
    with pytest.raises(SecurityError):                                # ... the trick is not
        render("{{ customer_name.__class__.__mro__[1].__subclasses__() }}", customer_variables({"customer_name": "x"}))


def test_a_template_syntax_error_is_reported_with_its_line():
    assert template_problems("hello\n{{ customer_name ") == [
        "template syntax error on its line 2: unexpected end of template, expected 'end of print statement'."]


def test_the_default_map_as_segment_by_stage_grid():
    config, _ = load_model(StrategiesConfig, template_root("bank") / "config" / "strategies.yaml")
    grid = map_grid(config, ["prospect", "onboarding", "honeymoon", "growing", "mature", "declining", "dormant"])
    assert grid["columns"] == ["onboarding", "honeymoon", "mature", "declining", "dormant", "all"]
    assert grid["cells"]["all"]["mature"] == ["churn_warning (lifecycle)"]
    assert grid["cells"]["all"]["honeymoon"] == ["honeymoon_welcome (lifecycle)"]
    assert grid["cells"]["wealth"]["declining"] == ["wealth_churn_retention (lifecycle)"]
    assert "payroll_salary_day (event)" in grid["cells"]["payroll"]["all"]
    rows = {r["id"]: r for r in strategy_rows(config)}
    assert rows["honeymoon_welcome"]["waves"] == "D+1 sms -> D+7 rm (no_response) -> D+30 push"


def test_the_strategies_command_prints_the_workspace_map_as_json(tmp_path):
    import json

    from rich.console import Console

    from lifeloop.cli.strategies import strategies_command
    from lifeloop.context import Context

    ctx = Context.init(tmp_path / "ws")
    out = Console(record=True, width=200)
    strategies_command(ctx, out, as_json=True)
    data = json.loads(out.export_text())
    assert data["grid"]["columns"][:2] == ["onboarding", "honeymoon"]  # lifecycle.yaml's stage order
    assert [s["id"] for s in data["strategies"]][:2] == ["honeymoon_welcome", "dormant_reactivation"]
