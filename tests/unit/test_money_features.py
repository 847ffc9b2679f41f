"""Which features are amounts of money: inferred from the catalogue's trees, or declared with ``money:``."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from sqlglot import parse_one

import lifeloop
from lifeloop.insight.catalogue import load_catalogue
from lifeloop.insight.money import is_money, money_columns, money_tags

TEMPLATE_TAGS = Path(lifeloop.__file__).parent / "templates" / "bank" / "config" / "tags.yaml"


@pytest.fixture(scope="module")
def template_money():
    return money_tags(load_catalogue(TEMPLATE_TAGS, "config/tags.yaml"))


@pytest.mark.parametrize("tag", ["aum", "aum_90d_ago", "aum_change_90d", "avg_txn_amount_90d", "monetary_30d",
                                 "inflow_90d", "net_flow_30d", "salary_amount_3m", "loan_balance", "card_balance"])
def test_the_templates_amounts_are_money(template_money, tag):
    assert tag in template_money


@pytest.mark.parametrize("tag", ["aum_change_pct_90d", "frequency_30d", "recency_90d", "payroll_flag",
                                 "salary_regularity_6m", "products_held", "digital_share_90d", "age"])
def test_ratios_counts_flags_and_days_are_not(template_money, tag):
    assert tag not in template_money


@pytest.mark.parametrize("expression, money", [
    ("aum - loan", True), ("aum * 0.1", True), ("aum / 12", True), ("aum / loan", False), ("aum * loan", False),
    ("coalesce(aum, 0)", True), ("CASE WHEN n > 3 THEN aum ELSE 0 END", True), ("aum > 1000", False),
    ("CASE WHEN aum > 1000 THEN 1 ELSE 0 END", False), ("safe_divide(aum, n)", True), ("safe_divide(aum, loan)", False),
    ("greatest(aum, loan)", True), ("n + 1", False), ("count(aum)", False), ("sum(aum)", True), ("avg(aum)", True),
])
def test_the_inference_rules(expression, money):
    assert is_money(parse_one(expression, read="duckdb"), frozenset({"aum", "loan"})) is money


def test_a_declaration_overrides_the_inference(tmp_path):
    path = tmp_path / "tags.yaml"
    path.write_text("""version: 1
tags:
  - name: spend
    label: {zh: 消费, en: Spend}
    description: d
    type: DOUBLE
    source: transactions
    aggregate: sum(amount)
    money: false
  - name: txn_count
    label: {zh: 笔数, en: Count}
    description: d
    type: INTEGER
    source: transactions
    aggregate: count(*)
    money: true
  - name: biggest
    label: {zh: 最大, en: Biggest}
    description: d
    type: DOUBLE
    source: transactions
    aggregate: max(amount)
""", encoding="utf-8")
    assert money_tags(load_catalogue(path)) == {"txn_count", "biggest"}


def test_money_columns_take_every_two_decimal_column_and_without_a_catalogue_every_fraction():
    types = {"aum": pa.decimal128(18, 2), "share": pa.float64(), "n": pa.int32(), "avg_amt": "DOUBLE",
             "score": "DECIMAL(18,4)"}
    assert money_columns(types, frozenset({"avg_amt"})) == {"aum", "avg_amt"}
    assert money_columns(types, None) == {"aum", "share", "avg_amt", "score"}
