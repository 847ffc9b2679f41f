"""Lifecycle KPIs as stable JSON (dates ISO, money as exact strings) and as rich tables."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any


def kpis_json(kpis: dict[str, Any]) -> Any:
    """The KPIs as plain JSON types: dates as ISO text, money as decimal strings with two places."""
    if isinstance(kpis, dict):
        return {k: kpis_json(v) for k, v in kpis.items()}
    if isinstance(kpis, (list, tuple)):
        return [kpis_json(v) for v in kpis]
    if isinstance(kpis, dt.date):
        return kpis.isoformat()
    if isinstance(kpis, Decimal):
        return f"{kpis:.2f}"
    return kpis


def _pct(v: float | None) -> str:
    return "" if v is None else f"{v:.1%}"


def print_kpis(out: Any, kpis: dict[str, Any], sales_rows: int = 40) -> None:
    """Stage distribution, churn and reactivation, activation, retention, products, AUM and sales.

    The daily sales table shows its last ``sales_rows`` rows (all of them are in the JSON)."""
    from rich.table import Table

    dates = kpis["snapshots"]
    out.print(f"[bold]Lifecycle KPIs[/] {kpis['from']} .. {kpis['to']} ({len(dates)} snapshots)")
    grid: dict[str, dict[dt.date, str]] = {}
    for r in kpis["stage_distribution"]:
        grid.setdefault(r["stage"], {})[r["as_of"]] = f"{r['customers']:,} ({_pct(r['share'])})"
    t = Table(title="Stage distribution (阶段分布)", title_justify="left")
    t.add_column("stage")
    for d in dates:
        t.add_column(d.isoformat(), justify="right")
    for stage, cells in sorted(grid.items()):
        t.add_row(stage, *[cells.get(d, "") for d in dates])
    out.print(t)

    t = Table(title="Churn and dormant reactivation per period (流失率 / 沉睡唤醒率)", title_justify="left")
    for c in ("period", "active", "churned", "churn rate", "dormant", "won back", "reactivation"):
        t.add_column(c, justify="left" if c == "period" else "right")
    react = {(r["from"], r["to"]): r for r in kpis["reactivation"]["periods"]}
    for c in kpis["churn"]["periods"]:
        r = react.get((c["from"], c["to"]), {"customers": 0, "moved": 0, "rate": None})
        t.add_row(f"{c['from']} .. {c['to']}", f"{c['customers']:,}", f"{c['moved']:,}", _pct(c["rate"]),
                  f"{r['customers']:,}", f"{r['moved']:,}", _pct(r["rate"]))
    cw, rw = kpis["churn"]["window"], kpis["reactivation"]["window"]
    t.add_row("whole window", f"{cw['customers']:,}", f"{cw['moved']:,}", _pct(cw["rate"]),
              f"{rw['customers']:,}", f"{rw['moved']:,}", _pct(rw["rate"]))
    out.print(t)

    a = kpis["activation"]
    out.print(f"Activation (激活率): {a['activated']:,} of {a['measured']:,} new customers made their own "
              f"transaction within {a['days']} days ({_pct(a['rate']) or 'n/a'}); {a['pending']:,} still in "
              f"their first {a['days']} days")

    if kpis["retention"]:
        months = sorted(int(k[5:-1]) for k in kpis["retention"][0] if k.startswith("rate_"))
        t = Table(title="Retention by opening month (留存曲线)", title_justify="left")
        t.add_column("cohort")
        t.add_column("customers", justify="right")
        for m in months:
            t.add_column(f"{m} m", justify="right")
        for r in kpis["retention"]:
            t.add_row(r["cohort"], f"{r['customers']:,}", *[_pct(r[f"rate_{m}m"]) or "-" for m in months])
        out.print(t)

    p = kpis["products_per_customer"]
    dist = ", ".join(f"{d['products']}: {d['customers']:,}" for d in p["distribution"])
    out.print(f"Products per customer (户均产品数) on {p['as_of']}: average {p['average'] or 0:.2f} ({dist})")

    if kpis["aum_by_tier"]:
        t = Table(title="AUM by tier (分层AUM)", title_justify="left")
        for c in ("as of", "tier", "customers", "AUM", "average"):
            t.add_column(c, justify="left" if c in ("as of", "tier") else "right")
        for r in kpis["aum_by_tier"]:
            t.add_row(str(r["as_of"]), r["tier"] or "", f"{r['customers']:,}", f"{r['aum']:,.2f}",
                      "" if r["average_aum"] is None else f"{r['average_aum']:,.2f}")
        out.print(t)

    t = Table(title="Sales per branch and RM over the window (网点/客户经理销售汇总)", title_justify="left")
    for c in ("branch", "RM", "accounts", "amount", "by product type"):
        t.add_column(c, justify="right" if c in ("accounts", "amount") else "left")
    for r in kpis["sales_by_branch_rm"]:
        kinds = ", ".join(f"{k or '?'} {n}" for k, n in sorted(r["by_product_type"].items(), key=lambda x: str(x[0])))
        t.add_row(r["branch_id"] or "", r["rm_id"] or "-", f"{r['accounts']:,}", f"{r['amount']:,.2f}", kinds)
    out.print(t)

    daily = kpis["daily_sales"]
    shown = daily[-sales_rows:] if sales_rows else daily
    title = "Daily sales per branch and RM (每日销售报表)"
    if len(shown) < len(daily):
        title += f", last {len(shown)} of {len(daily)} rows (all in --json)"
    t = Table(title=title, title_justify="left")
    for c in ("day", "branch", "RM", "product type", "accounts", "amount"):
        t.add_column(c, justify="right" if c in ("accounts", "amount") else "left")
    for r in shown:
        t.add_row(str(r["day"]), r["branch_id"] or "", r["rm_id"] or "-", r["product_type"] or "",
                  f"{r['accounts']:,}", f"{r['amount']:,.2f}")
    out.print(t)


def kpis_command(ctx: Any, out: Any, start: dt.date, end: dt.date, as_json: bool = False,
                 sales_rows: int = 40) -> dict[str, Any]:
    """Body of ``lifeloop kpis --from D1 --to D2 [--json]``: compute, then print JSON or tables."""
    import json

    result = ctx.kpis(start, end)
    if as_json:
        print(json.dumps(kpis_json(result), ensure_ascii=False, indent=2))
    else:
        print_kpis(out, result, sales_rows)
    return result
