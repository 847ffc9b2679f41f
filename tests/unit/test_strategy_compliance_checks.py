"""Purpose and marketing SMS checks of the strategy map: a product offer is never a service message, and a
marketing SMS carries the signature and an opt-out phrase and no inducing word; every violation at once,
each naming file, line, strategy, channel and template."""

from __future__ import annotations

import textwrap

import pytest

from lifeloop.config.contact_policy import ContactPolicy, MarketingSms
from lifeloop.config.loader import load_model, load_yaml, validate_model
from lifeloop.config.sms_lint import lint
from lifeloop.config.strategies import StrategiesConfig
from lifeloop.errors import ConfigError
from lifeloop.strategy.checks import check_structure
from lifeloop.workspace import template_root

FILE = "config/strategies.yaml"
MAP = """\
version: 1
strategies:
  - id: welcome
    name: {zh: 欢迎, en: Welcome}
    owner: hq
    objective: {kind: customers, metric: activation_rate, window_days: 90}
    scenario: {kind: lifecycle}
    audience: "true"
    offer: {product_id: WM090}
    channels: [sms]
    scripts:
      sms: {zh: "【示例银行】{{ customer_name }}您好，新客专享{{ product_name }}。回复TD退订", en: "【Demo Bank】Hi. Reply STOP to opt out"}
    waves: [{id: w1, day: 0}]
    holdout: 0.1
    start: 2024-01-01
  - id: birthday
    name: {zh: 生日, en: Birthday}
    owner: cx
    objective: {kind: customers, metric: retention, window_days: 90}
    scenario: {kind: calendar}
    audience: "birthday_today"
    purpose: service
    offer: {code: CARE}
    channels: [sms]
    scripts:
      sms: {zh: "{{ customer_name }}，生日快乐！", en: "Happy birthday"}
    waves: [{id: greet, day: 0}]
    holdout: 0.1
    start: 2024-01-01
"""  # noqa: E501
ZH_LINE = 12   # the welcome strategy's sms.zh script


def check(text: str, policy: ContactPolicy | None = None) -> None:
    doc = load_yaml(FILE, text=textwrap.dedent(text))
    check_structure(validate_model(StrategiesConfig, doc), doc, policy)


def problems(text: str, policy: ContactPolicy | None = None):
    with pytest.raises(ConfigError) as err:
        check(text, policy)
    return err.value


def test_a_compliant_map_passes_and_a_service_greeting_needs_no_opt_out():
    check(MAP)


def test_the_default_template_passes_with_its_policy_and_with_the_default_rules():
    root = template_root("bank") / "config"
    config, doc = load_model(StrategiesConfig, root / "strategies.yaml")
    policy, _ = load_model(ContactPolicy, root / "contact_policy.yaml")
    check_structure(config, doc, policy)
    check_structure(config, doc)
    assert policy.marketing_sms == MarketingSms()   # the template spells out the defaults


def test_a_product_offer_under_purpose_service_names_file_line_strategy_and_the_fix():
    err = problems(MAP.replace("    offer: {product_id: WM090}\n",
                               "    offer: {product_id: WM090}\n    purpose: service\n"))
    (p,) = err.problems
    assert (p.file, p.line, p.rule, p.field) == (FILE, 10, "strategy welcome", "strategies[0].purpose")
    assert "its offer is product 'WM090'" in p.message and "use purpose: marketing" in p.message
    assert "config/strategies.yaml:10, rule strategy welcome" in err.render()


def test_a_service_script_that_promotes_an_offer_is_refused_even_without_a_product():
    err = problems(MAP.replace("{{ customer_name }}，生日快乐！", "生日快乐！{{ product_name }}限时优惠，代码 CARE"))
    (p,) = err.problems
    assert (p.line, p.field) == (22, "strategies[1].purpose")
    assert "script birthday.sms (zh) uses {{ product_name }} and names 'CARE'" in p.message
    assert "use purpose: marketing" in p.message


def test_a_service_purpose_from_the_policy_is_located_at_the_objective():
    policy = ContactPolicy.model_validate({"consent": {"purpose_by_objective": {"customers": "service"}}})
    err = problems(MAP, policy)
    (p,) = err.problems   # welcome offers WM090; the birthday greeting promotes nothing
    assert (p.line, p.field) == (6, "strategies[0].objective.kind")
    assert "purpose_by_objective" in p.message and "use purpose: marketing" in p.message


@pytest.mark.parametrize(("script", "expected"), [
    ("{{ customer_name }}您好，新客专享{{ product_name }}。回复TD退订", "no sender signature in 【...】"),
    ("【示例银行】{{ customer_name }}您好，新客专享{{ product_name }}。",
     "no opt-out phrase: end the message with '回复TD退订'"),
    ("【示例银行】{{ product_name }}稳赚不赔。回复TD退订", "forbidden inducing word '稳赚'"),
])
def test_each_marketing_sms_rule_names_file_line_strategy_channel_and_template(script, expected):
    err = problems(MAP.replace("【示例银行】{{ customer_name }}您好，新客专享{{ product_name }}。回复TD退订", script))
    (p,) = err.problems
    assert (p.file, p.line, p.rule, p.field) == (FILE, ZH_LINE, "strategy welcome", "strategies[0].scripts.sms.zh")
    assert p.message.startswith("marketing sms template welcome.sms (zh): ") and expected in p.message


def test_three_violations_in_one_map_are_all_reported_at_once():
    text = (MAP.replace("【示例银行】{{ customer_name }}您好", "{{ customer_name }}您好，保证收益")   # signature, word
               .replace("Hi. Reply STOP to opt out", "Hi."))                                      # en opt-out
    err = problems(text)
    assert [(p.line, p.field) for p in err.problems] == [
        (ZH_LINE, "strategies[0].scripts.sms.zh"), (ZH_LINE, "strategies[0].scripts.sms.zh"),
        (ZH_LINE, "strategies[0].scripts.sms.en")]
    text = err.render()
    assert "no sender signature" in text and "'保证收益'" in text and "'Reply STOP to opt out'" in text
    assert err.message.startswith("config/strategies.yaml: 3 problem(s) in the strategy map")


def test_a_cells_own_marketing_sms_is_checked_too():
    cells = ("    cells:\n      - {id: a, share: 0.5}\n"
             "      - {id: b, share: 0.5, scripts: {sms: {zh: \"【示例银行】零风险！回复TD退订\"}}}\n")
    err = problems(MAP.replace("    start: 2024-01-01\n  - id: birthday", "    start: 2024-01-01\n" + cells
                               + "  - id: birthday"))
    (p,) = err.problems
    assert p.field == "strategies[0].cells[1].scripts.sms.zh" and p.line == 18
    assert "template welcome.b.sms (zh): forbidden inducing word '零风险'" in p.message


def test_the_policy_configures_signature_opt_out_phrases_and_words():
    rules = MarketingSms(signature="【示例银行】", opt_out={"zh": ["回复TD退订", "拒收请回复R"], "en": ["STOP"]},
                         forbidden_words=["秒杀"])
    assert lint("【示例银行】限时秒杀，拒收请回复R", "zh", rules) == [
        "forbidden inducing word '秒杀' (marketing may not promise principal or returns): remove it and describe "
        "the product's risk and return objectively"]
    assert lint("【别的银行】您好，回复TD退订", "zh", rules)[0].startswith("no sender signature 【示例银行】")
    assert lint("【示例银行】Hello, text stop to opt out", "en", rules) == []   # phrases match ignoring case


def test_a_required_risk_disclosure_is_not_an_inducement():
    text = "【示例银行】本产品为非保本浮动收益型产品，不保证收益，理财非存款、产品有风险。回复TD退订"
    assert lint(text, "zh", MarketingSms()) == []
    assert lint("【示例银行】保本保收益！回复TD退订", "zh",
                MarketingSms())[0].startswith("forbidden inducing word '保本'")


def test_the_opt_out_requirement_cannot_be_switched_off():
    with pytest.raises(ValueError, match="opt_out needs at least one phrase for en"):
        MarketingSms(opt_out={"zh": ["回复TD退订"], "en": []})
    with pytest.raises(ValueError, match="must be the bank's name in 【】"):
        MarketingSms(signature="示例银行")
