"""config/tags.yaml: the feature catalogue is checked before anything runs; errors name file, line and tag."""

from __future__ import annotations

import pytest

from lifeloop.errors import ConfigError, RuleError
from lifeloop.insight.catalogue import load_catalogue
from lifeloop.workspace import template_root

FILE = "config/tags.yaml"


def catalogue(body: str):
    return load_catalogue(FILE, FILE, text="version: 1\ntags:\n" + body)


def refused(body: str, error=ConfigError) -> str:
    with pytest.raises(error) as info:
        catalogue(body)
    return info.value.render()


FREQ = """
  - name: frequency_{window}d
    label: {zh: "近{window}天交易笔数", en: "Transactions ({window}d)"}
    description: Own transactions in the last {window} days.
    type: INTEGER
    source: transactions
    aggregate: count(*)
    where: customer_initiated
    windows: [30, 90]
"""


def tag(name: str, **fields: str) -> str:
    lines = [f"  - name: {name}", '    label: {zh: "标签", en: "Tag"}', "    description: A tag."]
    lines += [f"    {k}: {v}" for k, v in fields.items()]
    return "\n".join(lines) + "\n"


def test_the_default_catalogue_loads_with_every_tag_labelled_in_chinese_and_english():
    cat = load_catalogue(template_root("bank") / "config" / "tags.yaml", FILE)
    assert len(cat.tags) >= 40
    for expected in ("recency_30d", "frequency_365d", "monetary_90d", "aum", "aum_change_90d", "payroll_flag",
                     "digital_share_90d", "salary_regularity_6m", "inflow_30d", "outflow_30d", "age",
                     "tenure_days", "days_since_last_txn", "wealth_count", "loan_count"):
        assert expected in cat.by_name, expected
    for t in cat.tags:
        assert t.label_zh and t.label_en and t.description and "{window}" not in t.label_zh + t.name


def test_windows_make_one_tag_per_window_named_and_labelled_by_the_window():
    cat = catalogue(FREQ)
    assert cat.names == ["frequency_30d", "frequency_90d"]
    assert cat.by_name["frequency_90d"].label_zh == "近90天交易笔数"
    assert cat.by_name["frequency_90d"].window == 90 and cat.by_name["frequency_30d"].line == 4


def test_an_unknown_source_is_named_with_its_line_and_a_suggestion():
    text = refused(tag("n", type="INTEGER", source="transaction", aggregate="count(*)"))
    assert "config/tags.yaml:7 tag n: unknown source 'transaction'" in text
    assert "did you mean 'transactions'" in text


def test_an_expression_using_an_unknown_tag_gets_a_did_you_mean_with_its_line():
    text = refused(FREQ + tag("busy", type="BOOLEAN", expression="frequncy_30d > 3"), RuleError)
    assert text.startswith("config/tags.yaml:16 tag busy: unknown column 'frequncy_30d'")
    assert "did you mean 'frequency_30d'" in text


def test_tags_that_refer_to_each_other_in_a_cycle_are_refused_with_their_lines():
    text = refused(tag("a", type="INTEGER", expression="b + 1") + tag("b", type="INTEGER", expression="a + 1"))
    assert "tags refer to each other in a cycle: a (line 3), b (line 8)" in text


def test_a_tag_defined_by_itself_is_refused():
    assert "uses the tag itself" in refused(tag("a", type="INTEGER", expression="a + 1"))


def test_a_subquery_in_an_aggregate_is_refused_before_anything_runs():
    text = refused(tag("n", type="INTEGER", source="transactions",
                       aggregate='"(SELECT count(*) FROM customers)"'), RuleError)
    assert "config/tags.yaml:8 tag n" in text and "not allowed" in text


def test_a_where_rule_that_is_not_true_or_false_is_refused():
    text = refused(tag("n", type="INTEGER", source="transactions", aggregate="count(*)", where="amount"), RuleError)
    assert "config/tags.yaml:9 tag n" in text and "must be true or false" in text


def test_a_double_declared_as_decimal_is_refused_because_engines_round_it_differently():
    text = refused(tag("avg_amount", type="DECIMAL(18,2)", source="transactions", aggregate="avg(amount)"))
    assert "declared DECIMAL(18,2)" in text and "declare the tag DOUBLE" in text


def test_a_text_value_cannot_be_declared_a_number():
    text = refused(tag("c", type="INTEGER", expression="city"))
    assert "the value is VARCHAR but the tag is declared INTEGER" in text


def test_windows_on_a_snapshot_source_are_refused():
    text = refused(tag("b_{window}d", type="DECIMAL(18,2)", source="holdings", aggregate="sum(balance)",
                       windows="[30]"))
    assert "snapshot, so it has no day windows" in text and "as_of_offset_days" in text


def test_an_offset_on_dated_rows_is_refused():
    text = refused(tag("n", type="INTEGER", source="transactions", aggregate="count(*)", as_of_offset_days="90"))
    assert "as_of_offset_days applies to snapshot sources" in text


def test_a_typo_in_a_key_names_the_line_and_the_right_key():
    text = refused(FREQ.replace("windows:", "windw:"))
    assert "config/tags.yaml:11" in text and "did you mean 'windows'" in text


def test_windows_need_the_window_in_the_name():
    assert "needs {window} in its name" in refused(FREQ.replace("frequency_{window}d", "frequency"))


def test_a_tag_needs_an_expression_or_a_source_and_an_aggregate():
    assert "needs either expression, or source and aggregate" in refused(tag("n", type="INTEGER",
                                                                             source="transactions"))
    assert "cannot also have source" in refused(tag("n", type="INTEGER", source="transactions",
                                                    expression="1"))


def test_an_unknown_type_is_refused_with_the_allowed_ones():
    assert "unknown type 'MONEY'" in refused(tag("n", type="MONEY", expression="1"))


def test_a_repeated_name_points_at_the_first_one():
    text = refused(tag("n", type="INTEGER", expression="1") + tag("n", type="INTEGER", expression="2"))
    assert "config/tags.yaml:8 tag n: the name is already used by the tag on line 3" in text


def test_a_tag_named_like_a_customer_column_is_refused():
    assert "is a customer column" in refused(tag("city", type="VARCHAR", expression="lower(city)"))


def test_expression_tags_are_layered_in_dependency_order():
    cat = catalogue(FREQ + tag("c", type="DOUBLE", expression="b * 2") + tag("b", type="DOUBLE",
                                                                              expression="frequency_30d / 2"))
    assert cat.layers == (("b",), ("c",))
    assert cat.names[-2:] == ["c", "b"]  # output keeps the file's order


def test_docs_list_every_default_tag_with_its_chinese_label():
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "features.md").read_text(encoding="utf-8")
    cat = load_catalogue(template_root("bank") / "config" / "tags.yaml", FILE)
    missing = [t.name for t in cat.tags if f"| `{t.name}` | {t.label_zh} | {t.type} |" not in doc]
    assert not missing, f"docs/features.md does not list {missing}"
