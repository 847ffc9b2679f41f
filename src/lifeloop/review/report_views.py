"""The HTML report's lifecycle flows, KPIs and coverage heat map (sections 2-4), as view models.

Pure: each function turns its input (``lifeloop.kpis/1``, the coverage dict) into the plain values and
SVG fragments the template draws; review/report.py assembles the page.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lifeloop.review import svg
from lifeloop.review.kpis_render import kpis_json
from lifeloop.review.svg import DASH, money, num, pct, wan

if TYPE_CHECKING:
    from lifeloop.review.report import Labels

NEW, LEFT = "(new)", "(left)"  # a customer entering the book, and one leaving it, in the transition matrix


# ---------------------------------------------------------------------------- sections 2 and 3: flows and KPIs
def _plain(kpis: Mapping[str, Any]) -> Any:
    """The KPIs with dates as ISO text (the raw compute() output and its JSON both work)."""

    return kpis_json(dict(kpis))


def _stage_order(names: Labels, seen: Sequence[str]) -> list[str]:
    known = [s for s in names.table["stage"] if s in seen]
    return known + sorted(set(seen) - set(known))


def flows(kpis: Mapping[str, Any] | None, names: Labels) -> dict[str, Any]:
    """Stage distribution over time, the period's transition matrix and the headline rates."""
    if kpis is None:
        return {"empty": "No lifecycle KPIs: no lifecycle snapshot is published for the period. 暂无生命周期快照。"}
    k = _plain(kpis)
    dist = k.get("stage_distribution") or []
    if not dist:
        return {"empty": "No customer has a lifecycle stage in the period yet. 本期暂无客户阶段数据。"}
    dates = sorted({r["as_of"] for r in dist})
    stages = _stage_order(names, [r["stage"] for r in dist if r["stage"] is not None])
    # a stage keeps its colour from report to report: its place in the configured order picks it
    order = list(names.table["stage"]) + [s for s in stages if s not in names.table["stage"]]
    colours = {st: svg.PALETTE[order.index(st) % len(svg.PALETTE)] for st in stages}
    shares = {(r["as_of"], r["stage"]): float(r["share"] or 0) for r in dist}
    counts = {(r["as_of"], r["stage"]): int(r["customers"]) for r in dist}
    chart = svg.stacked_bars(dates, stages, shares, counts, lambda s: names.both("stage", s), colours)
    legend = [{"colour": colours[s], "label": names.both("stage", s)} for s in stages]
    latest = [{"stage": names.pair("stage", s), "customers": num(counts.get((dates[-1], s), 0)),
               "share": pct(shares.get((dates[-1], s), 0))} for s in stages]
    return {"dates": dates, "stack": chart, "legend": legend, "latest": latest, "latest_date": dates[-1],
            "matrix": _matrix(k.get("transitions") or [], stages, names), "rates": _rates(k)}


def _matrix(transitions: Sequence[Mapping[str, Any]], stages: Sequence[str], names: Labels) -> dict[str, Any] | None:
    """Flows pooled over every consecutive pair of snapshots, as shares of the from-stage."""
    if not transitions:
        return None
    flow: dict[tuple[str, str], int] = {}
    for r in transitions:
        key = (r["from_stage"] or NEW, r["to_stage"] or LEFT)
        flow[key] = flow.get(key, 0) + int(r["customers"])
    periods = len({(r["from"], r["to"]) for r in transitions})
    seen_from = {a for a, _ in flow}
    seen_to = {b for _, b in flow}
    rows = ([s for s in stages if s in seen_from] + sorted(seen_from - set(stages) - {NEW})
            + ([NEW] if NEW in seen_from else []))
    cols = ([s for s in stages if s in seen_to] + sorted(seen_to - set(stages) - {LEFT})
            + ([LEFT] if LEFT in seen_to else []))
    totals = {a: sum(n for (x, _), n in flow.items() if x == a) for a in rows}

    def label(s: str) -> str:  # "衰退期/流失预警" -> "衰退期": the cell is narrow, the tooltip has it all
        return {NEW: "新进 new", LEFT: "离开 left"}.get(s) or names.short("stage", s).split("/")[0]

    def full(s: str) -> str:
        return {NEW: "新进 new", LEFT: "离开 left"}.get(s) or names.both("stage", s)

    cells = {}
    for (a, b), n in flow.items():
        share = n / totals[a] if totals[a] else 0.0
        text = f"{share:.0%}" if share >= 0.005 else "<1%"
        cells[(a, b)] = (math.sqrt(share), text,
                         f"{full(a)} → {full(b)}: {n:,} customers ({share:.1%} of {totals[a]:,})")
    return {"chart": svg.heatmap(rows, cols, cells, label, label), "periods": periods}


def _rates(k: Mapping[str, Any]) -> list[dict[str, Any]]:
    a = k.get("activation") or {}
    churn = (k.get("churn") or {}).get("window") or {}
    react = (k.get("reactivation") or {}).get("window") or {}
    return [
        {"label": ("激活率", "Activation rate"), "value": pct(a.get("rate")),
         "detail": f"{num(a.get('activated'))} of {num(a.get('measured'))} new customers transacted within "
                   f"{a.get('days', 30)} days; {num(a.get('pending'))} still in their first days"},
        {"label": ("沉睡唤醒率", "Dormant reactivation"), "value": pct(react.get("rate")),
         "detail": f"{num(react.get('moved'))} of {num(react.get('customers'))} dormant customers "
                   "won back in the window"},
        {"label": ("流失率", "Churn rate"), "value": pct(churn.get("rate"), 2),
         "detail": f"{num(churn.get('moved'))} of {num(churn.get('customers'))} active customers "
                   "churned in the window"},
    ]


def kpi_view(kpis: Mapping[str, Any] | None, names: Labels, top: int = 15) -> dict[str, Any]:
    """Retention curves, products per customer, AUM by tier and the top branch / RM sales rows."""
    if kpis is None:
        return {"empty": "No KPIs for the period (no lifecycle snapshot is published). 暂无经营指标。"}
    k = _plain(kpis)
    out: dict[str, Any] = {"from": k.get("from"), "to": k.get("to")}
    cohorts = [r for r in k.get("retention") or [] if any(r.get(f) is not None for f in r if f.startswith("rate_"))]
    months = sorted(int(f[5:-1]) for f in (k.get("retention") or [{}])[0]
                    if f.startswith("rate_")) if k.get("retention") else []
    if cohorts:
        cohorts = cohorts[-12:]
        series = [(r["cohort"], [None if r.get(f"rate_{m}m") is None else float(r[f"rate_{m}m"]) for m in months])
                  for r in cohorts]
        out["retention"] = {"chart": svg.line_chart([f"{m} m" for m in months], series),
                            "legend": [{"colour": svg.PALETTE[i % len(svg.PALETTE)],
                                        "label": f"{r['cohort']} ({num(r['customers'])})"}
                                       for i, r in enumerate(cohorts)]}
    else:
        out["retention_empty"] = ("No entry cohort is old enough for a retention point yet: a point needs a snapshot "
                                  "1, 3, 6 or 12 months after every customer's opening date. 暂无可计算的留存点。")
    p = k.get("products_per_customer") or {}
    dist = p.get("distribution") or []
    out["products"] = {"average": num(p.get("average"), 2), "customers": num(p.get("customers")),
                       "as_of": p.get("as_of"),
                       "chart": svg.hbars([(f"{d['products']} 个产品" if d["products"] < 6 else f"{d['products']}+",
                                            float(d["customers"]), f"{d['customers']:,} ({pct(d['share'])})")
                                           for d in _cap(dist)]) if dist else None}
    tiers = k.get("aum_by_tier") or []
    if tiers:
        last = max(r["as_of"] for r in tiers)
        rows = [r for r in tiers if r["as_of"] == last]
        out["aum"] = {"as_of": last, "chart": svg.hbars([(names.both("tier", r["tier"]), float(r["aum"]), wan(r["aum"]))
                                                         for r in rows], fill=svg.PALETTE[0]),
                      "rows": [{"tier": names.pair("tier", r["tier"]), "customers": num(r["customers"]),
                                "aum": money(r["aum"]), "average": money(r.get("average_aum"))} for r in rows]}
    sales = k.get("sales_by_branch_rm") or []
    out["sales"] = [{"branch": r.get("branch_id") or DASH, "rm": r.get("rm_id") or "（无客户经理）no RM",
                     "accounts": num(r["accounts"]), "amount": money(r["amount"]),
                     "kinds": ", ".join(f"{t or '?'} {n}" for t, n in sorted((r.get("by_product_type") or {}).items(),
                                                                             key=lambda x: str(x[0])))}
                    for r in sales[:top]]
    out["sales_total"] = len(sales)
    out["daily"] = _daily_sales(k.get("daily_sales") or [], top)
    out["sales_sum"] = money(sum(float(r["amount"]) for r in sales)) if sales else None
    return out


def _daily_sales(daily: Sequence[Mapping[str, Any]], top: int) -> dict[str, Any] | None:
    """每日销售报表: the amount opened per day as columns, and the newest day's rows, largest first."""
    if not daily:
        return None
    days: dict[str, list[float]] = {}
    for r in daily:
        day = days.setdefault(r["day"], [0.0, 0.0])
        day[0] += float(r["amount"])
        day[1] += r["accounts"]
    order = sorted(days)
    chart = svg.columns([d[5:] for d in order], [days[d][0] for d in order],
                        [f"{d}: {money(days[d][0])}, {num(days[d][1])} accounts" for d in order], svg.tick_money)
    last = sorted((r for r in daily if r["day"] == order[-1]), key=lambda r: -float(r["amount"]))
    return {"chart": chart, "day": order[-1], "rows": [
        {"branch": r.get("branch_id") or DASH, "rm": r.get("rm_id") or "（无客户经理）no RM",
         "product_type": r.get("product_type") or DASH, "accounts": num(r["accounts"]), "amount": money(r["amount"])}
        for r in last[:top]], "more": max(len(last) - top, 0)}


def _cap(dist: Sequence[Mapping[str, Any]], last: int = 6) -> list[dict[str, Any]]:
    """Products per customer with the long tail (6 or more) folded into one bar."""
    head = [dict(d) for d in dist if d["products"] < last]
    tail = [d for d in dist if d["products"] >= last]
    if tail:
        head.append({"products": last, "customers": sum(d["customers"] for d in tail),
                     "share": sum(float(d["share"] or 0) for d in tail)})
    return head


# ---------------------------------------------------------------------------- section 4: coverage
def coverage_view(cov: Mapping[str, Any] | None, names: Labels) -> dict[str, Any]:
    """The segment x stage heat map, with the gap and overlap lists under it."""
    if cov is None:
        return {"empty": "No coverage: no audiences snapshot is published yet (run the daily steps). "
                         "暂无策略覆盖数据。"}
    cells_in = cov.get("cells") or []
    if not cells_in:
        return {"empty": "No segment has customers on this day. 当日无客群数据。"}
    # a tier and a featured group may share a name: cells are keyed by kind too
    gaps = {(g["kind"], g["segment"], g["stage"]) for g in cov.get("gaps") or []}
    overlaps = {(o["kind"], o["segment"], o["stage"]): o for o in cov.get("overlaps") or []}
    top = max(c["customers"] for c in cells_in) or 1
    cells = {}
    for c in cells_in:
        key = (c["kind"], c["segment"], c["stage"])
        reach = sorted((c.get("strategies") or {}).items(), key=lambda x: (-x[1], x[0]))
        lines = [f"{names.short('strategy', s)} {n:,}" for s, n in reach]
        o = overlaps.get(key)
        room = 2 if o else 3  # an overlap cell also names its winner
        if len(lines) > room:
            lines = lines[:room - 1] + [f"+{len(lines) - room + 1} more"]
        winner = (f"won: {names.short('strategy', o['winner'])}" if o and o.get("winner") else
                  "contested, not planned" if o else None)
        tip = (f"{_seg_both(c['kind'], c['segment'], names)} × {names.both('stage', c['stage'])}: "
               f"{c['customers']:,} customers, AUM {money(c['aum'])}; "
               + ("strategies: " + ", ".join(f"{names.both('strategy', s)} {n:,}" for s, n in reach) if reach
                  else "no strategy reaches it")
               + (" — GAP" if key in gaps else "")
               + (f" — {o['contested']:,} contested; wins: "
                  + (", ".join(f"{s} {n}" for s, n in o["wins"].items()) or "none")
                  if o else ""))
        cells[key] = {"value": math.sqrt(c["customers"] / top), "head": f"{c['customers']:,} · {wan(c['aum'])}",
                      "lines": lines or ["—"], "tip": tip, "gap": key in gaps, "overlap": winner}
    rows = [(s["kind"], s["segment"]) for s in cov.get("segments") or []]
    chart = svg.coverage_map(rows, cov.get("stages") or [], cells, lambda r: _seg_both(r[0], r[1], names),
                             lambda s: names.short("stage", s))
    return {"as_of": cov.get("as_of"), "chart": chart,
            "gaps": [{"segment": _seg_both(g["kind"], g["segment"], names), "stage": names.both("stage", g["stage"]),
                      "customers": num(g["customers"]), "aum": money(g["aum"])} for g in cov.get("gaps") or []],
            "overlaps": [{"segment": _seg_both(o["kind"], o["segment"], names),
                          "stage": names.both("stage", o["stage"]),
                          "contested": num(o["contested"]),
                          "strategies": ", ".join(f"{names.short('strategy', s)} {n:,}"
                                                  for s, n in o["strategies"].items()),
                          "winner": names.both("strategy", o["winner"]) if o.get("winner") else "not planned 未入名单"}
                         for o in cov.get("overlaps") or []],
            "thresholds": cov.get("thresholds") or {}, "warnings": list(cov.get("warnings") or [])}


def _seg_both(kind: str, seg: str, names: Labels) -> str:
    return names.both("tier" if kind == "tier" else "group", seg)


# ---------------------------------------------------------------------------- section 5: models
def models_view(evaluations: Sequence[Mapping[str, Any]] | None) -> dict[str, Any]:
    """Each active classifier's lift chart on its newest closed outcome window, with AUC, PR-AUC and the rule."""
    if not evaluations:
        return {"empty": "No active classifier with a closed outcome window (fit and promote one: `lifeloop models "
                         "fit churn`). 暂无模型评估。"}

    def ci(m: Mapping[str, Any]) -> str:
        return f"{m['value']:.3f} [{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}]"

    out = []
    for r in evaluations:
        m, rule, w = r["metrics"], r["rule_declining"], r["window"]
        out.append({"name": r["model"], "version": r["version"], "label": r["label"], "in_sample": r["in_sample"],
                    "window": f"features of {w['features_as_of']}, outcomes until {w['outcomes_until']}",
                    "customers": num(m["customers"]), "positives": num(m["positives"]),
                    "rows": [("AUC", ci(m["auc"]), ci(rule["auc"])), ("PR-AUC", ci(m["pr_auc"]), ci(rule["pr_auc"])),
                             ("top-decile lift", ci(m["top_decile_lift"]), ci(rule["top_decile_lift"]))],
                    "chart": svg.lift_chart(r["lift"], f"lift by decile of {r['model']} {r['version']}")})
    return {"models": out}
