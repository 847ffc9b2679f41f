"""``lifeloop``: thin commands over the Context facade. Heavy imports happen inside commands."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Optional

import typer

from lifeloop.errors import LifeloopError

app = typer.Typer(
    name="lifeloop",
    help="Lifeloop: customer lifecycle operations for retail banks (insight -> strategy -> execution -> review).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_state: dict[str, object] = {"workspace": None, "debug": False}


@app.callback()
def _main(
    workspace: Optional[Path] = typer.Option(None, "--workspace", "-w", envvar="LIFELOOP_WORKSPACE",
                                             help="Workspace folder (default: current folder)."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks."),
) -> None:
    _state["workspace"] = workspace
    _state["debug"] = debug


def parse_date(value: str | None, option: str = "--as-of") -> dt.date | None:
    """YYYY-MM-DD -> date, with a clear error naming the option."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise LifeloopError(f"{option} {value!r} is not a date", hint="write dates as YYYY-MM-DD, e.g. 2024-06-30") from None


def context(engine: str | None = None):
    from lifeloop.context import Context

    return Context(_state["workspace"], engine=engine, debug=bool(_state["debug"]))


def console():
    from rich.console import Console

    return Console()


@app.command()
def init(
    directory: Path = typer.Argument(..., help="Folder for the new workspace."),
    template: str = typer.Option("bank", help="Workspace template."),
    force: bool = typer.Option(False, help="Rewrite template files in an existing workspace (data is kept)."),
) -> None:
    """Create a workspace: lifeloop.yaml and config/ with the default bank template."""
    from lifeloop.workspace import init_workspace

    written = init_workspace(directory, template, force)
    out = console()
    out.print(f"[green]Workspace ready[/] at {directory.resolve()} ({len(written)} files)")
    for path in written:
        out.print(f"  {path.relative_to(directory)}")
    out.print("Next: lifeloop simulate --out extracts/ && lifeloop ingest extracts/")


@app.command()
def ingest(
    source: Path = typer.Argument(..., help="A folder (or file) of CSV / Parquet extracts."),
    mapping: Optional[Path] = typer.Option(None, "--mapping", "-m", help="Mapping YAML (none: canonical extracts)."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="As-of date of the batch (default: latest date in the data)."),
) -> None:
    """Read, map, validate and publish a bank's extracts atomically."""
    from lifeloop.cli.render import print_ingest

    with context() as ctx:
        report = ctx.ingest(source, mapping, parse_date(as_of), progress=sys.stderr.isatty())
        print_ingest(console(), report)


@app.command()
def run(
    as_of: str = typer.Option(..., "--as-of", help="As-of date, YYYY-MM-DD."),
    steps: Optional[str] = typer.Option(None, "--steps", help="Comma-separated steps (default: all)."),
    engine: Optional[str] = typer.Option(None, "--engine", help="duckdb or spark (default: lifeloop.yaml)."),
) -> None:
    """Run the daily steps for one as-of date."""
    from lifeloop.cli.render import print_steps

    names = [s.strip() for s in steps.split(",") if s.strip()] if steps else None
    with context(engine) as ctx:
        print_steps(console(), ctx.run(parse_date(as_of), names, engine))


@app.command()
def features(
    as_of: Optional[str] = typer.Option(None, "--as-of", help="As-of date (default: latest published)."),
) -> None:
    """Summarise the published feature snapshot (标签): one row per tag."""
    from lifeloop.cli.render import print_feature_summary

    with context() as ctx:
        print_feature_summary(console(), ctx.features(parse_date(as_of)))


@app.command()
def simulate(
    out: Path = typer.Option(..., "--out", help="Folder to write the extracts to."),
    customers: int = typer.Option(2000, "--customers", help="Number of customers."),
    days: int = typer.Option(365, "--days", help="Days of history."),
    seed: int = typer.Option(7, "--seed", help="Random seed (same seed, same bytes)."),
    start: Optional[str] = typer.Option(None, "--start", help="First simulated day (default: computed from --days)."),
) -> None:
    """Write a synthetic retail bank's extracts in the canonical model."""
    from lifeloop.context import Context

    result = Context(_state["workspace"]).simulate(out, customers, days, seed, parse_date(start, "--start"))
    console().print(result.describe() if hasattr(result, "describe") else result)


@app.command()
def demo(
    directory: Path = typer.Option(Path("demo-workspace"), "--dir", help="Workspace folder for the demo."),
    customers: int = typer.Option(2000, "--customers", help="Size of the simulated bank."),
    days: int = typer.Option(400, "--days", help="Days of simulated history."),
    seed: int = typer.Option(7, "--seed", help="Random seed."),
) -> None:
    """Init a workspace, simulate a bank, ingest it, run the daily steps and print summaries."""
    from lifeloop.cli.demo import run_demo

    run_demo(console(), directory, customers=customers, days=days, seed=seed)


def main() -> None:
    """Console entry point: translate Lifeloop errors once, into 'Error: ...' and exit code 1."""
    try:
        app()
    except LifeloopError as exc:
        if _state["debug"]:
            raise
        from rich.console import Console
        from rich.markup import escape

        Console(stderr=True).print(f"[bold red]Error:[/] {escape(exc.render())}")
        sys.exit(1)
