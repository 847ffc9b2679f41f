"""CLV on CDNOW: the published BG/NBD and Gamma-Gamma fits reproduced from the raw transactions and the summary."""

from __future__ import annotations

import csv
import datetime as dt

import pyarrow as pa
import pytest

from lifeloop.models.clv import BetaGeoModel, GammaGammaModel, load_model, rfm_summary
from tests.factories import REPO

CDNOW = REPO / ".." / "shared" / "data" / "cdnow"
pytestmark = pytest.mark.skipif(not (CDNOW / "CDNOW_sample.txt").exists(),
                                reason="CDNOW data not found at ../shared/data/cdnow (see its SOURCE.md)")

# Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way", on the 2,357-customer 1/10 sample,
# 39-week calibration; Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value", same customers
PUBLISHED_BG = {"r": 0.2426, "alpha": 4.4135, "a": 0.7929, "b": 2.4258}
PUBLISHED_LL = -9582.43
PUBLISHED_GG = {"p": 6.2488, "q": 3.7446, "gamma": 15.4477}
CALIBRATION_END, OBSERVATION_END = dt.date(1997, 9, 30), dt.date(1998, 6, 30)


def _sample() -> pa.Table:
    """CDNOW_sample.txt: master id, sample id, YYYYMMDD, CDs, dollars (whitespace-separated, no header)."""
    ids, days, amounts = [], [], []
    for line in (CDNOW / "CDNOW_sample.txt").read_text().splitlines():
        _master, sample_id, ymd, _cds, dollars = line.split()
        ids.append(sample_id)
        days.append(dt.date(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:])))
        amounts.append(float(dollars))
    return pa.table({"customer_id": ids, "date": days, "amount": amounts})


@pytest.fixture(scope="module")
def summary() -> pa.Table:
    return rfm_summary(_sample(), "customer_id", "date", "amount", observation_end=OBSERVATION_END,
                       calibration_end=CALIBRATION_END)


def _published_summary() -> dict[str, list[float]]:
    with (CDNOW / "cdnow_customers_summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    return {"ID": [r["ID"] for r in rows], **{k: [float(r[k]) for r in rows] for k in ("frequency", "recency", "T")}}


def test_our_rfm_summary_of_the_raw_sample_is_the_published_calibration_summary(summary):
    published = _published_summary()
    assert summary.num_rows == 2_357 and [int(i) for i in summary["customer_id"].to_pylist()] == \
        [int(i) for i in published["ID"]]
    assert summary["frequency"].to_pylist() == published["frequency"]
    for ours, theirs in ((summary["recency"], published["recency"]), (summary["T"], published["T"])):
        assert max(abs(a - b) for a, b in zip(ours.to_pylist(), theirs, strict=True)) <= 0.005  # rounded to 2 dp
    freq = summary["frequency"].to_pylist()
    assert sum(f > 0 for f in freq) == 946 and sum(freq) == 2_457     # repeaters and repeat transactions (FHL)


@pytest.mark.parametrize("source", ["published summary", "raw transactions"])
def test_bgnbd_reproduces_the_published_cdnow_parameters_and_log_likelihood(source, summary):
    data = _published_summary() if source == "published summary" else summary
    model = BetaGeoModel.fit(data)
    for name, value in PUBLISHED_BG.items():
        assert model.params[name] == pytest.approx(value, rel=1e-3), name
    assert model.log_likelihood == pytest.approx(PUBLISHED_LL, abs=0.01)
    assert model.n_customers == 2_357


def test_gamma_gamma_reproduces_the_published_cdnow_parameters_on_the_946_repeaters(summary):
    model = GammaGammaModel.fit(summary)
    assert model.n_customers == 946
    for name, value in PUBLISHED_GG.items():
        assert model.params[name] == pytest.approx(value, rel=1e-3), name


def test_a_cdnow_fit_saved_and_loaded_predicts_the_same(summary, tmp_path):
    model = BetaGeoModel.fit(summary, window={"calibration_start": "1997-01-01", "calibration_end": "1997-09-30"})
    again = load_model(model.save(tmp_path / "bg_nbd.json"), units="weeks")
    assert again.window["calibration_end"] == "1997-09-30" and again.data_hash == model.data_hash
    assert (again.predict(summary, t=39)["expected_transactions"]
            == model.predict(summary, t=39)["expected_transactions"]).all()
