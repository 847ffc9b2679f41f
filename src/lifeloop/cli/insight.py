"""``lifeloop insight`` and ``lifeloop transitions``: rendering with rich, plus the command bodies.

Pure presentation: the numbers come from :mod:`lifeloop.insight.summary` and
:mod:`lifeloop.insight.transitions`; ``--json`` prints the same data the web UI will read.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from lifeloop.config.lifecycle import LifecycleConfig
from lifeloop.errors import DataError, LifeloopError
from lifeloop.insight import cluster_registry, clusters


def to_json(data: Any) -> str:
    """JSON text of a summary (dates as ISO text, Chinese kept readable)."""
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False,
                      default=lambda v: v.isoformat() if isinstance(v, (dt.date, dt.datetime)) else str(v))


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


def _money(x: float | None) -> str:
    if x is None:
        return "-"
    for unit, size in (("bn", 1e9), ("m", 1e6), ("k", 1e3)):
        if abs(x) >= size:
            return f"{x / size:,.1f}{unit}"
    return f"{x:,.0f}"


def _signed(n: int) -> str:
    return f"[green]+{n:,}[/]" if n > 0 else (f"[red]{n:,}[/]" if n < 0 else "0")


def print_insight(out: Any, summary: dict[str, Any]) -> None:
    """Stage distribution with changes, tiers, groups and micro-segments with AUM."""
    from rich.table import Table

    prev = summary.get("previous_as_of")
    title = f"Lifecycle stages as of {summary['as_of']} ({summary['customers']:,} customers)"
    t = Table(title=title + (f", change since {prev}" if prev else ""), title_justify="left")
    for c in ("stage", "阶段", "customers", "share") + (("change",) if prev else ()):
        t.add_column(c, justify="right" if c in ("customers", "share", "change") else "left")
    for r in summary["stages"]:
        cells = [r["label"], r["zh"], f"{r['customers']:,}", _pct(r["share"])]
        if prev:
            cells.append(_signed(r["change"]))
        t.add_row(*cells)
    out.print(t)
    if "tiers" in summary:
        t = Table(title="Value tiers (AUM)", title_justify="left")
        for c in ("tier", "层级", "AUM range", "customers", "share", "AUM", "AUM share"):
            t.add_column(c, justify="left" if c in ("tier", "层级", "AUM range") else "right")
        for r in summary["tiers"]:
            rng = f"{_money(r['min'])} - {_money(r['max'])}" if r["max"] is not None else f">= {_money(r['min'])}"
            t.add_row(r["label"], r["zh"], rng, f"{r['customers']:,}", _pct(r["share"]), _money(r["aum"]),
                      _pct(r["aum_share"]))
        out.print(t)
        for key, title in (("groups", "Featured groups (特色客群)"), ("micro_segments", "Micro-segments (微细分)")):
            if not summary[key]:
                continue
            t = Table(title=title, title_justify="left")
            for c in ("segment", "名称", "customers", "share", "AUM"):
                t.add_column(c, justify="left" if c in ("segment", "名称") else "right")
            for r in summary[key]:
                t.add_row(r["label"], r["zh"], f"{r['customers']:,}", _pct(r["share"]), _money(r["aum"]))
            out.print(t)
    if summary.get("clusters"):
        print_clusters(out, summary["clusters"])
    if summary.get("holdings"):
        print_holdings(out, summary["holdings"])
    for w in summary.get("warnings", []):
        out.print(f"[yellow]warning:[/] {w}")


def print_holdings(out: Any, data: dict[str, Any]) -> None:
    """Product penetration and product counts per tier, then the findings in words."""
    from rich.table import Table

    pen = data["penetration"]
    t = Table(title="Product penetration by tier (持仓渗透率)", title_justify="left")
    t.add_column("tier")
    t.add_column("customers", justify="right")
    for p in pen["product_types"]:
        t.add_column(p.replace("_", " "), justify="right")
    for r in pen["tiers"]:
        t.add_row(r["tier"], f"{r['customers']:,}", *[_pct(r["shares"][p]) for p in pen["product_types"]])
    out.print(t)
    t = Table(title="Open accounts per customer, by tier", title_justify="left")
    for c in ("tier", "0", "1", "2", "3", "4", "5+", "single product"):
        t.add_column(c, justify="left" if c == "tier" else "right")
    for r in data["product_counts"]:
        t.add_row(r["tier"], *[f"{r['accounts'][b]:,}" for b in ("0", "1", "2", "3", "4", "5+")],
                  _pct(r["single_product_share"]))
    out.print(t)
    for f in data.get("findings", []):
        out.print(f"[bold]finding:[/] {f}")


def print_transitions(out: Any, result: dict[str, Any]) -> None:
    """A flow table (from -> to, customers, rate) and the moving-on shares."""
    from rich.table import Table

    t = Table(title=f"Stage flows {result['from']} -> {result['to']}", title_justify="left")
    for c in ("from", "to", "customers", "rate"):
        t.add_column(c, justify="right" if c in ("customers", "rate") else "left")
    for r in result["flows"]:
        style = "dim" if r["from_stage"] == r["to_stage"] else None
        t.add_row(r["from_stage"] or "(new)", r["to_stage"] or "(gone)", f"{r['customers']:,}", _pct(r["rate"]),
                  style=style)
    out.print(t)
    t = Table(title=f"Moving on from {result['from']}: share of each stage in another stage within N days",
              title_justify="left")
    for c in ("stage", "customers", "30 days", "90 days"):
        t.add_column(c, justify="left" if c == "stage" else "right")
    for r in result["moving_on"]:
        cells = [r["stage"], f"{r['customers']:,}"]
        for w in (30, 90):
            cell = _pct(r.get(f"share_{w}d"))
            if not r.get(f"complete_{w}d"):
                seen = r.get(f"observed_to_{w}d")
                cell += f" (to {seen})" if seen else " (no later snapshot)"
            cells.append(cell)
        t.add_row(*cells)
    out.print(t)
    if "cohorts" in result and not result["cohorts"]:
        out.print("Entry cohorts: nobody entered that stage between the first snapshot and "
                  f"{result['to']} (entries are seen from the second lifecycle snapshot on).")
    if result.get("cohorts"):
        t = Table(title=f"Entry cohorts: entered {result['cohorts'][0]['from_stage']}, reached "
                        f"{result['cohorts'][0]['to_stage']} by {result['to']}", title_justify="left")
        for c in ("month entered", "entered", "reached", "rate"):
            t.add_column(c, justify="left" if c == "month entered" else "right")
        for r in result["cohorts"]:
            t.add_row(r["cohort"], f"{r['entered']:,}", f"{r['reached']:,}", _pct(r["rate"]))
        out.print(t)


def _in_stage_order(ctx: Any, result: dict[str, Any]) -> None:
    # people read stages in lifecycle order (prospect ... won back), not alphabetically

    order = {s.name: i for i, s in enumerate(ctx.load_config("lifecycle", LifecycleConfig)[0].stages)}

    def rank(stage: str | None) -> tuple[int, str]:
        return (-1, "") if stage is None else (order.get(stage, len(order)), stage)

    result["flows"].sort(key=lambda r: (rank(r["from_stage"]), rank(r["to_stage"])))
    result["moving_on"].sort(key=lambda r: rank(r["stage"]))


def insight_command(ctx: Any, out: Any, as_of: dt.date | None, as_json: bool) -> dict[str, Any]:
    """Body of ``lifeloop insight``: build the summary and print it (or its JSON)."""
    summary = ctx.insight(as_of)
    if as_json:
        print(to_json(summary))
    else:
        print_insight(out, summary)
    return summary


def transitions_command(ctx: Any, out: Any, before: dt.date, after: dt.date, as_json: bool = False,
                        entered: str | None = None, reached: str | None = None) -> dict[str, Any]:
    """Body of ``lifeloop transitions``: flows, moving on and (optionally) entry cohorts."""

    result = ctx.transitions(before, after)
    _in_stage_order(ctx, result)
    if entered or reached:
        if not (entered and reached):
            raise LifeloopError("--entered and --reached go together",
                                hint="e.g. --entered honeymoon --reached growing")
        result["cohorts"] = ctx.entry_cohorts(entered, reached, after)
    if as_json:
        print(to_json(result))
    else:
        print_transitions(out, result)
    return result


# ---------------------------------------------------------------------------- clusters
def print_clusters(out: Any, data: dict[str, Any]) -> None:
    """Cluster profiles: id, name, size, share and what sets each cluster apart, plus how k was chosen."""
    from rich.markup import escape
    from rich.table import Table

    if not data["clusters"]:
        out.print("Behavioural clusters: nobody is assigned a cluster (the book was too small to cluster when the "
                  "clusters step ran; see its manifest notes)")
        return
    title = "Behavioural clusters (聚类分群)"
    if data.get("fitted_as_of"):
        title += f", fitted on {data['fitted_as_of']}"
    t = Table(title=title, title_justify="left")
    for c in ("id", "name", "customers", "share", "what sets it apart"):
        t.add_column(c, justify="right" if c in ("id", "customers", "share") else "left")
    new = set(data.get("new_at_last_fit") or [])
    for r in data["clusters"]:
        # "new" only means something after a re-fit; on the first fit every cluster is new
        name = escape(r["label"]) + (" [cyan](new)[/]" if r["cluster_id"] in new and data.get("fits", 0) > 1 else "")
        t.add_row(str(r["cluster_id"]), name, f"{r['customers']:,}", _pct(r["share"]), escape(r["description"]))
    out.print(t)
    if data.get("criterion"):
        out.print(f"[dim]{escape(data['criterion'])}[/]")


def print_fit(out: Any, change: dict[str, Any]) -> None:
    """What a re-fit did to cluster identities: kept, new, retired."""
    out.print(f"Clusters fitted as of {change['as_of']}: {change['criterion']}")
    out.print(f"  kept (same id, same name): {', '.join(map(str, change['kept'])) or '-'}")
    out.print(f"  genuinely new: {', '.join(map(str, change['new'])) or '-'}")
    out.print(f"  retired (no longer found): {', '.join(map(str, change['retired'])) or '-'}")


def clusters_command(ctx: Any, out: Any, as_of: dt.date | None = None, refit: bool = False,
                     names: list[str] = (), as_json: bool = False) -> dict[str, Any]:
    """Body of ``lifeloop clusters``: optionally re-fit and name clusters, then show the profiles."""

    result: dict[str, Any] = {}
    if refit:
        result["fit"] = clusters.fit_command(ctx, as_of)
        if not as_json:
            print_fit(out, result["fit"])
    for item in names:
        key, eq, name = item.partition("=")
        if not eq or not key.strip().isdigit():
            raise LifeloopError(f"--name {item!r} is not ID=NAME", hint='e.g. --name 3="Digital savers"')
        entry = cluster_registry.name_cluster(ctx.lake, int(key), name)
        result.setdefault("named", []).append({"cluster_id": entry["id"], "name": entry["name"]})
        if not as_json:
            out.print(f"cluster {entry['id']} is now called {entry['name']!r}")
    dates = ctx.lake.dates(clusters.AREA)
    day = as_of or (dates[-1] if dates else None)
    profiles = clusters.profiles(ctx, day) if day else None
    if profiles is None:
        if not refit and not names:
            raise DataError("no clusters snapshot has been published yet",
                            hint="run `lifeloop run --as-of DATE --steps clusters` (it fits on first use)")
    else:
        result["profiles"] = profiles
        if not as_json:
            print_clusters(out, profiles)
    if as_json:
        print(to_json(result))
    return result


# ---------------------------------------------------------------------------- customer profile
def print_customer(out: Any, p: dict[str, Any]) -> None:
    """The customer profile as a few short tables (masked values are shown as they come)."""
    from rich.markup import escape
    from rich.table import Table

    a = p["attributes"]
    stage = p.get("stage") or {}
    seg = p.get("segments") or {}
    cl = p.get("cluster") or {}
    out.print(f"[bold]Customer {escape(p['customer_id'])}[/] as of {p['as_of']} — "
              f"{escape(str(a.get('name')))}, stage [bold]{stage.get('stage', '-')}[/] "
              f"({stage.get('rule', '-')}), tier {seg.get('tier', '-')}, cluster {escape(str(cl.get('name', '-')))}")
    t = Table(title="Attributes", title_justify="left", show_header=False)
    for k, v in a.items():
        t.add_row(k, escape("" if v is None else str(v)))
    out.print(t)
    for key, cols in (("holdings", ("account_id", "product_name", "product_type", "balance", "status", "open_date")),
                      ("transactions", ("txn_date", "direction", "amount", "txn_type", "channel")),
                      ("events", ("event_date", "event_type", "channel"))):
        rows = p.get(key) or []
        if not rows:
            continue
        t = Table(title=key.capitalize(), title_justify="left")
        for c in cols:
            t.add_column(c)
        for r in rows:
            t.add_row(*[escape("" if r.get(c) is None else str(r.get(c))) for c in cols])
        out.print(t)
    if p.get("stage_history"):
        out.print("Stage history: " + " -> ".join(f"{h['stage']} ({h['as_of']})" for h in p["stage_history"]))
    if seg:
        out.print(f"Groups: {', '.join(seg.get('groups') or []) or '-'}; micro-segments: "
                  f"{', '.join(seg.get('micro_segments') or []) or '-'}")
    acc = p["access"]
    out.print(f"[dim]Viewed by {escape(str(acc.get('user', '?')))} as {acc['role']}"
              + (f"; unmasked by grant (audited): {', '.join(acc['unmasked'])}" if acc.get("unmasked") else "")
              + (f"; masked: {', '.join(acc['masked'])}" if acc["masked"] else "; nothing masked") + "[/]")


def customer_command(ctx: Any, out: Any, customer_id: str, *, as_json: bool = False, as_of: dt.date | None = None,
                     transactions: int = 20) -> dict[str, Any]:
    """Body of ``lifeloop customer ID``: the profile, masked for the signed-in user's role, as tables or JSON."""
    profile = ctx.customer(customer_id, as_of=as_of, transactions=transactions)
    if as_json:
        print(to_json(profile))
    else:
        print_customer(out, profile)
    return profile
