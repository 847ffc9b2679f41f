"""The unit tests of plan, policy, arbitration, outcomes and evidence run without a lake, a database or an engine.

Each check runs pytest in a fresh interpreter under ``-p tests.no_io`` (tests/no_io.py): DuckDB and PySpark
cannot be imported, opening a database or a lake raises. The shim itself is shown to bite.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
THROUGH_THE_PORTS = ["tests/unit/test_plan_through_ports.py", "tests/unit/test_review_through_ports.py",
                     "tests/unit/test_policy.py", "tests/unit/test_policy_arbitration.py",
                     "tests/unit/test_learning.py", "tests/unit/test_suitability.py"]


def pytest_without_io(*files: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
                           "-p", "tests.no_io", "-o", "addopts=", *files],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_the_plan_policy_and_review_unit_tests_pass_with_no_lake_database_or_engine():
    run = pytest_without_io(*THROUGH_THE_PORTS)
    last = run.stdout.strip().splitlines()[-1]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in last and "skipped" not in last and "failed" not in last, last


def test_under_the_shim_a_test_that_opens_an_engine_a_database_or_a_lake_fails(tmp_path):
    probe = tmp_path / "test_probe.py"
    probe.write_text(
        "import pytest\n"
        "def test_engine():\n    import duckdb  # noqa: F401\n"
        "def test_database():\n    import sqlalchemy\n    sqlalchemy.create_engine('sqlite://')\n"
        "def test_lake(tmp_path):\n    from lifeloop.store.lake import Lake\n    Lake(tmp_path)\n"
        "def test_arrow():\n    import pyarrow as pa\n    assert pa.table({'a': [1]}).num_rows == 1\n")
    run = pytest_without_io(str(probe))
    last = run.stdout.strip().splitlines()[-1]
    assert "3 failed, 1 passed" in last, run.stdout[-3000:] + run.stderr[-2000:]
