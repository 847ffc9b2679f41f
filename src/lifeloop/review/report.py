"""The HTML report (经营回检报告): strategy board, lifecycle flows, KPIs and map coverage, in one file.

Pure rendering: :func:`render_report` takes the review (``lifeloop.review/1``), the KPIs
(``lifeloop.kpis/1``, raw or as JSON) and the coverage dicts and returns one self-contained HTML page
(inline CSS and SVG, no script, no font, no image, no address outside the file). Each section whose
input is missing says why instead of failing. The CLI (``lifeloop report``) does the reading.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from lifeloop.review import svg
from lifeloop.review.report_views import coverage_view, flows, kpi_view, models_view
from lifeloop.review.svg import DASH, amount, money, num, pct, pp, pval, roi, signed_money

Pair = tuple[str, str]

# zh / en names of the default bank template; the CLI adds the workspace's own (lifecycle.yaml, ...)
DEFAULT_LABELS: dict[str, dict[str, Pair]] = {
    "stage": {"prospect": ("潜在客户", "Prospect"), "onboarding": ("新客/首面", "Onboarding"),
              "honeymoon": ("蜜月期", "Honeymoon"), "growing": ("成长期", "Growing"), "mature": ("成熟期", "Mature"),
              "declining": ("衰退期", "Declining"), "dormant": ("沉睡", "Dormant"), "churned": ("流失", "Churned"),
              "won_back": ("挽回/唤醒", "Won back")},
    "tier": {"mass": ("大众", "Mass"), "potential": ("潜力", "Potential"), "wealth": ("财富", "Wealth"),
             "private": ("私行", "Private banking")},
    "group": {"payroll": ("代发", "Payroll"), "silver": ("银发", "Silver-haired"),
              "middle_class": ("中产", "Middle class"),
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
    "selection_verdict": {"too_early": ("数据不足", "too early"),
                          "no_difference_yet": ("未见差异", "no difference yet"), "differs": ("有差异", "differs")},
}
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
            s["strategy"],
            ((s.get("name") or {}).get("zh") or s["strategy"], (s.get("name") or {}).get("en") or s["strategy"]))
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
            "ci": (f"{fmt(head.get('ci_low'))} .. {fmt(head.get('ci_high'))}" if head.get("ci_low") is not None
                   else DASH),
            "rates": f"{_mean_fmt(kind)(head.get('treated_mean'))} vs {_mean_fmt(kind)(head.get('control_mean'))}"
            if head.get("uplift") is not None else None,
            "forest": svg.forest_row(head, shared, fmt, width=FOREST_W) if kind != "amount" else
            svg.forest_row(head, svg.forest_domain([head]), fmt, width=FOREST_W, ticks=svg.tick_money),
            "kind": kind, "p": pval(head.get("p_value")),
            "significant": bool(head.get("significant")),
            "verdict": s.get("verdict") or "too_early",
            "verdict_label": names.pair("verdict", s.get("verdict") or "too_early"),
            "incremental_aum": amount(money_.get("incremental_aum")),
            "incremental_fee": amount(money_.get("incremental_fee_income")),
            "cost": amount(money_.get("cost")), "roi": roi(money_.get("roi")),
            "roi_ci": f"{roi(money_['roi_ci'][0])} .. {roi(money_['roi_ci'][1])}" if money_.get("roi_ci") else "",
            "srm": _srm_text(srm) if srm.get("mismatch") else None,
            "breakdowns": _breakdowns(s, kind, names),
            "selections": _selections(s.get("selections"), names),
            "feedback": _feedback(s.get("feedback")),
            # the demo only (review/simulator_truth.py): the simulator's true uplift on the same entries and days
            "truth": (fmt((s.get("simulator_truth") or {}).get("uplift")) if "simulator_truth" in s else None),
        })
    rates = any(r["kind"] != "amount" and r["rates"] for r in rows)
    axis = svg.forest_axis(shared, svg.tick_points, width=FOREST_W) if rates else None
    amounts = any(r["kind"] == "amount" for r in rows)
    return {"rows": rows, "axis": axis, "amounts": amounts, "interim": bool(review.get("interim")),
            "truth": any("simulator_truth" in s for s in strategies),
            "alpha": review.get("alpha"),
            "suggestions": suggestions(review, names,
                                       {s["strategy"]: (s.get("headline") or {}).get("kind") for s in strategies})}


def _selections(sel: Mapping[str, Any] | None, names: Labels) -> dict[str, Any] | None:
    """Selection cells (模型组 vs 非模型组): each cell against its own control, and the differences of uplifts."""
    if not sel:
        return None
    fmt, mean = _uplift_fmt(sel.get("kind")), _mean_fmt(sel.get("kind"))

    def ci(x: Mapping[str, Any], key: str = "uplift") -> str:
        return f"{fmt(x.get(key))} ({fmt(x['ci_low'])} .. {fmt(x['ci_high'])})" if x.get("ci_low") is not None \
            else DASH

    cells = [{"cell": c["cell"], "select": c["select"], "treated": num(c["treated"]), "control": num(c["control"]),
              "levels": f"{mean(c.get('treated_mean'))} vs {mean(c.get('control_mean'))}", "uplift": ci(c)}
             for c in sel.get("cells") or []]
    diffs = [{"pair": f"{d['cell']} − {d['against']}", "difference": ci(d, "difference"), "p": pval(d.get("p_value")),
              "verdict": d["verdict"], "label": names.pair("selection_verdict", d["verdict"]),
              "better": d.get("better")} for d in sel.get("differences") or []]
    return {"outcome": sel.get("outcome"), "cells": cells, "differences": diffs}


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
        out.append({"severity": sg.get("severity") or "info",
                    "severity_label": names.pair("severity", sg.get("severity") or "info"),
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
                  language: str = "zh", generated: str | None = None,
                  models: list[Mapping[str, Any]] | None = None) -> str:
    """The self-contained HTML report (策略管理看板, lifecycle flows, KPIs, coverage, model lift) as one string.

    ``labels`` adds zh/en names by kind (stage, tier, group, strategy, channel); ``missing`` gives,
    per section (review, kpis, coverage), why its input is absent, shown instead of the default text."""
    names = Labels(labels, language)
    sections = {"board": board(review, names), "flows": flows(kpis, names), "kpis": kpi_view(kpis, names),
                "coverage": coverage_view(coverage, names), "models": models_view(models)}
    for section, source in (("board", "review"), ("flows", "kpis"), ("kpis", "kpis"), ("coverage", "coverage")):
        if (missing or {}).get(source) and "empty" in sections[section]:
            sections[section]["empty"] = missing[source]
    return _environment().get_template("report.html.j2").render(
        bank_name=bank_name, as_of=str(as_of) if as_of else DASH, review_as_of=(review or {}).get("as_of"),
        generated=generated, **sections)
