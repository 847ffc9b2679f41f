"""``lifeloop check``: every problem of the workspace's configuration at once, each with its fix."""

from __future__ import annotations

from typing import Any

import typer

from lifeloop.errors import Problem
from lifeloop.preflight import CheckReport, check_workspace


def problem_line(p: Problem) -> str:
    """``config/strategies.yaml:38 strategies[0].audience: unknown column ... (fix: did you mean ...?)``."""
    where = f"{p.file}:{p.line}" if p.file and p.line else (p.file or "")
    what = p.field or p.rule or p.column
    if p.field and p.rule and p.rule not in p.field:
        what = f"{p.field} ({p.rule})"
    head = " ".join(x for x in (where, what) if x)
    return (f"{head}: {p.message}" if head else p.message) + (f" (fix: {p.hint})" if p.hint else "")


def summary(report: CheckReport) -> str:
    """One line: how many errors and warnings in how many files."""
    return (f"{len(report.errors)} error(s), {len(report.warnings)} warning(s) "
            f"in {len(report.files)} configuration file(s)")


def check_command(ctx: Any) -> int:
    """Check the workspace of ``ctx`` (config and, when the lake has a batch, its products); print; exit code."""
    report = check_workspace(ctx.config_dir, lake=ctx.lake)
    if report.errors:
        typer.echo("Errors:")
        for p in report.errors:
            typer.echo(f"  {problem_line(p)}")
    if report.warnings:
        typer.echo("Warnings:")
        for p in report.warnings:
            typer.echo(f"  {problem_line(p)}")
    typer.echo(("Configuration OK: " if report.ok else "Configuration has errors: ") + summary(report))
    return 0 if report.ok else 1
