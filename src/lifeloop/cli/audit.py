"""``lifeloop audit``: verify the audit log's hash chain, export entries, prune past the retention."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from lifeloop.context import Context
from lifeloop.errors import LifeloopError
from lifeloop.store.ops.audit import chain_error

audit_app = typer.Typer(help="The audit log (审计日志): verify its hash chain, export, prune after export.",
                        no_args_is_help=True)


def _context(cli: typer.Context) -> Context:
    params = cli.find_root().params
    return Context(params.get("workspace"), debug=bool(params.get("debug")))


def _date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise LifeloopError(f"{option} {value!r} is not a date", hint="write dates as YYYY-MM-DD") from None


@audit_app.command("verify")
def verify(cli: typer.Context) -> None:
    """Recompute the hash chain: exit 1 naming the first edited, deleted, inserted or reordered entry."""
    with _context(cli) as ctx:
        found = ctx.audit_verify()
    if not found.ok:
        raise chain_error(found)
    start = f" from the prune anchor after entry {found.anchor_id}" if found.anchor_id is not None else ""
    if found.head_id is None:
        typer.echo(f"audit log verified: no entries yet{start}")
        return
    typer.echo(f"audit log verified: {found.checked:,} entries{start}; head entry {found.head_id} "
               f"hash {found.head_hash} (keep this outside the database: it proves the tail was not cut)")


@audit_app.command("export")
def export(
    cli: typer.Context,
    start: str = typer.Option(..., "--from", help="First day, YYYY-MM-DD (the bank's time zone)."),
    end: str = typer.Option(..., "--to", help="Last day, YYYY-MM-DD (inclusive)."),
    out: Path = typer.Option(..., "--out", help="File to write: .csv or .jsonl."),
) -> None:
    """Export the entries of a period with their hashes (CSV or JSONL); the export is itself audited."""
    with _context(cli) as ctx:
        done = ctx.audit_export(_date(start, "--from"), _date(end, "--to"), out)
    typer.echo(f"written {done.path}: {done.entries:,} entries (ids {done.first_id}..{done.last_id}), "
               f"sha256 {done.sha256}")


@audit_app.command("prune")
def prune(
    cli: typer.Context,
    before: str = typer.Option(..., "--before", help="Delete entries written before this day, YYYY-MM-DD."),
    archive: Path = typer.Option(..., "--archive", help="The export holding every entry to delete."),
) -> None:
    """Delete entries past the retention that an export holds, leaving an anchor the chain verifies from."""
    with _context(cli) as ctx:
        done = ctx.audit_prune(_date(before, "--before"), archive)
    if not done.entries:
        typer.echo("nothing to prune")
        return
    typer.echo(f"pruned {done.entries:,} entries up to {done.last_id}; anchor hash {done.last_hash}")
