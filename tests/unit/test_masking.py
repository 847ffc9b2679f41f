"""Masking personal data by kind and role, checked against hand-written masked values."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from lifeloop.data import masking
from lifeloop.data.masking import (
    ROLES,
    WITHHELD,
    AccessError,
    column_kind,
    mask_money,
    mask_money_text,
    mask_row,
    mask_value,
    money_band,
    quotable,
    role,
    viewer_role,
)


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


def test_compliance_sees_everything_masked_until_an_unmask_grant_lifts_what_it_names():
    row = {"account_id": "6222020012345678", "balance": Decimal("5.00")}
    out, masked = mask_row("holdings", row, role("compliance"))
    assert out == {"account_id": "****5678", "balance": "<1k"} and masked == ["account_id", "balance"]
    assert role("compliance").needs_reason and role("admin").needs_reason
    granted = viewer_role("compliance", {"account", "money"})
    out, masked = mask_row("holdings", row, granted)
    # even unmasked, a card number shows its first 6 and last 4 digits only (PCI DSS 3.3)
    assert out == {"account_id": "622202******5678", "balance": Decimal("5.00")} and masked == []
    assert granted.granted == {"account", "money"} and granted.name == "compliance"
    assert mask_money(Decimal("7000000.00"), viewer_role("admin", {"money"})) == 7000000.0
    assert mask_money(Decimal("7000000.00"), role("admin")) == "1m-10m"
    assert mask_money(Decimal("7000000.00"), role("analyst")) == "1m-10m"


def test_an_unmask_grant_can_lift_only_what_the_role_may_unmask_on_request():
    with pytest.raises(AccessError, match="role analyst may not unmask id_number"):
        viewer_role("analyst", {"id_number"})
    with pytest.raises(AccessError, match="role rm may not unmask id_number"):
        viewer_role("rm", {"id_number"})
    with pytest.raises(AccessError, match="did you mean 'mobile'"):
        viewer_role("admin", {"mobil"})
    assert viewer_role("rm", {"name"}) == role("rm")     # already shown: nothing to lift


@pytest.mark.parametrize("name, shown, money_exact", [
    ("analyst", set(), False), ("approver", set(), False), ("compliance", set(), False), ("admin", set(), False),
    ("rm", {"name", "mobile", "email", "birth_date", "account"}, True),
    ("branch_manager", {"name", "mobile", "email", "birth_date", "account"}, True),
])
def test_the_built_in_roles(name, shown, money_exact):
    r = role(name)
    assert r.unmasked - {"money"} == shown and r.money_exact is money_exact and "id_number" not in r.unmasked
    assert ROLES[name] is r and r.name == name


@pytest.mark.parametrize("viewer, account, shown", [
    ("rm", "6222020012345678", "622202******5678"),
    ("rm", "6222 0200 1234 5678", "622202******5678"),
    ("rm", "4111111111111", "411111***1111"),              # 13 digits: still 3 hidden
    ("rm", "6222020012345678123", "622202*********8123"),   # 19 digits
    ("rm", "ACC-00012345", "****2345"),                    # not a card: the last 4
    ("rm", "620000123456", "****3456"),                    # 12 digits: not a card either
    ("analyst", "6222020012345678", "****5678"),
    ("branch_manager", "6222020012345678", "622202******5678"),
])
def test_an_account_number_shows_at_most_a_cards_first_6_and_last_4(viewer, account, shown):
    out, _ = mask_row("transactions", {"account_id": account}, role(viewer))
    assert out["account_id"] == shown


def test_a_card_number_in_a_shown_text_is_cut_to_6_and_4_but_an_id_number_is_left_to_its_own_kind():
    out, _ = mask_row("customers", {"name": "Li 6222020012345678", "email": "6222020012345678@x.cn",
                                    "customer_id": "6222020012345678"}, role("rm"))
    assert out["name"] == "Li 622202******5678" and out["email"] == "622202******5678@x.cn"
    assert out["customer_id"] == "6222020012345678"   # C1: the bank's own customer number, shown as is


def test_c3_columns_are_dropped_for_every_role_with_every_grant(monkeypatch):
    # the canonical schema holds no C3 column (C3 is refused at ingest): declare one to hold the line
    monkeypatch.setitem(masking.PII, ("customers", "card_pin"), "C3")
    for name in ROLES:
        out, _ = mask_row("customers", {"card_pin": "1234", "city": "Ningbo"},
                          viewer_role(name, role(name).on_request))
        assert out == {"city": "Ningbo"}


@pytest.mark.parametrize("value, band", [(Decimal("-2500"), "-(1k-10k)"), (-12, "-(<1k)"), (0, "<1k"),
                                         (10_000_000, ">=10m"), (9_999.99, "1k-10k")])
def test_money_bands(value, band):
    assert money_band(value) == band


def test_money_in_a_reason_text_is_banded_for_banded_roles_only():
    text = "aum=51250.50, stage=dormant, aum_90d_ago=-1200.5, net_aum=7"
    assert mask_money_text(text, {"aum", "aum_90d_ago"}, role("analyst")) == (
        "aum=10k-100k, stage=dormant, aum_90d_ago=-(1k-10k), net_aum=7")
    assert mask_money_text(text, {"aum"}, role("rm")) == text
    assert mask_money_text(None, {"aum"}, role("analyst")) is None


def test_an_unknown_role_is_refused_with_did_you_mean():
    with pytest.raises(AccessError, match="did you mean 'analyst'"):
        role("analist")


def test_messages_quote_amounts_and_accounts_but_withhold_what_identifies_a_person():
    assert quotable("customers", "mobile", "1381234") == WITHHELD
    assert quotable("customers", "birth_date", "1990-13-01") == WITHHELD
    assert quotable("customers", "name", "李娜") == WITHHELD
    assert quotable("transactions", "amount", "30,50") == "30,50"
    assert quotable("holdings", "account_id", "A1") == "A1"
    assert quotable("customers", "city", "Ningbo") == "Ningbo" and quotable("customers", None, "x") == "x"
