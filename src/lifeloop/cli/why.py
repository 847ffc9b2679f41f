"""``lifeloop why CUSTOMER --as-of D``: the day's decisions about one customer, replayed from stored snapshots."""

from __future__ import annotations

import datetime as dt
from typing import Any

from lifeloop.cli.strategies import rank_text


def why_command(ctx: Any, out: Any, customer_id: str, as_of: dt.date, as_json: bool = False) -> dict[str, Any]:
    """Explain (and print) every decision about a customer on a day; returns the explanation."""
    import json

    report = ctx.why(customer_id, as_of)
    if as_json:
        out.print_json(json.dumps(report, ensure_ascii=False, default=str))
    else:
        print_why(out, report)
    return report


def print_why(out: Any, report: dict[str, Any]) -> None:
    """The explanation as rich tables: the plan's decisions and eligibility, then the real-time decisions."""
    out.print(f"[bold]Why (决策回放): customer {report['customer_id']} as of {report['as_of']}[/bold]")
    if report.get("planned", True):
        print_plan(out, report)
    else:
        out.print(f"No batch plan on {report['as_of']}: only the real-time decisions of the day are explained.")
    print_realtime(out, report.get("realtime") or [])


def print_realtime(out: Any, rows: list[dict[str, Any]]) -> None:
    """The day's real-time decisions: moment and event, strategy, outcome and why, and the contact's fate."""
    from rich.table import Table

    if not rows:
        return
    t = Table(title="Real-time decisions (关键时刻) on moments of the day", title_justify="left", show_lines=True)
    for col in ("event time", "moment / event", "strategy", "outcome", "why", "contact"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["occurred_at"], f"{r['moment']}: {r['moment_reason']}\nevent {r['event_id']}"
                  + (f" ({r['event_kind']})" if r["event_kind"] else ""),
                  r["strategy"], r["outcome"], r["reason"], r["decision"])
    out.print(t)


def print_plan(out: Any, report: dict[str, Any]) -> None:
    """The batch plan's part: decisions in arbitration order, then every strategy's eligibility."""
    from rich.table import Table

    v = report["version"]
    out.print(
        f"config {v['config_hash']} (stored copy {v['stored_config_hash']}"
        f"{'' if v['consistent'] else ', [red]differs from the plan config ' + str(v['plan_config_hash']) + '[/red]'}"
        "); "
        + ", ".join(f"{k} {r}" for k, r in v["run_ids"].items()))
    access = report.get("access") or {}
    if access.get("money") == "banded":
        out.print(f"[dim]Money shown as bands for role {access.get('role')} (docs/security.md): "
                  f"{', '.join(access.get('money_columns') or []) or 'no money column read'}[/dim]")
    d = Table(title="Decisions (in arbitration order)", title_justify="left", show_lines=True)
    for col in ("rank", "strategy / wave", "group", "decision", "holdout draw / share", "priority", "value",
                "suitability"):
        d.add_column(col)
    for c in report["decisions"]:
        h = c["holdout"]
        d.add_row(f"{c['rank']}/{c['of']} (day {c['day_rank']}/{c['day_candidates']})",
                  f"{c['strategy']} / {c['wave']}", c["group"], c["decision"],
                  f"{h['draw']:.4f} / {h['share']}", str(c["priority"]), f"{c['best_value']:g}",
                  c["suitability"] or "-")
    if report["decisions"]:
        out.print(d)
        print_values(out, report)
    else:
        out.print("No candidate rows in the day's lists: the customer was in no audience.")
    e = Table(title="Strategies of the stored map: eligible or not, and the values that decided it",
              title_justify="left", show_lines=True)
    for col in ("strategy", "rule", "eligible", "why"):
        e.add_column(col)
    for s in report["strategies"]:
        e.add_row(f"{s['strategy']} ({s['name']})", s["rule"], "yes" if s["eligible"] else "no", s["why"])
    out.print(e)


def print_values(out: Any, report: dict[str, Any]) -> None:
    """Per candidate and channel: the prior uplift, review's evidence, its weight and the value arbitration used."""
    from rich.table import Table


    a = report.get("arbitration") or {}
    rank = rank_text(a)
    v = Table(title=f"Expected value (ranked by {rank}; segment {a.get('segment') or '-'}; values: "
                    f"{a.get('values', '-')})",
              title_justify="left")
    for col in ("strategy / wave", "channel", "prior uplift", "evidence (treated / control, uplift ± 1.96 se)",
                "weight", "uplift used", "x value", "- cost", "= expected value"):
        v.add_column(col,
                     justify="left" if col in ("strategy / wave", "channel") or col.startswith("evidence") else "right")
    for c in report["decisions"]:
        for r in c.get("values") or []:
            e = r["evidence"]
            seen = (f"{e['treated']:,} / {e['control']:,}, {e['uplift']:+.4f} ± {1.96 * e['se']:.4f}"
                    if e["uplift"] is not None and e["se"] is not None else "none")
            if e["uplift"] is not None and not r["evidence_used"]:
                seen += " (not used)"
            v.add_row(f"{c['strategy']} / {c['wave']}", r["channel"], f"{r['prior_uplift']:.4f}", seen,
                      f"{r['weight']:.2f}", f"{r['uplift']:.4f}", f"{r['value_of_success']:g}", f"{r['cost']:g}",
                      f"{r['expected_value']:g}")
    out.print(v)
