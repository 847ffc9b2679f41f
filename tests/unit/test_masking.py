"""Masking personal data by kind and role, checked against hand-written masked values."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from lifeloop.data.masking import AccessError, column_kind, mask_money, mask_row, mask_value, role


@pytest.mark.parametrize("kind, value, masked", [
    ("name", "张小明", "张*明"),
    ("name", "张三", "张*"),
    ("name", "欧阳小明", "欧**明"),
    ("name", "Zhang Wei", "Z*******i"),
    ("mobile", "13812341234", "138****1234"),
    ("id_number", "110101199001011234", "110***********1234"),
    ("email", "alice@example.com", "a***@example.com"),
    ("birth_date", dt.date(1990, 5, 1), 1990),
    ("account", "6222020012345678", "****5678"),
    ("account", "A12", "***"),
    ("money", Decimal("123456.78"), "100k-1m"),
    ("money", Decimal("999.99"), "<1k"),
    ("money", Decimal("6000000"), "1m-10m"),
    ("other", "anything", "****"),
    ("mobile", None, None),
])
def test_each_kind_of_personal_data_is_masked_as_banks_display_it(kind, value, masked):
    assert mask_value(kind, value) == masked


def test_the_canonical_schema_decides_which_columns_are_personal():
    assert column_kind("customers", "id_number") == "id_number"
    assert column_kind("holdings", "balance") == "money"
    assert column_kind("customers", "city") is None          # C1: the bank's own data, shown
    assert column_kind("products", "name") is None           # not personal data


def test_an_analyst_sees_a_customer_masked_and_learns_which_fields_were_masked():
    row = {"customer_id": "C1", "name": "李娜", "mobile": "13812341234", "id_number": "110101199001011234",
           "birth_date": dt.date(1960, 5, 1), "city": "Shanghai"}
    out, masked = mask_row("customers", row, role("analyst"))
    assert out == {"customer_id": "C1", "name": "李*", "mobile": "138****1234", "id_number": "110***********1234",
                   "birth_date": 1960, "city": "Shanghai"}
    assert masked == ["name", "mobile", "id_number", "birth_date"]


def test_a_relationship_manager_sees_their_customer_unmasked_except_the_id_number():
    row = {"name": "李娜", "mobile": "13812341234", "id_number": "110101199001011234"}
    out, masked = mask_row("customers", row, role("rm"))
    assert out == {"name": "李娜", "mobile": "13812341234", "id_number": "110***********1234"}
    assert masked == ["id_number"]


def test_compliance_sees_everything_and_balances_exactly():
    out, masked = mask_row("holdings", {"account_id": "6222020012345678", "balance": Decimal("5.00")},
                           role("compliance"))
    assert out == {"account_id": "6222020012345678", "balance": Decimal("5.00")} and masked == []
    assert role("compliance").needs_reason
    assert mask_money(Decimal("7000000.00"), role("admin")) == 7000000.0
    assert mask_money(Decimal("7000000.00"), role("analyst")) == "1m-10m"


def test_an_unknown_role_is_refused_with_did_you_mean():
    with pytest.raises(AccessError, match="did you mean 'analyst'"):
        role("analist")
