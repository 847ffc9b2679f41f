"""``lifeloop check``: every problem on its own line with a fix, warnings after, exit 1 on errors."""

from tests.cli_runner import lifeloop


def run(*args, process=False):
    """The command in this process (tests/cli_runner.py); ``process=True``: in its own, as a user runs it."""
    return lifeloop(*args, process=process)


def test_check_of_a_fresh_workspace_exits_0_with_a_one_line_summary(tmp_path):
    assert run("init", str(tmp_path / "ws"), process=True).returncode == 0
    result = run("--workspace", str(tmp_path / "ws"), "check", process=True)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "Configuration OK: 0 error(s), 0 warning(s) in 8 configuration file(s)\n"


def test_check_prints_every_error_then_warnings_and_exits_1(tmp_path):
    assert run("init", str(tmp_path / "ws")).returncode == 0
    config = tmp_path / "ws" / "config"
    lifecycle = (config / "lifecycle.yaml").read_text(encoding="utf-8")
    (config / "lifecycle.yaml").write_text(lifecycle.replace("stage: prospect", "stage: prospekt"), encoding="utf-8")
    strategies = (config / "strategies.yaml").read_text(encoding="utf-8")
    (config / "strategies.yaml").write_text(
        strategies.replace("AND tenure_days <= 30", "AND tenure_days <= 30 AND tenure_days > 40"), encoding="utf-8")
    result = run("--workspace", str(tmp_path / "ws"), "check")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Errors:"
    assert lines[1].startswith("  config/lifecycle.yaml:54 rules[0].stage (no_product_yet): unknown stage 'prospekt'; "
                               "did you mean 'prospect'? (fix: name a stage of stages: ")
    assert lines[2] == "Warnings:"
    # the stage nothing leads to any more is a warning of its own
    assert lines[3] == ("  config/lifecycle.yaml:37 stages[0]: stage 'prospect' has no rule, so no "
                        "customer can be in it "
                        "(fix: add a rule leading to it, or remove the stage)")
    assert lines[4].startswith("  config/strategies.yaml:43 strategies[0].audience (strategy honeymoon_welcome): "
                               "can never match anyone: the bounds on 'tenure_days' contradict each other (fix: ")
    assert lines[5:] == ["Configuration has errors: 1 error(s), 2 warning(s) in 8 configuration file(s)"]
