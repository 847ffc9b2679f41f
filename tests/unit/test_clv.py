"""CLV models: the RFM summary by hand, P(alive) and spend by hand, save/load, CLV, and recovery from simulation."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pyarrow as pa
import pytest

from lifeloop.errors import ConfigError, DataError, NotFoundError
from lifeloop.models.clv import (
    FORMAT_VERSION,
    BetaGeoModel,
    GammaGammaModel,
    customer_lifetime_value,
    load_model,
    rfm_summary,
    score_customers,
)
from lifeloop.models.clv.value import per_period_rate
from tests.unit.clv_factories import simulate_bgnbd, simulate_gamma_gamma

# the published CDNOW fits (FHL 2005; Fader & Hardie 2013), used here as known parameters
CDNOW_BG = {"r": 0.2426, "alpha": 4.4135, "a": 0.7929, "b": 2.4258}
CDNOW_GG = {"p": 6.2488, "q": 3.7446, "gamma": 15.4477}
D = dt.date


def _transactions() -> pa.Table:
    # A: first on 1 Jan, two purchases on 8 Jan (one transaction of 30), one on 22 Jan, one after the window
    # B: one purchase only; C: first purchase in the holdout (left out); D: only after observation_end
    rows = [("A", D(2024, 1, 1), 10.0), ("A", D(2024, 1, 8), 20.0), ("A", D(2024, 1, 8), 10.0),
            ("A", D(2024, 1, 22), 50.0), ("A", D(2024, 2, 5), 7.0), ("B", D(2024, 1, 15), 5.0),
            ("C", D(2024, 2, 1), 9.0), ("D", D(2024, 3, 1), 1.0)]
    return pa.table({"customer_id": [r[0] for r in rows], "day": [r[1] for r in rows],
                     "amount": [r[2] for r in rows]})


def test_the_rfm_summary_of_a_tiny_table_follows_the_cdnow_conventions():
    s = rfm_summary(_transactions(), "customer_id", "day", "amount", observation_end=D(2024, 2, 29),
                    calibration_end=D(2024, 1, 28)).to_pylist()
    assert [r["customer_id"] for r in s] == ["A", "B"]
    a, b = s
    # same-day purchases are one transaction; the first purchase is not a repeat
    assert a["frequency"] == 2 and a["recency"] == pytest.approx(21 / 7) and a["T"] == pytest.approx(27 / 7)
    assert a["monetary_value"] == pytest.approx((30 + 50) / 2)
    assert ((a["frequency_holdout"], a["monetary_value_holdout"], a["duration_holdout"])
            == (1, 7.0, pytest.approx(32 / 7)))
    assert (b["frequency"], b["recency"], b["monetary_value"]) == (0, 0.0, 0.0)
    assert b["T"] == pytest.approx(13 / 7)


def test_without_a_calibration_end_the_window_is_the_whole_observation_in_days():
    s = rfm_summary(_transactions(), "customer_id", "day", "amount", observation_end=D(2024, 2, 29), period="D")
    by_id = {r["customer_id"]: r for r in s.to_pylist()}
    assert set(by_id) == {"A", "B", "C"} and "frequency_holdout" not in s.column_names
    assert (by_id["A"]["frequency"], by_id["A"]["recency"], by_id["A"]["T"]) == (3, 35.0, 59.0)


def test_the_rfm_summary_names_a_missing_column_and_locates_bad_amounts():
    with pytest.raises(DataError, match="Required column customer_id missing"):
        rfm_summary(_transactions().rename_columns(["id", "day", "amount"]), "customer_id", "day", "amount",
                    observation_end=D(2024, 2, 29))
    bad = _transactions().set_column(2, "amount", pa.array([1.0, -2.0, 1, 1, 1, 1, 1, 1]))
    with pytest.raises(DataError, match="1 negative") as e:
        rfm_summary(bad, "customer_id", "day", "amount", observation_end=D(2024, 2, 29))
    assert (e.value.problems[0].row, e.value.problems[0].column) == (2, "amount")
    with pytest.raises(ConfigError, match="Unknown period 'M'"):
        rfm_summary(_transactions(), "customer_id", "day", "amount", observation_end=D(2024, 2, 29), period="M")


def test_p_alive_is_one_without_repeats_and_matches_a_hand_computation_otherwise():
    model = BetaGeoModel(CDNOW_BG)
    assert model.p_alive(0, 0.0, 38.86) == 1.0
    # FHL's CDNOW customer x = 2, t_x = 30.43, T = 38.86, by hand from the P(alive) formula
    r, alpha, a, b = CDNOW_BG.values()
    odds = a / (b + 2 - 1) * ((alpha + 38.86) / (alpha + 30.43)) ** (r + 2)
    assert model.p_alive(2, 30.43, 38.86) == pytest.approx(1 / (1 + odds), rel=1e-12)
    assert model.p_alive(2, 30.43, 38.86) == pytest.approx(0.7266, abs=1e-4)
    # the longer a buyer has been silent, the less likely still active
    assert model.p_alive(2, 30.43, 60.0) < model.p_alive(2, 30.43, 38.86)


def test_expected_transactions_reproduce_the_published_figure_for_the_textbook_customer():
    # FHL 2005, section 4: E[Y(39) | x = 2, t_x = 30.43, T = 38.86] = 1.226 at the CDNOW parameters
    assert BetaGeoModel(CDNOW_BG).expected_transactions(39, 2, 30.43, 38.86) == pytest.approx(1.226, abs=5e-4)
    # a new customer's E[X(t)] grows with t and is 0 at 0
    new = BetaGeoModel(CDNOW_BG).expected_transactions_new([0.0, 39.0, 78.0])
    assert new[0] == 0 and 0 < new[1] < new[2]


def test_gamma_gamma_expected_spend_is_a_weighted_mean_of_the_population_and_the_customer():
    model = GammaGammaModel(CDNOW_GG)
    p, q, gamma = CDNOW_GG.values()
    assert model.expected_spend(0, 0.0) == pytest.approx(p * gamma / (q - 1)) == pytest.approx(model.mean_spend())
    w = p * 3 / (p * 3 + q - 1)   # the weight of the customer's own mean after 3 repeats
    assert model.expected_spend(3, 50.0) == pytest.approx((1 - w) * model.mean_spend() + w * 50.0)


def test_clv_without_discount_is_expected_purchases_times_expected_spend_and_discounting_lowers_it():
    bg, gg = BetaGeoModel(CDNOW_BG), GammaGammaModel(CDNOW_GG)
    args = ([2, 0], [30.43, 0.0], [38.86, 38.86], [40.0, 0.0])
    flat = customer_lifetime_value(bg, gg, *args, horizon=52, discount_rate=0.0, step=4)
    expected = bg.expected_transactions(52, *args[:3]) * gg.expected_spend(args[0], args[3])
    assert flat == pytest.approx(expected, rel=1e-12)
    discounted = customer_lifetime_value(bg, gg, *args, horizon=52, discount_rate=per_period_rate(0.10))
    assert np.all(discounted < flat) and np.all(discounted > 0.9 * flat)
    assert per_period_rate(0.10) == pytest.approx(1.1 ** (7 / 365.25) - 1)
    with pytest.raises(ConfigError, match="Invalid CLV options"):
        customer_lifetime_value(bg, gg, *args, horizon=0, discount_rate=0.01)


def test_the_score_table_has_one_row_per_customer_with_every_measure():
    s = rfm_summary(_transactions(), "customer_id", "day", "amount", observation_end=D(2024, 2, 29))
    scores = score_customers(s, BetaGeoModel(CDNOW_BG), GammaGammaModel(CDNOW_GG), t=4, horizon=52,
                             discount_rate=0.002)
    assert scores.column_names == ["customer_id", "expected_transactions", "p_alive", "expected_spend", "clv"]
    assert scores["customer_id"].to_pylist() == ["A", "B", "C"] and scores["p_alive"][1].as_py() == 1.0


def test_fitting_names_a_missing_column_and_refuses_a_recency_after_the_age():
    with pytest.raises(DataError, match="Required column frequency missing"):
        BetaGeoModel.fit({"recency": [1.0], "T": [2.0]})
    with pytest.raises(DataError, match="later than the customer's age") as e:
        BetaGeoModel.fit({"frequency": [1, 1], "recency": [1.0, 3.0], "T": [2.0, 2.0]})
    assert e.value.problems[0].row == 2
    with pytest.raises(DataError, match="mean spend <= 0"):
        GammaGammaModel.fit({"frequency": [1, 2], "monetary_value": [10.0, 0.0]})


def test_a_saved_model_loads_identically_and_a_format_version_mismatch_is_refused(tmp_path):
    sim = simulate_bgnbd(2_000, **CDNOW_BG, t_min=30, t_max=39, seed=3)
    model = BetaGeoModel.fit(sim, window={"calibration_start": "1997-01-01", "calibration_end": "1997-09-30"})
    path = model.save(tmp_path / "bg.json")
    again = load_model(path)
    assert isinstance(again, BetaGeoModel) and again.params == model.params
    assert again.save(tmp_path / "again.json").read_bytes() == path.read_bytes()
    doc = json.loads(path.read_text())
    assert doc["units"] == "weeks" and doc["data_hash"].startswith("sha256:") and "scipy" in doc["versions"]
    doc["format_version"] = FORMAT_VERSION + 1
    (tmp_path / "future.json").write_text(json.dumps(doc))
    with pytest.raises(DataError, match="model format version 2; this Lifeloop .* reads version 1"):
        load_model(tmp_path / "future.json")
    with pytest.raises(DataError, match="holds a 'bg_nbd' model, not 'gamma_gamma'"):
        GammaGammaModel.load(path)
    with pytest.raises(DataError, match="fitted in weeks, not days"):
        BetaGeoModel.load(path, units="days")
    with pytest.raises(NotFoundError):
        load_model(tmp_path / "missing.json")


@pytest.mark.slow
def test_bgnbd_parameters_simulated_from_known_values_are_recovered_within_5_percent():
    # 50,000 customers over one to three years: b's standard error is ~2%, so 5% is ~2.5 standard
    # errors (at 20,000 CDNOW-like customers it is ~10%, and recovery within 5% would be luck)
    truth = {"r": 0.8, "alpha": 1.0, "a": 0.6, "b": 6.0}
    model = BetaGeoModel.fit(simulate_bgnbd(50_000, **truth, t_min=52, t_max=156, seed=7))
    for name, value in truth.items():
        assert model.params[name] == pytest.approx(value, rel=0.05), name
        assert abs(model.params[name] - value) < 3 * model.standard_errors[name], name


@pytest.mark.slow
def test_gamma_gamma_parameters_simulated_from_known_values_are_recovered_within_5_percent():
    # gamma is the least identified (its product with p sets the mean spend): 100,000 buyers put its
    # standard error near 1.5%, so 5% is over 3 standard errors
    truth = {"p": 1.0, "q": 4.0, "gamma": 10.0}
    model = GammaGammaModel.fit(simulate_gamma_gamma(100_000, **truth, mean_repeats=10, seed=11))
    for name, value in truth.items():
        assert model.params[name] == pytest.approx(value, rel=0.05), name
        assert abs(model.params[name] - value) < 3 * model.standard_errors[name], name
    assert model.n_customers == 100_000 and math.isfinite(model.fit_info["corr_frequency_monetary"])
