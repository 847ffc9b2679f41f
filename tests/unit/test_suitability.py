"""Suitability (投资者适当性) by hand: levels, expiry, unrated and unknown products, extra rules, plan wiring.

As of D = 2024-06-30. Products: DEP (time deposit, R1), BOND (fund, R2), MIX (wealth, R3), EQ (fund,
R4), UNR (wealth, unrated), LOAN (loan, unrated).
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from pydantic import ValidationError

from lifeloop.config.contact_policy import ContactPolicy, ExtraRule
from lifeloop.errors import ConfigError
from lifeloop.strategy import suitability
from lifeloop.strategy.history import History
from lifeloop.strategy.plan import make_lists
from tests.unit.strategy_factories import D, config, consent_all, policy, strategy

d = dt.date.fromisoformat

PRODUCTS = pa.Table.from_pylist([
    {"product_id": "DEP", "product_type": "time_deposit", "risk_level": "R1"},
    {"product_id": "BOND", "product_type": "fund", "risk_level": "R2"},
    {"product_id": "MIX", "product_type": "wealth", "risk_level": "R3"},
    {"product_id": "EQ", "product_type": "fund", "risk_level": "R4"},
    {"product_id": "UNR", "product_type": "wealth", "risk_level": None},
    {"product_id": "LOAN", "product_type": "loan", "risk_level": None},
])


def customers(*rows: tuple) -> pa.Table:
    """(id, level, assessed_on, expires_on, birth_date) rows."""
    return pa.Table.from_pylist(
        [dict(customer_id=c, risk_level=lv, risk_assessed_on=a, risk_expires_on=e, birth_date=b)
         for c, lv, a, e, b in rows],
        schema=pa.schema([("customer_id", pa.string()), ("risk_level", pa.string()), ("risk_assessed_on", pa.date32()),
                          ("risk_expires_on", pa.date32()), ("birth_date", pa.date32())]))


def verdict(cust: pa.Table, pairs: list[tuple[str, str]], **kw):
    offers = pa.table({"customer_id": [c for c, _ in pairs], "offer": [o for _, o in pairs]})
    return suitability.check(cust, PRODUCTS, offers, D, **kw)


VALID = (d("2024-01-10"), d("2025-01-10"))


def test_a_valid_level_covers_products_up_to_its_own_number_and_no_further():
    cust = customers(("A", "C3", *VALID, d("1980-01-01")), ("B", "C1", *VALID, d("1980-01-01")))
    v = verdict(cust, [("A", "DEP"), ("A", "MIX"), ("A", "EQ"), ("B", "DEP"), ("B", "BOND")])
    assert v.allowed == [True, True, False, True, False]
    assert v.outcome == ["suitable", "suitable", "unsuitable", "suitable", "unsuitable"]
    assert v.detail[2] == "C3 valid until 2025-01-10; product EQ is R4"
    assert v.reassess == [False] * 5   # a valid assessment that is too low is not a re-assessment case


def test_an_expired_assessment_covers_r1_only_and_asks_for_a_re_assessment():
    # expired yesterday as C5: would have covered everything
    cust = customers(("A", "C5", d("2023-06-29"), d("2024-06-29"), d("1980-01-01")))
    v = verdict(cust, [("A", "DEP"), ("A", "BOND"), ("A", "MIX"), ("A", "EQ")])
    assert v.allowed == [True, False, False, False]
    assert v.outcome == ["suitable", "reassess", "reassess", "reassess"]
    assert v.detail[2] == "assessment C5 expired 2024-06-29; product MIX is R3"


def test_an_assessment_expiring_on_the_plan_day_is_already_expired():
    cust = customers(("A", "C4", d("2023-06-30"), D, None))
    assert verdict(cust, [("A", "BOND")]).outcome == ["reassess"]


def test_without_an_expiry_date_the_assessment_lasts_one_year_from_the_day_it_was_made():
    cust = customers(("A", "C3", d("2023-07-01"), None, None), ("B", "C3", d("2023-06-30"), None, None))
    assert verdict(cust, [("A", "MIX"), ("B", "MIX")]).outcome == ["suitable", "reassess"]


def test_a_missing_assessment_or_an_unknown_customer_gets_deposits_but_nothing_riskier():
    cust = customers(("A", None, None, None, None), ("B", "C4", None, None, None))
    v = verdict(cust, [("A", "DEP"), ("A", "BOND"), ("B", "BOND"), ("Z", "BOND")])
    assert v.outcome == ["suitable", "reassess", "reassess", "reassess"]
    assert v.detail[1] == "no risk assessment; product BOND is R2"


def test_offers_that_are_not_products_and_unrated_loans_are_not_subject():
    cust = customers(("A", None, None, None, None))
    v = verdict(cust, [("A", "BIRTHDAY_CARE"), ("A", "LOAN")])
    assert v.allowed == [True, True] and v.outcome == ["not_subject", "not_subject"]


def test_an_unrated_investment_product_is_refused_to_everyone():
    cust = customers(("A", "C5", *VALID, None))
    v = verdict(cust, [("A", "UNR")])
    assert v.allowed == [False] and v.outcome == ["unrated_product"]


def test_a_strategy_offering_a_product_missing_from_the_catalogue_is_refused():
    offers = pa.table({"customer_id": ["A", "A"], "offer": ["GONE", "GONE"], "product_offer": [True, False]})
    v = suitability.check(customers(("A", "C5", *VALID, None)), PRODUCTS, offers, D)
    assert v.outcome == ["unknown_product", "not_subject"]


def test_customers_aged_65_or_more_offered_r4_are_flagged_for_enhanced_sales_not_dropped():
    cust = customers(("OLD", "C5", *VALID, d("1959-06-30")),   # 65 today
                     ("YOUNG", "C5", *VALID, d("1959-07-01")),  # 64 until tomorrow
                     ("OLD3", "C5", *VALID, d("1940-01-01")))
    v = verdict(cust, [("OLD", "EQ"), ("YOUNG", "EQ"), ("OLD3", "MIX")])
    assert v.allowed == [True, True, True]
    assert v.outcome == ["enhanced_sales", "suitable", "suitable"]
    assert v.detail[0] == "elderly_high_risk: age 65 >= 65, product EQ is R4"


def test_a_bank_can_add_a_stricter_rule_that_drops_but_no_setting_relaxes_the_core_rule():
    strict = [ExtraRule(name="over_70_no_r3", min_age=70, min_product_level="R3", action="drop")]
    cust = customers(("A", "C5", *VALID, d("1950-01-01")), ("B", "C1", *VALID, d("1950-01-01")))
    v = verdict(cust, [("A", "MIX"), ("A", "DEP"), ("B", "MIX")], rules=strict)
    assert v.outcome == ["extra_rule", "suitable", "unsuitable"]
    with pytest.raises(ValidationError):   # there is no switch for the core rule in the contact policy
        ContactPolicy.model_validate({"suitability": {"enabled": False}})


def test_the_contact_policy_file_names_the_line_of_a_bad_extra_rule(tmp_path):
    from lifeloop.config.loader import load_model

    path = tmp_path / "contact_policy.yaml"
    path.write_text("suitability:\n  extra_rules:\n    - {name: x, min_age: 65, min_product_level: R9}\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_model(ContactPolicy, path)
    assert "contact_policy.yaml:3" in str(err.value) and "min_product_level" in str(err.value)


def audiences(rows: list[tuple[str, str]]) -> pa.Table:
    return pa.table({"customer_id": [c for c, _ in rows], "strategy": [s for _, s in rows],
                     "wave": ["w1"] * len(rows), "rm_id": ["RM1"] * len(rows), "reason": ["t"] * len(rows)})


def test_the_plan_drops_unsuitable_offers_before_arbitration_so_a_suitable_one_wins_the_day():
    # one contact a day: the higher-priority R4 offer would win, but A is C2; the R2 offer goes out instead
    risky = strategy("risky", priority=90, offer={"product_id": "EQ"})
    safe = strategy("safe", priority=10, offer={"product_id": "BOND"})
    care = strategy("care", priority=5, offer={"code": "BIRTHDAY_CARE"})
    cust = customers(("A", "C2", *VALID, None), ("B", None, None, None, None))
    history = History.from_rows(consent=consent_all(["A", "B"]))
    lists = make_lists(audiences([("A", "risky"), ("A", "safe"), ("B", "safe"), ("B", "care")]),
                       config(risky, safe, care), policy(caps={"day": 2}), history, D, None, cust, PRODUCTS)
    rows = {(r["strategy"], r["customer_id"]): r for r in lists.to_pylist()}
    assert [(k, rows[k]["status"], rows[k]["dropped_by"], rows[k]["suitability"]) for k in sorted(rows)] == [
        (("care", "B"), "contact", None, None),
        (("risky", "A"), "dropped", "suitability", "unsuitable"),
        (("safe", "A"), "contact", None, "suitable"),
        (("safe", "B"), "dropped", "suitability", "reassess"),
    ]
    assert rows[("risky", "A")]["detail"] == "suitability: unsuitable (C2 valid until 2025-01-10; product EQ is R4)"
    assert rows[("risky", "A")]["cost"] == 0.0 and rows[("risky", "A")]["channel"] is None
    tasks = suitability.reassessments(lists, cust, D).to_pylist()
    assert [(t["customer_id"], t["status"], t["blocked_offers"], t["strategies"]) for t in tasks] == [
        ("B", "missing", "BOND", "safe")]


def test_without_customer_and_product_data_no_product_offer_can_be_planned():
    s = strategy("safe", offer={"product_id": "BOND"})
    lists = make_lists(audiences([("A", "safe")]), config(s), policy(), History.from_rows(consent=consent_all(["A"])),
                       D)
    assert lists.to_pylist()[0]["dropped_by"] == "suitability"
