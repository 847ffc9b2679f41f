"""The customer's rights in the plan (pure, no I/O): opted-out customers leave personalised strategies only,
suppressed ones leave marketing only, neither takes a cap another strategy could use; ``personalised: false`` is
checked against the audience's columns; the keyed hash normalises what it hashes."""

from __future__ import annotations

import hashlib
import hmac

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifeloop.errors import ConfigError
from lifeloop.store.suppression import digest, normalise
from lifeloop.strategy.checks import check_structure
from lifeloop.strategy.history import History
from lifeloop.strategy.plan import make_lists
from tests.unit.strategy_factories import D, config, consent_all, policy, strategy


def plan(cfg, customers, rights, purposes=None):
    audiences = pa.Table.from_pylist([dict(customer_id=c, strategy=s.id, wave="w1", rm_id=None, reason="test")
                                      for c in customers for s in cfg.strategies])
    history = History.from_rows(consent=consent_all(customers) + consent_all(customers, purpose="service"),
                                rights=rights)
    lists = make_lists(audiences, cfg, policy(caps={"day": 1}), history, D)
    return {(r["customer_id"], r["strategy"]): (r["status"], r["dropped_by"]) for r in lists.to_pylist()}


def test_an_opted_out_customer_gets_the_non_personalised_strategy_and_it_takes_their_one_contact_of_the_day():
    upsell = strategy("upsell", priority=90)
    notice = strategy("notice", priority=10, personalised=False)
    got = plan(config(upsell, notice), ["a", "b"], [dict(customer_id="a", flag="no_personalisation")])
    # b: the higher-priority upsell wins the one daily contact; a: upsell is dropped before the caps, so the
    # notice (priority 10) is not crowded out by a contact that will never happen
    assert got == {("a", "upsell"): ("dropped", "no_personalisation"), ("a", "notice"): ("contact", None),
                   ("b", "upsell"): ("contact", None), ("b", "notice"): ("dropped", "cap_overall_day")}


def test_a_suppressed_customer_leaves_marketing_whether_personalised_or_not_and_keeps_service():
    promo = strategy("promo", personalised=False)
    care = strategy("care", purpose="service", priority=80)
    got = plan(config(promo, care), ["a"], [dict(customer_id="a", flag="suppressed")])
    assert got == {("a", "promo"): ("dropped", "suppressed"), ("a", "care"): ("contact", None)}


def test_the_control_group_loses_flagged_customers_too_so_both_arms_stay_alike():
    upsell = strategy("upsell", holdout=0.999)   # everyone is drawn into control
    got = plan(config(upsell), ["a", "b"], [dict(customer_id="a", flag="no_personalisation")])
    assert got == {("a", "upsell"): ("dropped", "no_personalisation"), ("b", "upsell"): ("control", None)}


def test_personalised_false_is_refused_on_an_audience_that_reads_tags_or_targets_segments():
    ok = strategy("ok", audience="holiday_today AND days_to_holiday <= near", personalised=False, channels=("push",))
    check_structure(config(ok, thresholds={"near": 3}))    # events and thresholds only: fine
    bad = strategy("bad", audience="aum >= 100000 AND salary_today", personalised=False, channels=("push",),
                   scenario={"kind": "event", "segments": ["wealth"]})
    with pytest.raises(ConfigError) as err:
        check_structure(config(ok, bad, thresholds={"near": 3}))
    shown = err.value.render()
    assert "strategies[1].audience" in shown and "the audience reads aum" in shown
    assert "strategies[1].scenario.segments" in shown
    check_structure(config(strategy("tagged", audience="aum >= 100000", channels=("push",))))   # personalised: fine


class HmacKeys:
    """A key manager's keyed hash under a fixed key (lifeloop.store.keys.Keys.keyed_hash, without the purpose
    derivation, so digests can be checked by hand)."""

    def __init__(self, key: bytes):
        self.key = key

    def keyed_hash(self, purpose: str, value: str) -> str:
        assert purpose == "suppression"
        return hmac.new(self.key, value.encode(), hashlib.sha256).hexdigest()


@given(st.text(alphabet="0123456789 -+", min_size=11, max_size=18))
def test_a_mobile_is_hashed_as_its_digits_so_spacing_and_the_country_code_do_not_matter(text):
    digits = "".join(ch for ch in text if ch.isdigit())
    key = b"k" * 32
    keys = HmacKeys(key)
    expected_text = digits[2:] if len(digits) == 13 and digits.startswith("86") else digits
    if not expected_text:
        assert digest(keys, "mobile", text) is None
        return
    assert normalise("mobile", text) == expected_text
    assert digest(keys, "mobile", text) == hmac.new(key, f"mobile:{expected_text}".encode(), hashlib.sha256).hexdigest()


def test_different_keys_give_different_hashes_and_empty_values_give_none():
    a, b = HmacKeys(b"a" * 32), HmacKeys(b"b" * 32)
    assert digest(a, "customer_id", "C1") != digest(b, "customer_id", "C1")
    assert digest(a, "customer_id", "C1") != digest(a, "mobile", "C1")   # the kind is hashed too
    assert digest(a, "id_number", "  ") is None and digest(a, "mobile", None) is None
