"""``lifeloop consent ...`` (授权变更, 短信退订) and ``lifeloop approve ...`` (双人复核): thin commands over Context."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from lifeloop.errors import LifeloopError


def register(app: typer.Typer, context: Callable[[], Any], console: Callable[[], Any],
             parse_date: Callable[..., Any]) -> None:
    """Add the ``consent`` and ``approve`` command groups to the main app."""
    consent_app = typer.Typer(help="Consent (授权): withdraw or grant at once, show, import changes, SMS replies.",
                              no_args_is_help=True)
    approve_app = typer.Typer(help="Big sends and unmasked exports wait for a second person (双人复核).",
                              no_args_is_help=True)
    app.add_typer(consent_app, name="consent")
    app.add_typer(approve_app, name="approve")

    def change(customer_id: str, granted: bool, channel: str, purpose: str, source: str, reason: str) -> None:
        with context() as ctx:
            done = ctx.change_consent(customer_id, granted=granted, channel=channel, purpose=purpose, source=source,
                                      reason=reason)
        scope = "every channel" if done["channel"] == "*" else done["channel"]
        console().print(f"{customer_id}: {purpose} consent {'granted' if granted else 'withdrawn'} for {scope}, "
                        f"effective {done['effective_at']:%Y-%m-%d %H:%M:%S} UTC, recorded by {done['recorded_by']} "
                        "(audited)")

    channel_help = "sms, push, email, call, rm, wechat, branch, or all."

    @consent_app.command("withdraw")
    def withdraw(customer_id: str = typer.Argument(..., help="Customer number (客户号)."),
                 channel: str = typer.Option(..., "--channel", help=channel_help),
                 purpose: str = typer.Option("marketing", "--purpose", help="marketing, service or risk."),
                 source: str = typer.Option(..., "--source",
                                            help="Where it came from: customer, rm, branch, complaint ..."),
                 reason: str = typer.Option(..., "--reason", help="Why (kept on the audit log).")) -> None:
        """Withdraw consent at once: no contact on that channel for that purpose from now on."""
        change(customer_id, False, channel, purpose, source, reason)

    @consent_app.command("grant")
    def grant(customer_id: str = typer.Argument(..., help="Customer number (客户号)."),
              channel: str = typer.Option(..., "--channel", help=channel_help),
              purpose: str = typer.Option("marketing", "--purpose", help="marketing, service or risk."),
              source: str = typer.Option(..., "--source", help="Where it came from: customer, rm, branch ..."),
              reason: str = typer.Option(..., "--reason", help="Why (kept on the audit log).")) -> None:
        """Grant consent at once (a customer opted in again)."""
        change(customer_id, True, channel, purpose, source, reason)

    @consent_app.command("show")
    def show(customer_id: str = typer.Argument(..., help="Customer number (客户号)."),
             as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
        """A customer's permissions now (purpose x channel, with why) and their consent history."""
        with context() as ctx:
            report = ctx.consent(customer_id)
        print_consent(console(), report, as_json)

    @consent_app.command("import")
    def import_(file: Path = typer.Argument(..., help="CSV: customer_id, channel, purpose, granted, effective_at, "
                                                      "source, reason.")) -> None:
        """Import consent changes all or nothing; importing the same file again changes nothing."""
        with context() as ctx:
            r = ctx.import_consent(file)
        state = " (already imported: nothing changed)" if r.replayed else ""
        console().print(f"{r.file}: {r.rows:,} rows, {r.recorded:,} recorded ({r.withdrawals:,} withdrawals), "
                        f"{r.skipped:,} already on record{state}")

    @consent_app.command("replies")
    def replies(file: Path = typer.Argument(..., help="CSV (mobile or customer_id, text, received_at) or JSON "
                                                      "(webhook bodies).")) -> None:
        """SMS replies: "TD" / "退订" / "STOP" opt out of marketing on that channel at once; others kept for review."""
        with context() as ctx:
            r = ctx.record_replies(file)
        out = console()
        out.print(f"{r.replies:,} replies: {r.opted_out:,} opt-outs recorded, {r.review:,} kept for review, "
                  f"{len(r.unmatched):,} with no customer, {r.skipped:,} already recorded")
        for line in r.unmatched:
            out.print(f"  no customer found (not applied, kept): {line}")

    @approve_app.command("list")
    def approve_list(every: bool = typer.Option(False, "--all", help="Also decided requests."),
                     as_of: str | None = typer.Option(None, "--as-of", help="Only this day, YYYY-MM-DD.")) -> None:
        """Requests waiting for a second person's approval (and, with --all, their decisions)."""
        with context() as ctx:
            rows = ctx.approval_requests(parse_date(as_of), pending_only=not every)
        out = console()
        if not rows:
            out.print("no approval is pending" if not every else "no approval requests")
        for r in rows:
            decided = f" — {r['status']} by {r['decided_by']}: {r['reason']}" if r["status"] != "pending" else ""
            out.print(f"{r['text']} at {r['requested_at']:%Y-%m-%d %H:%M} UTC "
                      f"({r['held_that_day']:,} items held that day){decided}")

    def decide(as_of: str, approve: bool, strategy: str | None, channel: str | None, reason: str) -> None:
        if not reason.strip():
            raise LifeloopError("--reason must say why", hint="it is kept on the audit log")
        with context() as ctx:
            done = ctx.decide_approval(parse_date(as_of, "AS_OF"), approve=approve, reason=reason, strategy=strategy,
                                       channel=channel)
        out = console()
        for line in done["approvals"]:
            out.print(f"{'approved' if approve else 'rejected'}: {line}")
        if approve:
            out.print(f"released {done['released']:,} contacts to the outbox (sent by the next `lifeloop dispatch`)")
        else:
            out.print(f"cancelled {done['cancelled']:,} contacts: they will never be sent")

    @approve_app.command("send")
    def approve_send(as_of: str = typer.Argument(..., help="The day of the held send, YYYY-MM-DD."),
                     strategy: str | None = typer.Option(None, "--strategy", help="Only this strategy's request."),
                     channel: str | None = typer.Option(None, "--channel", help="Only this channel's unmasked export."),
                     reason: str = typer.Option(..., "--reason", help="Why it may go (audited).")) -> None:
        """Approve a held day's send (someone other than who ran dispatch); its contacts go back to the outbox."""
        decide(as_of, True, strategy, channel, reason)

    @approve_app.command("reject")
    def approve_reject(as_of: str = typer.Argument(..., help="The day of the held send, YYYY-MM-DD."),
                       strategy: str | None = typer.Option(None, "--strategy", help="Only this strategy's request."),
                       channel: str | None = typer.Option(None, "--channel", help="Only this channel's export."),
                       reason: str = typer.Option(..., "--reason", help="Why it may not go (audited).")) -> None:
        """Reject a held day's send: its contacts are cancelled and never sent."""
        decide(as_of, False, strategy, channel, reason)


def print_consent(out: Any, report: dict[str, Any], as_json: bool = False) -> None:
    """Permissions as a purpose x channel grid, then the history of changes, do-not-disturb and replies."""
    import json

    from rich.table import Table

    if as_json:
        out.print_json(json.dumps(report, ensure_ascii=False, default=str))
        return
    grid = Table(title=f"{report['customer_id']}: may we contact them now? ({report['at']:%Y-%m-%d %H:%M} UTC)")
    channels = list(dict.fromkeys(p["channel"] for p in report["permissions"]))
    grid.add_column("purpose")
    for channel in channels:
        grid.add_column(channel)
    for purpose in dict.fromkeys(p["purpose"] for p in report["permissions"]):
        cells = {p["channel"]: p for p in report["permissions"] if p["purpose"] == purpose}
        grid.add_row(purpose, *("yes" if cells[c]["allowed"] else "[red]no[/red]" for c in channels))
    out.print(grid)
    reasons = dict.fromkeys(f"{p['purpose']}/{p['channel']}: {p['reason']}" for p in report["permissions"]
                            if not p["allowed"])
    for line in reasons:
        out.print(f"  {line}")
    history = Table(title="consent changes (oldest first)")
    for column in ("effective", "purpose", "channel", "granted", "source", "by", "reason"):
        history.add_column(column, overflow="fold")
    for c in report["changes"]:
        history.add_row(f"{c['effective_at']:%Y-%m-%d %H:%M}", c["purpose"], c["channel"],
                        "yes" if c["granted"] else "no",
                        c["source"], c["recorded_by"], c["reason"] or "")
    out.print(history)
    for d in report["do_not_disturb"]:
        out.print(f"do-not-disturb ({d['channel']}) from {d['starts_at']:%Y-%m-%d}"
                  f"{' until ' + format(d['expires_at'], '%Y-%m-%d') if d['expires_at'] else ''}"
                  f"{' (lifted ' + format(d['lifted_at'], '%Y-%m-%d') + ')' if d['lifted_at'] else ''}: {d['reason']}")
    for r in report["replies"]:
        out.print(f"reply {r['received_at']:%Y-%m-%d %H:%M} {r['text']!r}: {r['outcome']}")
