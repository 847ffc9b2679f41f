"""Holdout by hash: stable, auditable, the right share, independent between strategies."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest

from lifeloop.strategy.holdout import control_mask, draw, draws, is_control


def test_the_draw_is_the_first_eight_bytes_of_sha256_over_two_to_the_64():
    # sha256("C001|honeymoon_welcome|lifeloop-2024") starts dc06082afba3b2bc (computed by hand with sha256sum)
    assert draw("C001", "honeymoon_welcome", "lifeloop-2024") == 0xDC06082AFBA3B2BC / 2**64
    assert draw("C001", "honeymoon_welcome", "lifeloop-2024") == pytest.approx(0.8594670395792849, abs=0)


def test_a_customer_is_in_control_exactly_when_the_draw_is_below_the_share():
    assert is_control("C001", "dormant_reactivation", "lifeloop-2024", 0.25)       # draw 0.2287
    assert not is_control("C001", "dormant_reactivation", "lifeloop-2024", 0.2)
    assert not is_control("C001", "honeymoon_welcome", "lifeloop-2024", 0.85)      # draw 0.8595


def test_bulk_draws_equal_single_draws_for_one_strategy_or_many():
    ids = [f"C{i:05d}" for i in range(50)]
    assert draws(ids, "s1", "salt") == [draw(c, "s1", "salt") for c in ids]
    strategies = ["s1", "s2"] * 25
    assert draws(ids, strategies, "salt") == [draw(c, s, "salt") for c, s in zip(ids, strategies, strict=False)]


def test_groups_are_identical_in_a_fresh_interpreter_with_another_hash_seed():
    ids = [f"C{i:05d}" for i in range(200)]
    here = control_mask(draws(ids, "s1", "salt"), 0.1)
    code = ("import json; from lifeloop.strategy.holdout import draws, control_mask; "
            f"print(json.dumps(control_mask(draws({ids!r}, 's1', 'salt'), 0.1)))")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert [x == "true" for x in out.stdout.strip()[1:-1].split(", ")] == here


@pytest.mark.parametrize("share", [0.1, 0.2])
def test_the_control_share_is_within_sampling_error(share):
    n = 40000
    got = sum(control_mask(draws([f"C{i:07d}" for i in range(n)], "maturity_reinvestment", "lifeloop-2024"), share))
    sigma = math.sqrt(share * (1 - share) / n)
    assert abs(got / n - share) < 4 * sigma


def test_control_groups_of_two_strategies_are_independent():
    n = 40000
    ids = [f"C{i:07d}" for i in range(n)]
    a = control_mask(draws(ids, "s1", "salt"), 0.2)
    b = control_mask(draws(ids, "s2", "salt"), 0.2)
    both = sum(x and y for x, y in zip(a, b, strict=False)) / n
    assert abs(both - 0.04) < 4 * math.sqrt(0.04 * 0.96 / n)


def test_changing_the_salt_reshuffles_the_groups():
    ids = [f"C{i:05d}" for i in range(1000)]
    a = control_mask(draws(ids, "s1", "salt-a"), 0.5)
    b = control_mask(draws(ids, "s1", "salt-b"), 0.5)
    assert 400 < sum(x != y for x, y in zip(a, b, strict=False)) < 600


def test_duckdb_computes_the_same_draw_from_its_own_sha256():
    duckdb = pytest.importorskip("duckdb")
    ids = ["C001", "C002", "王小明", "x|y"]
    con = duckdb.connect()
    got = [r[0] for r in con.execute(
        "SELECT ('0x' || substr(sha256(c || '|s1|salt'), 1, 16))::UBIGINT / 18446744073709551616.0 "
        "FROM unnest(?::VARCHAR[]) WITH ORDINALITY t(c, i) ORDER BY i", [ids]).fetchall()]
    assert got == draws(ids, "s1", "salt")


@pytest.mark.spark
def test_spark_computes_the_same_draw_from_its_own_sha2(spark):
    ids = ["C001", "C002", "王小明", "x|y"]
    df = spark.createDataFrame([(i, c) for i, c in enumerate(ids)], "i INT, c STRING")
    df.createOrReplaceTempView("_holdout_ids")
    rows = spark.sql("SELECT i, CAST(CAST(conv(substr(sha2(concat(c, '|s1|salt'), 256), 1, 16), 16, 10) "
                     "AS DECIMAL(20, 0)) AS DOUBLE) / 18446744073709551616.0 AS d "
                     "FROM _holdout_ids ORDER BY i").collect()
    assert [r["d"] for r in rows] == draws(ids, "s1", "salt")
