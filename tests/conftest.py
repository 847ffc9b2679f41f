"""Shared fixtures: one Spark session for the whole run (starting a JVM costs seconds); the run's order."""

from __future__ import annotations

import os
import shutil
import sys

import pytest

# The longest files first (docs/performance.md, "Test suite"): `make test` runs `--dist loadfile`, which hands
# files to the two workers in collection order, so the long ones start at once, on different workers, and the
# many short ones fill in behind them instead of one long file running alone at the end. The two truth files
# come first so that the workers get one each and split its 20 branches (tests/integration/review_truth.py).
# (pyproject.toml sets --no-loadscope-reorder: else xdist orders files by their number of tests.)
LONGEST_FIRST = (
    "tests/integration/test_review_against_truth.py",
    "tests/integration/test_review_against_truth_branches.py",
    "tests/integration/test_realtime_kafka.py",
    "tests/integration/test_web_schemathesis.py",
    "tests/integration/test_dispatch_chaos.py",
    "tests/integration/test_learning_from_review.py",
    "tests/integration/test_demo_board.py",
    "tests/integration/test_cells_loop.py",
    "tests/integration/test_web_access.py",
    "tests/e2e/test_consent_cli.py",
    "tests/integration/test_uplift_simulated_bank.py",
    "tests/integration/test_realtime_review.py",
    "tests/integration/test_models_plugin.py",
    "tests/integration/test_models_simulated_bank.py",
    "tests/integration/test_selection_cells_loop.py",
    "tests/integration/test_clv_simulated_bank.py",
)


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
