"""Run the ``lifeloop`` command for a test: in this process by default, or in a real one.

In this process, ``lifeloop.cli.app.main`` — what the console script runs: Typer, then every Lifeloop error
printed once as 'Error: ...' with its exit code — is called with the arguments, the environment, the working
folder and stdin given, stdout and stderr captured (Click's test isolation), its exit code taken from its
SystemExit. A test pays no new interpreter and no import of the whole of Lifeloop (1-3 s of CPU each time).
What a process adds — the console script itself, a real Ctrl-C, a clean interpreter — is checked by
``process=True`` — the installed console script (``lifeloop`` beside this Python) in a process of its own; at
least one test per command family keeps it — and by tests/e2e/test_cli.py, which also checks that both ways
answer alike.

Either way the answer is a ``subprocess.CompletedProcess`` (returncode, stdout, stderr as text).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import traceback
import types
from collections.abc import Mapping
from pathlib import Path


def lifeloop(*args: str, env: Mapping[str, str] | None = None, cwd: str | Path | None = None,
             input: str | None = None, process: bool = False, timeout: float = 120) -> subprocess.CompletedProcess:
    """``lifeloop ARGS`` with ``env`` (the whole environment, as subprocess takes it; None: this one's)."""
    argv = [str(a) for a in args]
    if process:
        script = Path(sys.executable).with_name("lifeloop")     # the console script pip installed beside python
        command = [str(script)] if script.exists() else [sys.executable, "-m", "lifeloop.cli"]
        return subprocess.run([*command, *argv], capture_output=True, text=True,
                              env=None if env is None else dict(env), cwd=cwd, input=input, timeout=timeout)
    from typer.testing import CliRunner

    from lifeloop.cli import app as cli

    wanted = dict(os.environ if env is None else env)
    # the environment exactly as given: variables of this process that env leaves out are unset meanwhile
    changes: dict[str, str | None] = {k: None for k in os.environ if k not in wanted}
    changes.update(wanted)
    old_argv, old_cwd, old_sigint = sys.argv, os.getcwd(), signal.getsignal(signal.SIGINT)
    old_main = sys.modules["__main__"]
    state = dict(cli._state)
    code = 0
    runner = CliRunner()
    with runner.isolation(input=input, env=changes) as (out, err, _):
        sys.argv = ["lifeloop", *argv]
        # Click names the program from __main__ ("python -m pytest ..." under pytest): as the console script does
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            if cwd is not None:
                os.chdir(cwd)
            cli.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if exc.code is not None and not isinstance(exc.code, int):
                sys.stderr.write(f"{exc.code}\n")
        except BaseException:   # noqa: BLE001 - what the interpreter does with an uncaught exception
            sys.stderr.write(traceback.format_exc())
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            sys.argv = old_argv
            sys.modules["__main__"] = old_main
            os.chdir(old_cwd)
            signal.signal(signal.SIGINT, old_sigint)
            cli._state.clear()
            cli._state.update(state)
        stdout, stderr = out.getvalue().decode("utf-8", "replace"), err.getvalue().decode("utf-8", "replace")
    return subprocess.CompletedProcess(["lifeloop", *argv], code, stdout, stderr)
