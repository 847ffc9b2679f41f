"""Recognising authentication data (C3) by a column's name and card numbers in free text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lifeloop.data.cards import luhn_check_digit, luhn_valid, redact_cards
from lifeloop.data.schema import TABLES
from lifeloop.data.sensitive import (
    CARD_NUMBER_COLUMNS,
    STRUCTURED_COLUMNS,
    authentication_kind,
    free_text_columns,
    holds_card_number,
)


@pytest.mark.parametrize("name, kind", [
    ("card_pin", "PIN"), ("cardPIN", "PIN"), ("PIN", "PIN"), ("pin_block", "PIN"), ("PINBlock", "PIN"),
    ("CVV2", "card verification code"), ("cvn", "card verification code"), ("CVC", "card verification code"),
    ("Password", "password"), ("user_pwd", "password"), ("login-passcode", "password"),
    ("track2", "track data"), ("trackData", "track data"), ("mag_stripe", "track data"),
    ("card_expiry", "card expiry"), ("sms_code", "one-time code"), ("fingerprint_hash", "biometric data"),
    ("交易密码", "password or PIN"), ("查询密码", "password or PIN"), ("动态口令", "password or PIN"),
    ("卡校验码", "card verification code"), ("CVN2安全码", "card verification code"), ("二磁道信息", "track data"),
    ("卡片有效期", "card expiry"), ("指纹模板", "biometric data"),
])
def test_names_that_look_like_authentication_data_in_english_or_chinese(name, kind):
    assert authentication_kind(name) == kind


@pytest.mark.parametrize("name", ["pinyin", "name_pinyin", "shipping", "spin_rate", "occupation", "passport_no",
                                  "risk_expires_on", "expiry_date", "track_no", "customer_id", "detail", "职业",
                                  "客户号", "手机号码"])
def test_ordinary_names_are_not_taken_for_authentication_data(name):
    assert authentication_kind(name) is None


def test_luhn_accepts_the_schemes_test_numbers_and_refuses_a_changed_digit():
    # 4111 1111 1111 111|1: doubled from the right 1->2 seven times and 4->8: 8+2*7 + 1*7 + 1 = 30
    assert luhn_valid(["4111111111111111", "378282246310005", "4111111111111112", "1"]) == [True, True, False, False]
    assert luhn_check_digit(__import__("numpy").array([[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]]))[0] == 1


def test_free_text_columns_leave_out_ids_codes_and_the_declared_number_columns():
    assert free_text_columns("customers") == ["name", "email", "city", "occupation"]
    assert free_text_columns("events") == ["event_type", "channel", "detail"]
    assert free_text_columns("holdings") == [] and free_text_columns("transactions") == []
    for table, column in CARD_NUMBER_COLUMNS | STRUCTURED_COLUMNS:
        assert column in TABLES[table].column_names


def with_check_digit(body: str) -> str:
    import numpy as np

    return body + str(int(luhn_check_digit(np.array([[int(c) for c in body]]))[0]))


filler = st.text(alphabet=st.characters(blacklist_categories=("Nd",), blacklist_characters=" -"), max_size=12)
bodies = st.tuples(st.sampled_from("23456"), st.integers(11, 17)).flatmap(
    lambda t: st.text(alphabet="0123456789", min_size=t[1], max_size=t[1]).map(lambda s, d=t[0]: d + s))


@given(bodies, filler, filler)
def test_any_luhn_valid_card_number_in_any_text_is_found(body, before, after):
    assert holds_card_number(f"{before}{with_check_digit(body)}{after}")


@given(bodies, filler, filler)
def test_a_number_with_a_wrong_check_digit_is_not_taken_for_a_card(body, before, after):
    right = with_check_digit(body)
    wrong = right[:-1] + str((int(right[-1]) + 1) % 10)
    assert not holds_card_number(f"{before}{wrong}{after}")


@given(st.text(alphabet="0123456789", min_size=14, max_size=14))
def test_a_card_number_written_in_groups_of_four_is_found(body):
    number = with_check_digit("4" + body)
    grouped = " ".join(number[i:i + 4] for i in range(0, 16, 4))
    assert holds_card_number(f"card {grouped} ok") and holds_card_number(grouped.replace(" ", "-"))


def test_messages_never_quote_a_card_number_or_track_data():
    assert redact_cards("'4111111111111111' is not an allowed code") == "'<card data withheld>' is not an allowed code"
    assert redact_cards("cannot read '4111 1111 1111 1111' as DATE") == "cannot read '<card data withheld>' as DATE"
    assert redact_cards("code ';4111111111111111=2512101?' is unmapped") == "code '<card data withheld>' is unmapped"
    assert redact_cards("ref 4111111111111112, phone 13812341234") == "ref 4111111111111112, phone 13812341234"


@given(bodies, filler)
def test_a_redacted_message_holds_no_luhn_valid_card_number(body, around):
    assert not holds_card_number(redact_cards(f"{around}{with_check_digit(body)}{around}"))
