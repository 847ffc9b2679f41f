"""``lifeloop events`` (intake from a file, deciding, decisions) and ``lifeloop serve`` (the HTTP intake)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from lifeloop.api import create_app
from lifeloop.context import Context
from lifeloop.errors import LifeloopError
from lifeloop.realtime.access import token_hash

events_app = typer.Typer(help="Real-time events and moments of truth (关键时刻): intake, decisions.",
                         no_args_is_help=True)


def _context(c: typer.Context) -> Context:
    root = c.find_root().params   # the app's --workspace / --debug
    return Context(root.get("workspace"), debug=bool(root.get("debug")))


def _console():
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=160)


@events_app.command("ingest")
def ingest(
    c: typer.Context,
    file: Path = typer.Argument(..., help="Events as JSON lines (.jsonl) or CSV (.csv), one event per line/row."),
    source: str = typer.Option("file", "--source", help="The source name stored with the events."),
    decide: bool = typer.Option(True, "--decide/--no-decide", help="Decide the stored events at once."),
) -> None:
    """Store a file's events (all or nothing; an id already stored is a duplicate), then decide them."""
    out = _console()
    with _context(c) as ctx:
        receipt = ctx.ingest_events(file, source=source)
        out.print(f"{file.name}: {len(receipt.accepted):,} events stored, {len(receipt.duplicates):,} duplicates "
                  "(already stored: nothing changed)")
        if decide:
            _decide_all(ctx, out)


@events_app.command("run")
def run_source(
    c: typer.Context,
    file: Path = typer.Argument(..., help="An event source: a JSON-lines file (.jsonl), one event per line."),
    source: str = typer.Option("file", "--source", help="The source name stored with the events."),
    batch: int = typer.Option(500, "--batch", help="Events per batch: stored, decided, then committed."),
) -> None:
    """Run an event source to its end: each batch stored, decided, then its position committed (FILE.offset), so
    a re-run after a crash or an append goes on from the last committed batch."""
    out = _console()
    with _context(c) as ctx:
        pumped, summary = ctx.run_event_source(file, source=source, batch=batch)
    position = pumped.committed[-1] if pumped.committed else "unchanged"
    out.print(f"{file.name}: {pumped.batches:,} batches, {pumped.accepted:,} events stored, {pumped.duplicates:,} "
              f"duplicates; committed position {position}")
    for line in summary.lines():
        out.print(line)


@events_app.command("consume")
def consume(
    c: typer.Context,
    source: str = typer.Option(..., "--source", help="A source of events.yaml with kafka settings."),
    idle_stop: int = typer.Option(0, "--idle-stop", help="Stop after this many empty polls in a row (0: run until "
                                                         "Ctrl-C)."),
) -> None:
    """Consume a Kafka topic: each batch stored, decided, its bad messages recorded in the audit log, then its
    offsets committed (at least once from Kafka, once in effect: a re-delivered batch changes nothing)."""
    out = _console()
    with _context(c) as ctx:
        try:
            pumped, summary = ctx.consume_events(source, idle_polls=idle_stop or None)
        except KeyboardInterrupt:
            out.print("stopped: the last batch's offsets were committed only if it was decided")
            return
    out.print(f"kafka source {source}: {pumped.batches:,} batches, {pumped.accepted:,} events stored, "
              f"{pumped.duplicates:,} duplicates, {pumped.skipped:,} bad messages skipped (audit log: "
              f"events.bad_message)")
    for line in summary.lines():
        out.print(line)


@events_app.command("timers")
def timers(
    c: typer.Context,
    as_of: str = typer.Option(..., "--as-of", help="The batch date whose holdings set the timers (YYYY-MM-DD)."),
) -> None:
    """Set maturity timers (T-7, T-1, T+1 ...) from the holdings as of a date; setting a day again changes nothing."""
    import datetime as dt

    try:
        day = dt.date.fromisoformat(as_of)
    except ValueError:
        raise LifeloopError(f"--as-of {as_of!r} is not a date", hint="write dates as YYYY-MM-DD") from None
    with _context(c) as ctx:
        new = ctx.set_timers(day)
    _console().print(f"{new:,} new timers set from the holdings as of {day}")


@events_app.command("token-hash")
def token_hash_command(token: str = typer.Argument(..., help="A service token for an event source.")) -> None:
    """Print the SHA-256 of a token: what config/events.yaml keeps (token_sha256) instead of the token."""
    typer.echo(token_hash(token))


@events_app.command("decide")
def decide(c: typer.Context) -> None:
    """Decide every stored event not decided yet (after a restart, or after `ingest --no-decide`)."""
    out = _console()
    with _context(c) as ctx:
        _decide_all(ctx, out)


def _decide_all(ctx, out) -> None:
    """Decide every stored event not decided yet and print what was decided."""
    decider = ctx.decider()
    try:
        summary = decider.run_until_idle()
    finally:
        decider.close()
    for line in summary.lines():
        out.print(line)


@events_app.command("decisions")
def decisions(c: typer.Context, customer_id: str = typer.Argument(..., help="The customer.")) -> None:
    """A customer's real-time decisions: moment, strategy, outcome and why."""
    from rich.table import Table

    with _context(c) as ctx:
        rows = ctx.moment_decisions(customer_id)
    out = _console()
    if not rows:
        out.print(f"no real-time decisions for {customer_id}")
        return
    table = Table(title=f"{customer_id}: {len(rows)} real-time decisions")
    for column in ("entered (UTC)", "strategy", "outcome", "channel", "why"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(f"{r['entered_at']:%Y-%m-%d %H:%M:%S}", r["strategy_id"], r["outcome"], r["channel"] or "",
                      r["reason"])
    out.print(table)


def serve_command(context_factory, host: str, port: int) -> None:
    """Run the HTTP API (POST /events) with uvicorn until Ctrl-C."""
    import uvicorn

    uvicorn.run(create_app(context_factory, serving=True), host=host, port=port, log_level="warning")
