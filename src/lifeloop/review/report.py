"""The HTML report (经营回检报告): strategy board, lifecycle flows, KPIs and map coverage, in one file.

Pure rendering: :func:`render_report` takes the review (``lifeloop.review/1``), the KPIs
(``lifeloop.kpis/1``, raw or as JSON) and the coverage dicts and returns one self-contained HTML page
(inline CSS and SVG, no script, no font, no image, no address outside the file). Each section whose
input is missing says why instead of failing. The CLI (``lifeloop report``) does the reading.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

from lifeloop.review import svg
from lifeloop.review.svg import DASH, amount, money, num, pct, pp, pval, roi, signed_money, wan

Pair = tuple[str, str]

# zh / en names of the default bank template; the CLI adds the workspace's own (lifecycle.yaml, ...)
DEFAULT_LABELS: dict[str, dict[str, Pair]] = {
    "stage": {"prospect": ("潜在客户", "Prospect"), "onboarding": ("新客/首面", "Onboarding"),
              "honeymoon": ("蜜月期", "Honeymoon"), "growing": ("成长期", "Growing"), "mature": ("成熟期", "Mature"),
              "declining": ("衰退期", "Declining"), "dormant": ("沉睡", "Dormant"), "churned": ("流失", "Churned"),
              "won_back": ("挽回/唤醒", "Won back")},
    "tier": {"mass": ("大众", "Mass"), "potential": ("潜力", "Potential"), "wealth": ("财富", "Wealth"),
             "private": ("私行", "Private banking")},
    "group": {"payroll": ("代发", "Payroll"), "silver": ("银发", "Silver-haired"), "middle_class": ("中产", "Middle class"),
              "parent_child": ("亲子", "Parent-child"), "new_citizen": ("新市民", "New citizens"),
              "small_business": ("小微企业主", "Small business")},
    "channel": {"sms": ("短信", "SMS"), "push": ("手机银行推送", "App push"), "email": ("邮件", "E-mail"),
                "call": ("远程银行外呼", "Outbound call"), "rm": ("客户经理", "Relationship manager"),
                "branch": ("网点", "Branch"), "wechat": ("企业微信", "WeChat")},
    # the same words as the terminal's board (review/board.py)
    "verdict": {"works": ("有效", "Works"), "no_effect_yet": ("未见效果", "No effect yet"),
                "harmful": ("有害", "Harmful"), "untrustworthy": ("分组异常", "Untrustworthy"),
                "too_early": ("数据不足", "Too early")},
    "objective": {"scale": ("规模", "Scale"), "customers": ("客户", "Customers"), "fee_income": ("中收", "Fee income")},
    "severity": {"critical": ("严重", "Critical"), "warning": ("关注", "Warning"), "info": ("提示", "Info")},
    "dimension": {"wave": ("波次", "Wave"), "channel": ("渠道", "Channel"), "segment": ("客群", "Segment")},
}
NEW, LEFT = "(new)", "(left)"
FOREST_W = 190  # px of a forest plot on the board


# ---------------------------------------------------------------------------- labels
class Labels:
    """zh / en names by kind (stage, tier, group, channel, strategy, ...), falling back to the code."""

    def __init__(self, extra: Mapping[str, Mapping[str, Pair]] | None, language: str):
        self.table = {k: dict(v) for k, v in DEFAULT_LABELS.items()}
        for kind, names in (extra or {}).items():
            self.table.setdefault(kind, {}).update(names)
        self.language = language

    def pair(self, kind: str, code: Any) -> Pair:
        """(zh, en) for a code; unknown codes show as themselves."""
        if code is None:
            return ("（无）", "(none)")
        found = self.table.get(kind, {}).get(str(code))
        return found if found else (str(code), str(code).replace("_", " "))

    def short(self, kind: str, code: Any) -> str:
        """The name in the bank's language (for chart labels, where room is short)."""
        zh, en = self.pair(kind, code)
        return zh if self.language == "zh" else en

    def both(self, kind: str, code: Any) -> str:
        """'zh en' (or just one when they are the same)."""
        zh, en = self.pair(kind, code)
        return zh if zh == en else f"{zh} {en}"

    def segment(self, code: Any) -> Pair:
        """A segment key that may be a tier or a featured group."""
        return self.pair("tier" if str(code) in self.table["tier"] else "group", code)


# ---------------------------------------------------------------------------- section 1: strategy board
def _uplift_fmt(kind: str | None):
    return pp if kind != "amount" else signed_money


def _tick_fmt(kind: str | None):
    return svg.tick_points if kind != "amount" else svg.tick_money


def _mean_fmt(kind: str | None):
    return pct if kind != "amount" else money


def board(review: Mapping[str, Any] | None, names: Labels) -> dict[str, Any]:
    """The strategy board's rows, forest plots, suggestions and per-strategy breakdowns."""
    if review is None:
        return {"empty": "No post-evaluation is available yet (no review was computed for this workspace). "
                         "暂无策略后评估结果。"}
    strategies = [s for s in review.get("strategies") or [] if s]
    if not strategies:
        return {"empty": "No strategy has entries yet: nothing to evaluate. 暂无策略产生入组客户。",
                "suggestions": suggestions(review, names, {})}
    for s in strategies:
        names.table.setdefault("strategy", {}).setdefault(
            s["strategy"], ((s.get("name") or {}).get("zh") or s["strategy"], (s.get("name") or {}).get("en") or s["strategy"]))
    # rates share one axis (percentage points compare across strategies); an amount (RMB of AUM, of
    # purchases, of fee income) is only comparable with itself, so each such row has its own scale
    shared = svg.forest_domain([s.get("headline") or {} for s in strategies
                                if ((s.get("headline") or {}).get("kind") or "binary") != "amount"])
    rows = []
    for s in strategies:
        head = s.get("headline") or {}
        kind = head.get("kind") or "binary"
        fmt = _uplift_fmt(kind)
        money_ = s.get("money") or {}
        entries = s.get("entries") or {}
        srm = s.get("sample_ratio") or {}
        obj = s.get("objective") or {}
        rows.append({
            "id": s["strategy"], "name": names.pair("strategy", s["strategy"]), "owner": s.get("owner") or DASH,
            "objective": names.both("objective", obj.get("kind")) if obj else DASH,
            "objective_detail": f"{obj.get('metric') or ''} · {obj.get('window_days') or '?'}d" if obj else "",
            "offer": s.get("offer"), "treated": num(entries.get("treated")), "control": num(entries.get("control")),
            "in_window": num(entries.get("in_window")),
            "outcome": head.get("outcome") or s.get("primary_outcome") or "",
            "uplift": fmt(head.get("uplift")),
            "ci": f"{fmt(head.get('ci_low'))} .. {fmt(head.get('ci_high'))}" if head.get("ci_low") is not None else DASH,
            "rates": f"{_mean_fmt(kind)(head.get('treated_mean'))} vs {_mean_fmt(kind)(head.get('control_mean'))}"
            if head.get("uplift") is not None else None,
            "forest": svg.forest_row(head, shared, fmt, width=FOREST_W) if kind != "amount" else
            svg.forest_row(head, svg.forest_domain([head]), fmt, width=FOREST_W, ticks=svg.tick_money),
            "kind": kind, "p": pval(head.get("p_value")),
            "significant": bool(head.get("significant")),
            "verdict": s.get("verdict") or "too_early", "verdict_label": names.pair("verdict", s.get("verdict") or "too_early"),
            "incremental_aum": amount(money_.get("incremental_aum")),
            "incremental_fee": amount(money_.get("incremental_fee_income")),
            "cost": amount(money_.get("cost")), "roi": roi(money_.get("roi")),
            "roi_ci": f"{roi(money_['roi_ci'][0])} .. {roi(money_['roi_ci'][1])}" if money_.get("roi_ci") else "",
            "srm": _srm_text(srm) if srm.get("mismatch") else None,
            "breakdowns": _breakdowns(s, kind, names),
            "feedback": _feedback(s.get("feedback")),
        })
    rates = any(r["kind"] != "amount" and r["rates"] for r in rows)
    axis = svg.forest_axis(shared, svg.tick_points, width=FOREST_W) if rates else None
    amounts = any(r["kind"] == "amount" for r in rows)
    return {"rows": rows, "axis": axis, "amounts": amounts, "interim": bool(review.get("interim")), "alpha": review.get("alpha"),
            "suggestions": suggestions(review, names, {s["strategy"]: (s.get("headline") or {}).get("kind") for s in strategies})}


def _srm_text(srm: Mapping[str, Any]) -> str:
    return (f"Sample-ratio mismatch 样本比例失衡: control {pct(srm.get('observed_holdout'))} vs planned "
            f"{pct(srm.get('planned_holdout'))} (p {pval(srm.get('p_value'))})")


def _feedback(fb: Mapping[str, Any] | None) -> str | None:
    if not fb or not fb.get("recorded"):
        return None
    parts = ", ".join(f"{k.replace('_', ' ')} {num(v)}" for k, v in (fb.get("by_outcome") or {}).items())
    return f"{num(fb['recorded'])} RM feedback forms 客户经理反馈" + (f": {parts}" if parts else "")


def _breakdowns(s: Mapping[str, Any], kind: str, names: Labels) -> list[dict[str, Any]]:
    parts = s.get("breakdowns") or {}
    every = [r for rows in parts.values() for r in rows or []]
    if not every:
        return []
    domain = svg.forest_domain(every)
    fmt, mean = _uplift_fmt(kind), _mean_fmt(kind)
    out = []
    for dim in ("wave", "channel", "segment"):
        rows = parts.get(dim) or []
        if not rows:
            continue
        label = (lambda k: names.segment(k)) if dim == "segment" else (
            (lambda k: names.pair("channel", k)) if dim == "channel" else (lambda k: (str(k), str(k))))
        out.append({"dimension": names.pair("dimension", dim), "rows": [{
            "key": label(r.get("key")), "treated": num(r.get("treated")), "control": num(r.get("control")),
            "treated_mean": mean(r.get("treated_mean")), "control_mean": mean(r.get("control_mean")),
            "uplift": fmt(r.get("uplift")),
            "ci": f"{fmt(r.get('ci_low'))} .. {fmt(r.get('ci_high'))}" if r.get("ci_low") is not None else DASH,
            "p": pval(r.get("p_value")), "significant": bool(r.get("significant")),
            "cost_per_incremental": money(r.get("cost_per_incremental")),
            "forest": svg.forest_row(r, domain, fmt, width=200, height=18)} for r in rows]})
    return [{"dimensions": out, "axis": svg.forest_axis(domain, _tick_fmt(kind), width=200)}]


def suggestions(review: Mapping[str, Any], names: Labels, kinds: Mapping[str, Any]) -> list[dict[str, Any]]:
    """策略优化建议: each finding with its severity, text in both languages and formatted evidence."""
    out = []
    for sg in review.get("suggestions") or []:
        text = sg.get("text") or {}
        kind = kinds.get(sg.get("strategy"))
        evidence = [(k.replace("_", " "), _evidence(k, v, kind)) for k, v in (sg.get("evidence") or {}).items()]
        out.append({"severity": sg.get("severity") or "info", "severity_label": names.pair("severity", sg.get("severity") or "info"),
                    "strategy": names.pair("strategy", sg.get("strategy")) if sg.get("strategy") else None,
                    "kind": (sg.get("kind") or "").replace("_", " "), "zh": text.get("zh"), "en": text.get("en"),
                    "evidence": evidence})
    return out


def _evidence(key: str, v: Any, kind: Any) -> str:
    if isinstance(v, dict):  # e.g. cheaper_channel's "cheaper" and "dearer" rows
        return ", ".join(f"{k2.replace('_', ' ')} {_evidence(k2, x, kind)}" for k2, x in v.items())
    if isinstance(v, str) or v is None or isinstance(v, bool):
        return DASH if v is None else str(v)
    if isinstance(v, (list, tuple)):
        return " .. ".join(_evidence(key, x, kind) for x in v)
    if key in ("uplift", "ci_low", "ci_high", "mde") or key.endswith("_uplift"):
        return _uplift_fmt(kind)(v)
    if "p_value" in key:
        return pval(v)
    if any(w in key for w in ("holdout", "rate", "share")):
        return pct(v)
    if any(w in key for w in ("cost", "aum", "income", "money", "value")):
        return money(v)
    return num(v) if float(v).is_integer() else f"{float(v):,.4g}"


# ---------------------------------------------------------------------------- sections 2 and 3: flows and KPIs
def _plain(kpis: Mapping[str, Any]) -> Any:
    """The KPIs with dates as ISO text (the raw compute() output and its JSON both work)."""
    from lifeloop.review.kpis_render import kpis_json

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
    rows = [s for s in stages if s in seen_from] + sorted(seen_from - set(stages) - {NEW}) + ([NEW] if NEW in seen_from else [])
    cols = [s for s in stages if s in seen_to] + sorted(seen_to - set(stages) - {LEFT}) + ([LEFT] if LEFT in seen_to else [])
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
         "detail": f"{num(react.get('moved'))} of {num(react.get('customers'))} dormant customers won back in the window"},
        {"label": ("流失率", "Churn rate"), "value": pct(churn.get("rate"), 2),
         "detail": f"{num(churn.get('moved'))} of {num(churn.get('customers'))} active customers churned in the window"},
    ]


def kpi_view(kpis: Mapping[str, Any] | None, names: Labels, top: int = 15) -> dict[str, Any]:
    """Retention curves, products per customer, AUM by tier and the top branch / RM sales rows."""
    if kpis is None:
        return {"empty": "No KPIs for the period (no lifecycle snapshot is published). 暂无经营指标。"}
    k = _plain(kpis)
    out: dict[str, Any] = {"from": k.get("from"), "to": k.get("to")}
    cohorts = [r for r in k.get("retention") or [] if any(r.get(f) is not None for f in r if f.startswith("rate_"))]
    months = sorted(int(f[5:-1]) for f in (k.get("retention") or [{}])[0] if f.startswith("rate_")) if k.get("retention") else []
    if cohorts:
        cohorts = cohorts[-12:]
        series = [(r["cohort"], [None if r.get(f"rate_{m}m") is None else float(r[f"rate_{m}m"]) for m in months]) for r in cohorts]
        out["retention"] = {"chart": svg.line_chart([f"{m} m" for m in months], series),
                            "legend": [{"colour": svg.PALETTE[i % len(svg.PALETTE)], "label": f"{r['cohort']} ({num(r['customers'])})"}
                                       for i, r in enumerate(cohorts)]}
    else:
        out["retention_empty"] = ("No entry cohort is old enough for a retention point yet: a point needs a snapshot "
                                  "1, 3, 6 or 12 months after every customer's opening date. 暂无可计算的留存点。")
    p = k.get("products_per_customer") or {}
    dist = p.get("distribution") or []
    out["products"] = {"average": num(p.get("average"), 2), "customers": num(p.get("customers")), "as_of": p.get("as_of"),
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
        return {"empty": "No coverage: no audiences snapshot is published yet (run the daily steps). 暂无策略覆盖数据。"}
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
               + (f" — {o['contested']:,} contested; wins: " + (", ".join(f"{s} {n}" for s, n in o["wins"].items()) or "none")
                  if o else ""))
        cells[key] = {"value": math.sqrt(c["customers"] / top), "head": f"{c['customers']:,} · {wan(c['aum'])}",
                      "lines": lines or ["—"], "tip": tip, "gap": key in gaps, "overlap": winner}
    rows = [(s["kind"], s["segment"]) for s in cov.get("segments") or []]
    chart = svg.coverage_map(rows, cov.get("stages") or [], cells, lambda r: _seg_both(r[0], r[1], names),
                             lambda s: names.short("stage", s))
    return {"as_of": cov.get("as_of"), "chart": chart,
            "gaps": [{"segment": _seg_both(g["kind"], g["segment"], names), "stage": names.both("stage", g["stage"]),
                      "customers": num(g["customers"]), "aum": money(g["aum"])} for g in cov.get("gaps") or []],
            "overlaps": [{"segment": _seg_both(o["kind"], o["segment"], names), "stage": names.both("stage", o["stage"]),
                          "contested": num(o["contested"]),
                          "strategies": ", ".join(f"{names.short('strategy', s)} {n:,}" for s, n in o["strategies"].items()),
                          "winner": names.both("strategy", o["winner"]) if o.get("winner") else "not planned 未入名单"}
                         for o in cov.get("overlaps") or []],
            "thresholds": cov.get("thresholds") or {}}


def _seg_both(kind: str, seg: str, names: Labels) -> str:
    return names.both("tier" if kind == "tier" else "group", seg)


# ---------------------------------------------------------------------------- the page
def _environment():
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(loader=PackageLoader("lifeloop", "templates/report"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=num, money=money, pct=pct, px=lambda v: f"{float(v):.1f}")
    env.globals.update(pct=pct)
    return env


def render_report(*, bank_name: str, as_of: dt.date | str | None, review: Mapping[str, Any] | None,
                  kpis: Mapping[str, Any] | None, coverage: Mapping[str, Any] | None,
                  labels: Mapping[str, Mapping[str, Pair]] | None = None, missing: Mapping[str, str] | None = None,
                  language: str = "zh", generated: str | None = None) -> str:
    """The self-contained HTML report (策略管理看板, lifecycle flows, KPIs, coverage) as one string.

    ``labels`` adds zh/en names by kind (stage, tier, group, strategy, channel); ``missing`` gives,
    per section (review, kpis, coverage), why its input is absent, shown instead of the default text."""
    names = Labels(labels, language)
    sections = {"board": board(review, names), "flows": flows(kpis, names), "kpis": kpi_view(kpis, names),
                "coverage": coverage_view(coverage, names)}
    for section, source in (("board", "review"), ("flows", "kpis"), ("kpis", "kpis"), ("coverage", "coverage")):
        if (missing or {}).get(source) and "empty" in sections[section]:
            sections[section]["empty"] = missing[source]
    return _environment().get_template("report.html.j2").render(
        bank_name=bank_name, as_of=str(as_of) if as_of else DASH, review_as_of=(review or {}).get("as_of"),
        generated=generated, **sections)
