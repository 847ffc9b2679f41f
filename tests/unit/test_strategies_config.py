"""The strategy map and contact policy: the default template is valid; bad maps fail naming file,
line, strategy and field, and say what to do."""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest

from lifeloop.config.contact_policy import ContactPolicy
from lifeloop.config.loader import load_model, load_yaml, validate_model
from lifeloop.config.strategies import StrategiesConfig
from lifeloop.errors import ConfigError, RuleError
from lifeloop.strategy.audiences import audience_columns
from lifeloop.strategy.checks import check_references, check_structure, compile_audiences
from lifeloop.workspace import template_root

FILE = "config/strategies.yaml"
GOOD = """\
version: 1
strategies:
  - id: welcome
    name: {zh: 欢迎, en: Welcome}
    owner: hq
    objective: {kind: customers, metric: activation_rate, window_days: 90}
    scenario: {kind: lifecycle, stages: [honeymoon], segments: [wealth]}
    audience: "stage = 'honeymoon' AND aum >= 1000"
    offer: {product_id: WM090}
    channels: [sms, rm]
    scripts:
      sms: {zh: "【示例银行】{{ customer_name }}您好，回复TD退订", en: "【Demo Bank】Hello {{ customer_name }}. Reply STOP to opt out"}
      rm: {zh: "我是{{ rm_name }}", en: "I am {{ rm_name }}"}
    waves:
      - {id: first, day: 1, channel: sms}
      - {id: second, day: 7, channel: rm, depends_on: {wave: first, outcome: no_response}}
    holdout: 0.1
    start: 2024-01-01
"""  # noqa: E501
COLUMNS = audience_columns({"customer_id": "VARCHAR", "aum": "DECIMAL(18,2)", "tenure_days": "INTEGER"},
                           {"customer_id": "VARCHAR", "tier": "VARCHAR", "seg_payroll": "BOOLEAN"})


def load(text: str):
    doc = load_yaml(FILE, text=textwrap.dedent(text))
    return validate_model(StrategiesConfig, doc), doc


def all_checks(text: str, products=("WM090",)):
    config, doc = load(text)
    check_structure(config, doc)
    check_references(config, doc, products=set(products), stages={"honeymoon", "dormant"},
                     segments={"wealth", "payroll"})
    return compile_audiences(config, COLUMNS, dt.date(2024, 6, 30), doc)


def test_a_good_map_passes_every_check_and_its_audience_compiles():
    trees = all_checks(GOOD)
    assert set(trees) == {"welcome"}


def test_the_default_template_map_and_policy_are_valid():
    root = template_root("bank") / "config"
    config, doc = load_model(StrategiesConfig, root / "strategies.yaml")
    policy, _ = load_model(ContactPolicy, root / "contact_policy.yaml")
    check_structure(config, doc, policy)   # with the template's own marketing SMS rules and purposes
    ids = {s.id for s in config.strategies}
    assert {"honeymoon_welcome", "dormant_reactivation", "wealth_churn_retention", "maturity_reinvestment",
            "payroll_salary_day", "birthday_care", "card_activation"} <= ids
    honeymoon = config.strategy("honeymoon_welcome")
    assert [(w.day, w.channel) for w in honeymoon.waves] == [(1, "sms"), (7, "rm"), (30, "push")]
    assert all(0.1 <= s.holdout <= 0.2 for s in config.strategies)
    assert all(s.scripts[ch].zh and s.scripts[ch].en for s in config.strategies for ch in s.scripts)
    assert policy.channel("call").daily_limit() == 40 * 80


def test_an_unknown_product_names_file_line_strategy_and_field():
    with pytest.raises(ConfigError) as err:
        all_checks(GOOD.replace("WM090", "WM009"), products=("WM090", "TD1Y"))
    p = err.value.problems[0]
    assert (p.file, p.line, p.rule, p.field) == (FILE, 9, "strategy welcome", "strategies[0].offer.product_id")
    assert "unknown product 'WM009'; did you mean 'WM090'?" in p.message


def test_an_unknown_column_in_an_audience_says_did_you_mean():
    with pytest.raises(RuleError) as err:
        all_checks(GOOD.replace("aum >= 1000", "aun >= 1000"))
    text = err.value.render()
    assert "config/strategies.yaml:8 strategy welcome field audience" in text
    assert "unknown column 'aun'" in text and "'aum'" in text
    assert err.value.problems[0].field == "strategies[0].audience"


def test_an_audience_may_use_stage_segments_and_the_days_events():
    all_checks(GOOD.replace("aum >= 1000", "tier = 'wealth' AND seg_payroll AND (salary_today OR birthday_today)"))


def test_a_wave_depending_on_an_unknown_wave_is_refused():
    with pytest.raises(ConfigError) as err:
        all_checks(GOOD.replace("{wave: first,", "{wave: frist,"))
    p = err.value.problems[0]
    assert (p.line, p.rule, p.field) == (16, "strategy welcome", "strategies[0].waves[1].depends_on.wave")
    assert "unknown wave 'frist'; did you mean 'first'?" in p.message


def test_a_later_wave_must_come_after_the_wave_it_depends_on():
    with pytest.raises(ConfigError) as err:
        all_checks(GOOD.replace("day: 7", "day: 1"))
    assert "must come after wave first" in err.value.problems[0].message


def test_a_script_using_a_variable_outside_the_whitelist_is_refused():
    with pytest.raises(ConfigError) as err:
        all_checks(GOOD.replace('Hello {{ customer_name }}', 'Hello {{ mobile }} {{ customer_nmae }}'))
    messages = [p.message for p in err.value.problems]
    assert messages == ["script sms.en: variable 'customer_nmae' is not allowed in scripts; did you "
                        "mean 'customer_name'?",
                        "script sms.en: variable 'mobile' is not allowed in scripts"]
    assert err.value.problems[0].line == 12 and err.value.problems[0].field == "strategies[0].scripts.sms.en"


def test_a_channel_a_wave_can_use_without_a_script_is_refused():
    with pytest.raises(ConfigError) as err:
        all_checks(GOOD.replace('      rm: {zh: "我是{{ rm_name }}", en: "I am {{ rm_name }}"}\n', ""))
    assert "no script for channel 'rm'" in err.value.problems[0].message


def test_a_typo_in_a_key_is_refused_with_its_line():
    with pytest.raises(ConfigError) as err:
        load(GOOD.replace("holdout: 0.1", "holdot: 0.1"))
    p = next(p for p in err.value.problems if "holdot" in p.message)
    assert p.line == 17 and "unknown key 'holdot'; did you mean 'holdout'?" in p.message
    assert any(p.field == "strategies[0].holdout" and "missing" in p.message for p in err.value.problems)


def test_unknown_stages_and_segments_in_the_scenario_are_refused():
    with pytest.raises(ConfigError) as err:
        all_checks(GOOD.replace("stages: [honeymoon]", "stages: [honeymon]"))
    assert "unknown stage 'honeymon'; did you mean 'honeymoon'?" in err.value.problems[0].message


def test_two_strategies_with_one_id_are_refused():
    body = GOOD.split("strategies:\n")[1]
    with pytest.raises(ConfigError) as err:
        all_checks(GOOD + body)
    assert "strategy id 'welcome' is used twice" in err.value.problems[0].message


def test_a_holdout_of_one_or_more_is_refused():
    with pytest.raises(ConfigError) as err:
        load(GOOD.replace("holdout: 0.1", "holdout: 1.0"))
    assert err.value.problems[0].field == "strategies[0].holdout"


def test_quiet_hours_must_be_times_and_may_wrap_midnight():
    doc = load_yaml("config/contact_policy.yaml", text="quiet_hours:\n  sms: {start: '21:00', end: '8'}\n")
    with pytest.raises(ConfigError) as err:
        validate_model(ContactPolicy, doc)
    assert err.value.problems[0].line == 2
    policy = ContactPolicy.model_validate({"quiet_hours": {"sms": {"start": "21:00", "end": "08:00"}}})
    q = policy.quiet_hours["sms"]
    assert q.contains(dt.time(23, 0)) and q.contains(dt.time(7, 59)) and not q.contains(dt.time(8, 0))
