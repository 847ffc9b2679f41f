"""Shared fixtures: one Spark session for the whole run (starting a JVM costs seconds)."""

from __future__ import annotations

import os
import shutil
import sys

import pytest


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
