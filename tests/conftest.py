"""Shared fixtures: one Spark session for the whole run (starting a JVM costs seconds); the run's order."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

# The longest files first (docs/performance.md, "Test suite"): `make test` and `make validate` run `--dist loadfile`,
# which hands files to the two workers in collection order, so the long ones start at once, on different workers,
# and the short ones fill in behind them instead of one long file running alone at the end. Each tier selects its
# own files (`-m validate` / `-m "not validate"`), so the list is the validate tier's longest files, then
# `make test`'s; a file of the other tier is simply not collected. The two truth files come first so that the
# workers get one each and split its 20 branches (tests/integration/review_truth.py).
# (pyproject.toml sets --no-loadscope-reorder: else xdist orders files by their number of tests.)
VALIDATE_LONGEST_FIRST = (
    "tests/integration/test_review_against_truth.py",
    "tests/integration/test_review_against_truth_branches.py",
    "tests/integration/test_realtime_kafka.py",          # its settings check (no broker) is in make test: 0 s
    "tests/integration/test_web_schemathesis.py",
    "tests/integration/test_uplift_simulated_bank.py",
    "tests/integration/test_dispatch_chaos.py",          # the 1,000-contact run; its small crash tests: make test
    "tests/integration/test_learning_from_review.py",
    "tests/integration/test_cells_loop.py",
    "tests/integration/test_demo_board.py",
)
TEST_LONGEST_FIRST = (
    "tests/conformance/test_features_duckdb_vs_spark.py",
    "tests/conformance/test_encrypted_lake_duckdb_vs_spark.py",
    "tests/e2e/test_cli.py",
    "tests/integration/test_web_access.py",
    "tests/integration/test_models_simulated_bank.py",
    "tests/integration/test_contact_gate_properties.py",
    "tests/conformance/test_scores_duckdb_vs_spark.py",
    "tests/integration/test_realtime_crash.py",
    "tests/e2e/test_events_cli.py",
    "tests/conformance/test_insight_duckdb_vs_spark.py",
    "tests/integration/test_realtime_review.py",
    "tests/integration/test_selection_cells_loop.py",
    "tests/unit/test_unit_tests_need_no_io.py",
    "tests/integration/test_models_plugin.py",
    "tests/e2e/test_consent_cli.py",
    "tests/integration/test_clv_simulated_bank.py",
)
LONGEST_FIRST = VALIDATE_LONGEST_FIRST + TEST_LONGEST_FIRST


def pytest_collection_modifyitems(config, items):
    """Put the files of LONGEST_FIRST first, in that order; every other test keeps its place (a stable sort)."""
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


@pytest.fixture(scope="session")
def spark():
    """A local[2] Spark session configured as Lifeloop's Spark adapter configures it; skips without Java."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        pytest.skip("pyspark is not installed (pip install 'lifeloop[spark]')")
    if shutil.which("java") is None:
        if not os.environ.get("JAVA_HOME"):
            pytest.skip("no Java runtime found (install Java 17 or set JAVA_HOME) for Spark tests")
    from pyspark.sql import SparkSession

    from lifeloop.engine.adapters.spark import LAUNCH_CONF, SESSION_CONF

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)   # workers of mapInArrow import Lifeloop
    builder = SparkSession.builder.master("local[2]").appName("lifeloop-tests")
    for key, value in {**LAUNCH_CONF, **SESSION_CONF, "spark.driver.memory": "1g",
                       "spark.sql.shuffle.partitions": "2"}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
