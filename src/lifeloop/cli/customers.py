"""``lifeloop customers ...`` (客户权利): opting out of personalisation, tag deletion, retention, purge, rights."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer


def register(app: typer.Typer, context: Callable[[], Any], console: Callable[[], Any]) -> None:
    """Add the ``customers`` command group (and its ``no-personalisation`` group) to the main app."""
    customers_app = typer.Typer(help="The customer's rights (客户权利): personalisation opt-out, tag deletion, "
                                     "purge. Every command is audited.", no_args_is_help=True)
    flag_app = typer.Typer(help="Opt a customer out of personalised marketing (个性化推荐退出, PIPL Art. 24).",
                           no_args_is_help=True)
    app.add_typer(customers_app, name="customers")
    customers_app.add_typer(flag_app, name="no-personalisation")

    def flag(customer_id: str, opted_out: bool, source: str, reason: str) -> None:
        with context() as ctx:
            done = ctx.set_no_personalisation(customer_id, opted_out=opted_out, source=source, reason=reason)
        what = ("opted out of personalised marketing: only strategies declared personalised: false reach them"
                if opted_out else "personalised marketing allowed again")
        console().print(f"{customer_id}: {what}, effective {done['effective_at']:%Y-%m-%d %H:%M:%S} UTC, recorded by "
                        f"{done['recorded_by']} (audited)")

    @flag_app.command("set")
    def flag_set(customer_id: str = typer.Argument(..., help="Customer number (客户号)."),
                 source: str = typer.Option("customer", "--source", help="Where it came from: customer, rm, app ..."),
                 reason: str = typer.Option(..., "--reason", help="Why (kept on the audit log).")) -> None:
        """The customer opts out: no segment-, tag- or score-driven contact from now on (plan and send time)."""
        flag(customer_id, True, source, reason)

    @flag_app.command("clear")
    def flag_clear(customer_id: str = typer.Argument(..., help="Customer number (客户号)."),
                   source: str = typer.Option("customer", "--source", help="Where it came from: customer, rm ..."),
                   reason: str = typer.Option(..., "--reason", help="Why (kept on the audit log).")) -> None:
        """The customer opts back in to personalised marketing."""
        flag(customer_id, False, source, reason)

    @customers_app.command("delete-tags")
    def delete_tags(customer_id: str = typer.Argument(..., help="Customer number (客户号)."),
                    reason: str = typer.Option(..., "--reason", help="Why (kept on the audit log).")) -> None:
        """Delete the customer's derived tags (算法推荐管理规定 Art. 17): none from the next run on."""
        with context() as ctx:
            done = ctx.delete_tags(customer_id, reason=reason)
        console().print(f"{customer_id}: tag deletion request {done['request_id']} recorded (audited). From the next "
                        "run no features, stages, segments, clusters or scores are produced for them; retained "
                        "snapshots are rewritten by `lifeloop customers apply-retention`.")

    @customers_app.command("apply-retention")
    def apply_retention() -> None:
        """Honour pending tag-deletion requests in retained snapshots (run on the retention schedule)."""
        with context() as ctx:
            done = ctx.apply_retention()
        out = console()
        if not done.requests:
            out.print("no tag-deletion request is pending: nothing to rewrite")
            return
        out.print(f"{len(done.requests):,} request(s) of {done.customers:,} customer(s) applied: "
                  f"{len(done.rewritten.snapshots):,} of {done.rewritten.looked_at:,} snapshots rewritten, "
                  f"{done.rewritten.rows:,} rows removed or blanked (audited)")

    @customers_app.command("purge")
    def purge(customer_id: str = typer.Argument(..., help="Customer number (客户号)."),
              reason: str = typer.Option(..., "--reason", help="Why (kept on the audit log).")) -> None:
        """Purge a customer after withdrawal or closure plus the retention (PIPL Art. 47); keyed hashes stay."""
        with context() as ctx:
            done = ctx.purge_customer(customer_id, reason=reason)
        out = console()
        out.print(f"{customer_id}: purged (request {done['request_id']}, audited)")
        out.print(f"  lake: {done['lake']['rows']:,} rows removed from {len(done['lake']['snapshots']):,} snapshots")
        out.print("  ops database: " + ", ".join(f"{k} {v:,}" for k, v in done["ops_rows"].items() if v)
                  if any(done["ops_rows"].values()) else "  ops database: no rows held")
        out.print(f"  suppression kept as keyed hashes of: {', '.join(done['suppressed'])}")

    @customers_app.command("rights")
    def rights(customer_id: str = typer.Argument(..., help="Customer number (客户号)."),
               as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
        """The customer's rights flags and requests."""
        import json

        with context() as ctx:
            report = ctx.customer_rights(customer_id)
        out = console()
        if as_json:
            out.print_json(json.dumps(report, ensure_ascii=False, default=str))
            return
        out.print(f"{customer_id}: personalised marketing "
                  f"{'OFF (opted out)' if report['no_personalisation'] else 'allowed'}; derived tags "
                  f"{'deleted on request' if report['tags_deleted'] else 'produced'}; "
                  + ("kept out of marketing (matches a purged person: "
                     f"{', '.join(report['suppressed']['matched_on'])})" if report["suppressed"] else "not suppressed"))
        for c in report["personalisation_history"]:
            out.print(f"  {c['effective_at']:%Y-%m-%d %H:%M} {'opt-out' if c['opted_out'] else 'opt-in'} "
                      f"({c['source']}, by {c['recorded_by']}): {c['reason']}")
        for r in report["requests"]:
            applied = f", applied {r['applied_at']:%Y-%m-%d %H:%M}" if r["applied_at"] else ""
            out.print(f"  request {r['id']}: {r['kind']} {r['status']} (by {r['requested_by']} "
                      f"{r['requested_at']:%Y-%m-%d %H:%M}{applied}): {r['reason']}")
