"""Model monitoring: PSI by hand and its standard readings, missing inputs, the calibration interval."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from lifeloop.config.shelf import ModelSpec
from lifeloop.models import monitor
from lifeloop.models.churn import ChurnScorecard


def test_psi_of_four_bins_matches_the_hand_computation():
    e, a = [0.25, 0.25, 0.25, 0.25], [0.1, 0.2, 0.3, 0.4]
    hand = ((0.1 - 0.25) * math.log(0.1 / 0.25) + (0.2 - 0.25) * math.log(0.2 / 0.25)
            + (0.3 - 0.25) * math.log(0.3 / 0.25) + (0.4 - 0.25) * math.log(0.4 / 0.25))
    assert monitor.psi_from_shares(e, a) == pytest.approx(hand) == pytest.approx(0.228218, abs=1e-6)
    # an empty bin counts 0.0001: (0.0001 - 0.5) ln(0.0001 / 0.5) + (1 - 0.5) ln(1 / 0.5)
    assert monitor.psi_from_shares([0.5, 0.5], [0.0, 1.0]) == pytest.approx(
        (1e-4 - 0.5) * math.log(1e-4 / 0.5) + 0.5 * math.log(2))


def test_the_readings_use_the_standard_thresholds():
    assert [monitor.reading(v) for v in (0.0, 0.0999, 0.1, 0.2499, 0.25, 1.0)] == [
        "stable", "stable", "moderate shift", "moderate shift", "significant shift", "significant shift"]


def test_psi_over_deciles_of_the_reference_with_missing_values_in_a_bin_of_their_own():
    ref = np.arange(100, dtype=float)                 # deciles: 10 per bin
    assert monitor.psi(ref, ref) == 0.0
    moved = np.r_[np.arange(50, dtype=float), np.full(50, np.nan)]   # half the values go missing
    shares = monitor.shares(moved, monitor.reference_edges(ref))
    assert shares[-1] == 0.5 and shares[:5].tolist() == pytest.approx([0.1] * 5)
    # bins 0-4 unchanged, bins 5-9 from 0.1 to 0.0001, the missing bin from 0.0001 to 0.5
    hand = 5 * (1e-4 - 0.1) * math.log(1e-4 / 0.1) + (0.5 - 1e-4) * math.log(0.5 / 1e-4)
    assert monitor.psi(ref, moved) == pytest.approx(hand)
    rng = np.random.default_rng(0)
    base = rng.normal(size=20000)
    assert monitor.psi(base, rng.normal(size=20000)) < 0.01
    # for a normal shifted by d standard deviations PSI is close to d squared: 0.16 and 1.0
    assert monitor.reading(monitor.psi(base, rng.normal(0.4, 1, 20000))) == "moderate shift"
    assert monitor.reading(monitor.psi(base, rng.normal(1.0, 1, 20000))) == "significant shift"


def test_the_wilson_interval_matches_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    for k, n in ((0, 20), (7, 50), (400, 1000)):
        assert monitor.wilson(k, n) == pytest.approx(proportion_confint(k, n, method="wilson"), abs=1e-9)


def test_drift_flags_a_shifted_input_an_input_gone_missing_and_an_absent_one():
    rng = np.random.default_rng(1)
    n = 4000
    X = np.column_stack([rng.normal(size=n), rng.normal(size=n)])
    y = (rng.random(n) < 1 / (1 + np.exp(-(2 * X[:, 0] - 2)))).astype(int)
    model = ChurnScorecard(ModelSpec(name="churn", features=("a", "b"))).fit(X, y)
    reference = pa.table({"customer_id": [str(i) for i in range(n)], "a": X[:, 0], "b": X[:, 1]})
    b_now = X[:, 1].copy()
    b_now[: n // 4] = np.nan
    now = pa.table({"customer_id": [str(i) for i in range(n)], "a": X[:, 0] + 1.0, "b": b_now})
    found = monitor.drift(model, reference, now)
    by = {r["feature"]: r for r in found["inputs"]}
    assert by["a"]["reading"] == "significant shift" and by["b"]["missing_now"] == 0.25
    assert found["score"]["reading"] == "significant shift"
    assert any("input b: 25% missing now, 0% in training" in a for a in found["alerts"])
    gone = monitor.drift(model, reference, now.drop_columns(["b"]))
    assert gone["score"] is None and "input b is not in the day's features" in gone["alerts"][-1]
