"""The command line starts instantly, and user mistakes get 'Error: ...' with no traceback."""

import subprocess
import sys
from pathlib import Path

LIFELOOP = [sys.executable, "-m", "lifeloop.cli"]


def run(*args, cwd=None):
    return subprocess.run([*LIFELOOP, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_importing_the_cli_loads_no_engine_and_no_statistics_library():
    # Lifeloop's own modules are imported at module level (so the layers can be checked); the engines and the
    # statistics / machine-learning libraries stay lazy inside the functions that use them
    code = ("import sys, lifeloop.cli.app; heavy = [m for m in ('duckdb', 'pyspark', 'pandas', 'scipy', 'sklearn', "
            "'statsmodels', 'alembic') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_help_lists_the_commands():
    result = run("--help")
    assert result.returncode == 0
    for command in ("init", "ingest", "run", "simulate", "demo"):
        assert command in result.stdout


def test_init_writes_a_workspace_and_refuses_to_overwrite_it(tmp_path):
    ws = tmp_path / "bank"
    assert run("init", str(ws)).returncode == 0
    assert (ws / "lifeloop.yaml").exists() and (ws / "config").is_dir()
    again = run("init", str(ws))
    assert again.returncode == 1
    assert "Error:" in again.stderr and "already exists" in again.stderr and "Traceback" not in again.stderr


def test_a_bad_date_and_an_unknown_step_are_clear_errors(tmp_path):
    ws = tmp_path / "bank"
    run("init", str(ws))
    bad_date = run("-w", str(ws), "run", "--as-of", "2024-13-01")
    assert bad_date.returncode == 1 and "not a date" in bad_date.stderr and "YYYY-MM-DD" in bad_date.stderr
    bad_step = run("-w", str(ws), "run", "--as-of", "2024-01-31", "--steps", "featurs")
    assert bad_step.returncode == 1 and "did you mean 'features'" in bad_step.stderr


def test_commands_outside_a_workspace_say_how_to_make_one(tmp_path):
    result = run("run", "--as-of", "2024-01-31", cwd=tmp_path)
    assert result.returncode == 1 and "lifeloop init" in result.stderr and "Traceback" not in result.stderr


def test_a_typo_in_lifeloop_yaml_names_the_line(tmp_path):
    ws = tmp_path / "bank"
    run("init", str(ws))
    path = Path(ws / "lifeloop.yaml")
    path.write_text(path.read_text().replace("engine: duckdb", "engin: duckdb"))
    result = run("-w", str(ws), "run", "--as-of", "2024-01-31")
    assert result.returncode == 1 and "lifeloop.yaml:" in result.stderr and "did you mean 'engine'" in result.stderr


def test_the_in_process_runner_of_the_tests_answers_as_the_command_does(tmp_path):
    """tests/cli_runner.py runs main() in the test's process for most CLI tests: the same exit codes, stdout and
    stderr as the real command, for a success, a user mistake (exit 1), a usage error (exit 2) and a refusal."""
    from tests.cli_runner import lifeloop

    ws = tmp_path / "bank"
    assert run("init", str(ws)).returncode == 0
    cases = [("-w", str(ws), "check"), ("-w", str(ws), "run", "--as-of", "2024-13-01"),
             ("-w", str(ws), "run", "--no-such-option"), ("init", str(ws))]
    for args in cases:
        real, here = lifeloop(*args, process=True), lifeloop(*args)
        assert (here.returncode, here.stdout, here.stderr) == (real.returncode, real.stdout, real.stderr), args
    assert [lifeloop(*a).returncode for a in cases] == [0, 1, 2, 1]
