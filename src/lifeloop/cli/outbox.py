"""``lifeloop outbox``: contacts whose delivery is unknown, and an operator's decision on each (audited)."""

from __future__ import annotations

import datetime as dt
import sys

import typer

from lifeloop.context import Context
from lifeloop.errors import LifeloopError

outbox_app = typer.Typer(help="The outbox: contacts of unknown outcome and their resolution (送达核对).",
                         no_args_is_help=True)


def _context(c: typer.Context) -> Context:
    root = c.find_root().params   # the app's --workspace / --debug
    return Context(root.get("workspace"), debug=bool(root.get("debug")))


def _console():
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=200)


def age_text(age: dt.timedelta) -> str:
    """``3d 4h``, ``2h 5m``, ``45s``: how long a contact has been of unknown outcome."""
    seconds = max(0, int(age.total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {seconds}s" if minutes else f"{seconds}s"


@outbox_app.command("unknown")
def unknown(
    c: typer.Context,
    channel: str | None = typer.Option(None, "--channel", help="Only this channel (sms, push ...)."),
) -> None:
    """Contacts whose delivery is unknown and that are not re-sent: key, customer, channel, reason, age."""
    from rich.table import Table

    with _context(c) as ctx:
        items = ctx.outbox_unknown(channel)
    out = _console()
    if not items:
        out.print("no contacts of unknown outcome" + (f" on {channel}" if channel else ""))
        return
    table = Table(title=f"{len(items):,} contacts of unknown outcome (never re-sent by themselves)")
    table.add_column("key", no_wrap=True, min_width=len(items[0].key))   # copied whole into `resolve`
    for column in ("as of", "customer", "channel", "strategy / wave", "unknown for", "reason"):
        table.add_column(column, overflow="fold")
    for u in items:
        table.add_row(u.key, u.as_of.isoformat(), u.customer_id, u.channel, f"{u.strategy_id} / {u.wave}",
                      age_text(u.age), u.reason)
    out.print(table)
    out.print("Ask the provider, then: lifeloop outbox resolve KEY sent|not-sent --reason TEXT [--resend]")


@outbox_app.command("resolve")
def resolve(
    c: typer.Context,
    key: str = typer.Argument(..., help="The contact's idempotency key (a unique prefix of 8+ characters will do)."),
    outcome: str = typer.Argument(..., help="sent (the provider had it) or not-sent."),
    reason: str = typer.Option(..., "--reason", help="Why you decided so, e.g. the provider's report (audited)."),
    resend: bool = typer.Option(False, "--resend", help="With not-sent: send it again (it passes every send-time "
                                                        "check again); without it, not-sent closes the contact."),
) -> None:
    """Record what became of a contact of unknown outcome; audited with who, when and why."""
    if outcome not in ("sent", "not-sent"):
        raise LifeloopError(f"unknown outcome {outcome!r}", hint="write sent or not-sent")
    with _context(c) as ctx:
        item = ctx.resolve_unknown(key, outcome, reason, resend=resend)  # type: ignore[arg-type]
    what = {"sent": "recorded as sent", "failed": "closed as not sent",
            "pending": "not sent: due again, under the same key"}[item.status]
    _console().print(f"contact {item.idempotency_key} ({item.customer_id}, {item.channel}): {what}")
