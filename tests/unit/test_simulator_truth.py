"""The response truth is configurable, strict about typos, and answers for the effect of contacts."""

import shutil
from pathlib import Path

import pytest

from lifeloop.data.simulator import SimulatedBank, simulate
from lifeloop.data.simulator.response import DEFAULT_TRUTH, CompiledTruth, load_truth
from lifeloop.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def bank_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("truthbank")
    simulate(out, customers=600, days=20, seed=3)
    return out


def active_customers(out: Path, n: int) -> list[str]:
    import pyarrow.parquet as pq

    t = pq.read_table(out / "_truth" / "customers.parquet").to_pylist()
    return [r["customer_id"] for r in t if r["stage"] in ("mature", "growing")][:n]


def test_the_default_truth_has_an_offer_that_does_nothing_and_a_channel_that_annoys():
    truth = load_truth()
    assert any(o.uplift == 0 for o in truth.offers.values())
    assert any(c.annoys_after is not None and c.annoyed_uplift < 0 for c in truth.channels.values())


def test_a_typo_in_the_truth_names_the_file_line_and_field(tmp_path):
    bad = tmp_path / "truth.yaml"
    bad.write_text(DEFAULT_TRUTH.read_text(encoding="utf-8").replace("    base_rate: 0.02\n    uplift: 0.04",
                                                                      "    base_rat: 0.02\n    uplift: 0.04"),
                   encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_truth(bad)
    text = err.value.render()
    line = next(i for i, l in enumerate(bad.read_text().splitlines(), 1) if "base_rat:" in l)
    assert f"truth.yaml:{line}, field offers.WM090.base_rat: unknown key 'base_rat'; did you mean 'base_rate'?" in text


def test_an_offer_for_a_product_the_bank_does_not_sell_is_refused(tmp_path):
    bad = tmp_path / "truth.yaml"
    bad.write_text(DEFAULT_TRUTH.read_text(encoding="utf-8").replace("product_id: TD1Y", "product_id: TD9Y"),
                   encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown product_id 'TD9Y'"):
        load_truth(bad)


def test_stage_and_tier_factors_multiply_the_base_rate_and_the_uplift():
    t = CompiledTruth(load_truth())
    k = t.index["WM090"]
    # WM090: base 0.02 x honeymoon 1.0 x wealth 2.5; uplift 0.04 x honeymoon 1.5 x wealth 1.3
    assert t.base[k, 2, 2] == pytest.approx(0.02 * 1.0 * 2.5)
    assert t.uplift[k, 2, 2] == pytest.approx(0.04 * 1.5 * 1.3)
    assert t.base[k, 7].max() == 0 and t.uplift[k, 7].max() == 0   # churned customers never convert


def test_the_expected_effect_of_an_offer_that_does_nothing_is_zero(bank_dir):
    bank = SimulatedBank.open(bank_dir)
    ids = active_customers(bank_dir, 50)
    eff = bank.expected_effect([{"customer_id": c, "offer": "INS_HEALTH", "channel": "rm", "treated": True}
                                for c in ids])
    assert eff.incremental_conversions == 0 and eff.incremental_money == 0


def test_control_rows_have_no_expected_effect_and_treated_rows_do(bank_dir):
    bank = SimulatedBank.open(bank_dir)
    ids = active_customers(bank_dir, 40)
    rows = [{"customer_id": c, "offer": "WM090", "channel": "sms", "treated": i % 2 == 0} for i, c in enumerate(ids)]
    eff = bank.expected_effect(rows).rows.to_pylist()
    assert all(r["incremental_conversions"] == 0 for r in eff if not r["treated"])
    assert all(r["incremental_conversions"] > 0 for r in eff if r["treated"])
    for r in eff:
        assert r["incremental_money"] == pytest.approx(r["incremental_conversions"] * r["amount"])


def test_the_third_call_in_thirty_days_annoys_the_customer(tmp_path, bank_dir):
    out = tmp_path / "bank"
    shutil.copytree(bank_dir, out)
    bank = SimulatedBank.open(out)
    ids = active_customers(out, 30)
    # two calls on two days for one offer, then a third call about another offer
    bank.advance([{"customer_id": c, "offer": "WM090", "channel": "call", "treated": True} for c in ids])
    bank.advance([{"customer_id": c, "offer": "FD_BOND", "channel": "call", "treated": True} for c in ids])
    third = [{"customer_id": c, "offer": "TD1Y", "channel": "call", "treated": True} for c in ids]
    rows = bank.expected_effect(third).rows.to_pylist()
    # annoyed_uplift -0.02 replaces the uplift: p = max(0, base - 0.02)
    for r in rows:
        assert r["expected_probability"] == pytest.approx(max(0.0, r["base_probability"] - 0.02))
        assert r["incremental_conversions"] <= 0
    assert sum(r["incremental_conversions"] for r in rows) < 0
    # the same offer by SMS (a channel that does not annoy) still helps
    sms = bank.expected_effect([{**r, "channel": "sms"} for r in third])
    assert sms.incremental_conversions > 0


def test_contacts_with_unknown_customers_offers_and_channels_are_reported_by_row(bank_dir):
    bank = SimulatedBank.open(bank_dir)
    with pytest.raises(DataError) as err:
        bank.expected_effect([{"customer_id": "C000000001", "offer": "WM09", "channel": "sms", "treated": True},
                              {"customer_id": "X1", "offer": "WM090", "channel": "fax", "treated": False}])
    e = err.value
    assert e.total == 3
    assert [(p.row, p.column) for p in e.problems] == [(1, "offer"), (2, "customer_id"), (2, "channel")]
    assert "did you mean 'WM090'" in e.problems[0].message


def test_an_offer_can_be_named_by_its_product_id(bank_dir):
    bank = SimulatedBank.open(bank_dir)
    ids = active_customers(bank_dir, 5)
    by_offer = bank.expected_effect([{"customer_id": c, "offer": "CC_STD", "channel": "sms", "treated": True}
                                     for c in ids])
    assert by_offer.incremental_conversions > 0
