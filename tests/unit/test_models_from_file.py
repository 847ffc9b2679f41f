"""Bring your own table: `lifeloop models fit --from-file` on CSV and Parquet with categories and gaps."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score
from typer.testing import CliRunner

from lifeloop.cli.app import app
from lifeloop.errors import DataError
from lifeloop.models.from_file import fit_from_file, lift_table


def bank_table(n: int = 1500, seed: int = 0) -> pa.Table:
    """Churn depends on a category (city) and a number with gaps (balance); an id column carries nothing."""
    rng = np.random.default_rng(seed)
    city = rng.choice(["北京", "上海", "深圳", "成都"], n)
    balance = rng.lognormal(10, 1, n)
    logit = -1.0 + 1.8 * (city == "成都") - 0.8 * (np.log(balance) - 10)
    churned = rng.random(n) < 1 / (1 + np.exp(-logit))
    balance_seen = [None if rng.random() < 0.15 else float(b) for b in balance]
    opened = [dt.date(2020, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 1500, n)]
    return pa.table({"customer_id": [f"C{i:06d}" for i in range(n)], "city": city.tolist(), "balance": balance_seen,
                     "opened": opened, "month": rng.integers(1, 13, n), "churned": churned.tolist(),
                     "status": ["gone" if c else "stayed" for c in churned]})


def test_a_csv_with_categories_and_missing_values_is_trained_and_evaluated(tmp_path):
    pcsv.write_csv(bank_table(), tmp_path / "book.csv")
    r = fit_from_file(tmp_path / "book.csv", "churned", exclude=("status",), threads=1)
    assert r["left_out"] == {"customer_id": "a different value on every row (an id?)"}
    assert r["categorical"] == ["city"] and "balance" in r["inputs"] and "opened" in r["inputs"]
    assert r["test_rows"] == 450
    # the figures are the library's on the same test rows
    assert r["metrics"]["auc"]["value"] == pytest.approx(roc_auc_score(r["test_labels"], r["test_scores"]), abs=1e-4)
    assert r["metrics"]["pr_auc"]["value"] == pytest.approx(
        average_precision_score(r["test_labels"], r["test_scores"]), abs=1e-4)
    lo, hi = r["metrics"]["auc"]["ci95"]
    assert 0.65 < lo < r["metrics"]["auc"]["value"] < hi
    assert sum(row["positives"] for row in r["lift"]) == r["test_labels"].sum()
    assert r["lift"][0]["lift"] > 1.5 and r["lift"][-1]["cumulative_capture"] == pytest.approx(1.0)


def test_the_lift_table_matches_a_hand_count():
    y = [1, 1, 0, 1, 0, 0, 0, 0, 1, 0]
    score = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
    rows = lift_table(y, score, groups=5)    # pairs: (1,1) (0,1) (0,0) (0,0) (1,0); base rate 0.4
    assert [r["positives"] for r in rows] == [2, 1, 0, 0, 1]
    assert [r["lift"] for r in rows] == pytest.approx([2.5, 1.25, 0, 0, 1.25])
    assert [r["cumulative_capture"] for r in rows] == pytest.approx([0.5, 0.75, 0.75, 0.75, 1.0])


def test_the_cli_prints_auc_pr_auc_with_intervals_and_the_lift_table_out_of_time(tmp_path):
    pq.write_table(bank_table(), tmp_path / "book.parquet")
    out = CliRunner().invoke(app, ["--workspace", str(tmp_path / "ws"), "models", "fit", "--from-file",
                                   str(tmp_path / "book.parquet"), "--target", "status", "--positive", "gone",
                                   "--exclude", "churned", "--time-column", "opened", "--threads", "1"])
    assert out.exit_code == 0, out.output
    assert "out of time: the latest 30% of rows by opened" in out.output
    assert "AUC" in out.output and "PR-AUC" in out.output and "95% CI" in out.output
    assert "cumulative capture" in out.output and "left out customer_id" in out.output


def test_mistakes_are_named_with_the_file_and_what_to_do(tmp_path):
    pcsv.write_csv(bank_table(100), tmp_path / "book.csv")
    with pytest.raises(DataError, match="no column 'churn' .*did you mean 'churned'"):
        fit_from_file(tmp_path / "book.csv", "churn")
    with pytest.raises(DataError, match="which value of 'status' is the positive one") as e:
        fit_from_file(tmp_path / "book.csv", "status")
    assert "--positive" in e.value.hint
    with pytest.raises(DataError, match="the target 'city' has 4 distinct value"):
        fit_from_file(tmp_path / "book.csv", "city")
    with pytest.raises(DataError, match="no such file"):
        fit_from_file(tmp_path / "nope.csv", "churned")
    out = CliRunner().invoke(app, ["--workspace", str(tmp_path / "ws"), "models", "fit", "--from-file",
                                   str(tmp_path / "book.csv")])
    assert out.exit_code != 0 and "--target" in out.output
