"""What `lifeloop models fit|show` print for an uplift model (a manifest as the uplift test on the simulated
bank wrote it) and what `models monitor` prints for a drifted model."""

from __future__ import annotations

from rich.console import Console

from lifeloop.cli.models import print_monitor, print_validation, trained_on

WINDOW = {"control": 1394, "control_converted": 12, "entries": 2784, "entries_from": "2024-10-26",
          "entries_to": "2024-10-26", "outcomes_as_of": "2024-11-18", "treated": 1390, "treated_converted": 152}
VALIDATION = {"method": "random customers (the entries span too few days for an out-of-time test)",
              "test": {**WINDOW, "entries": 847},
              "model": {"qini": {"ci95": [0.000733, 0.008307], "value": 0.004533},
                        "auuc_vs_random": {"ci95": [0.000646, 0.015806], "value": 0.008542},
                        "uplift_top30": {"ci95": [0.085666, 0.179103], "value": 0.139287}}}


def printed(fn, *args) -> str:
    console = Console(record=True, width=200)
    fn(console, *args)
    return console.export_text()


def test_an_uplift_model_is_described_by_its_entries_and_its_qini():
    assert trained_on({"training_window": WINDOW, "offer": "TD1Y"}) == (
        "2,784 entries of offer TD1Y from 2024-10-26 to 2024-10-26 (1,390 treated, 1,394 control; outcomes as of "
        "2024-11-18)")
    text = printed(print_validation, VALIDATION)
    assert "Validation on held-out entries (random customers" in text and "847 entries" in text
    assert "qini 0.0045 [0.0007, 0.0083]" in text and "uplift_top30 0.1393 [0.0857, 0.1791]" in text


def test_the_monitor_report_prints_each_input_the_calibration_and_the_alerts():
    report = {"model": "churn", "version": "v2", "features_as_of": "2024-12-30", "reference": "2024-09-23",
              "score": {"psi": 0.31, "reading": "significant shift"},
              "inputs": [{"feature": "aum", "psi": 0.02, "reading": "stable", "missing_now": 0.0,
                          "missing_reference": 0.0},
                         {"feature": "age", "psi": None, "reading": "absent", "missing_now": None,
                          "missing_reference": None}],
              "calibration": [{"scored_on": "2024-09-23", "predicted": 0.041, "observed": 0.08,
                               "observed_ci95": [0.06, 0.1], "customers": 1432, "calibrated": False}],
              "alerts": ["score: PSI 0.310 (significant shift)"]}
    text = printed(print_monitor, report)
    assert "score PSI 0.310 (significant shift)" in text and "age" in text and "absent" in text
    assert "predicted 0.041, observed 0.080 [0.060, 0.100] over 1,432 customers  << outside" in text
    assert "ALERT score: PSI 0.310" in text


def test_a_clv_model_is_described_by_its_calibration_and_holdout():
    window = {"calibration_end": "2024-08-01", "holdout_until": "2024-10-30", "batches_read": ["2024-08-01"]}
    assert trained_on({"training_window": window}) == ("transactions until 2024-08-01, validated on those until "
                                                       "2024-10-30")
    text = printed(print_validation, {"customers": 452, "holdout_weeks": 12.857, "predicted_transactions": 1234.56,
                                      "observed_transactions": 1300, "mean_absolute_error": 1.5, "correlation": 0.8,
                                      "mean_p_alive": 0.9, "share_transacting_in_holdout": 0.85})
    assert "Holdout validation (12.9 weeks, 452 customers): predicted 1,234.6 repeat transactions, observed 1,300" \
        in text
