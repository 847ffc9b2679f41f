"""Suggestions (策略优化建议): plain-language findings drawn from a review, each with its evidence.

Pure: reads the ``lifeloop.review/1`` document, writes nothing. Kinds, most serious first:

* ``sample_ratio_mismatch`` — the control share is far from the planned holdout: the result cannot be
  trusted until the assignment is explained (a list edited by hand, a channel that drops controls...);
* ``harmful`` — a significant negative uplift on the primary outcome: stop or rethink;
* ``no_uplift`` — no significant uplift although enough customers were exposed (``MIN_TREATED`` /
  ``MIN_CONTROL``) and their windows closed (never from an interim review): the interval says how
  large an effect could still hide;
* ``cheaper_channel`` — within a segment, one channel buys an incremental conversion for much less
  than another (both with a positive uplift estimate);
* ``works`` — a significant positive uplift, with its money: keep it, consider widening the audience.
"""

from __future__ import annotations

from typing import Any

MIN_TREATED = 200   # exposure below which "no significant uplift" is still "too early to say"
MIN_CONTROL = 30
CHEAPER = 0.5        # one channel's cost per incremental conversion at most half the other's
SEVERITY = {"sample_ratio_mismatch": "critical", "harmful": "critical", "no_uplift": "warning",
            "cheaper_channel": "info", "works": "info"}


def _pp(v: float | None, binary: bool) -> str:
    if v is None:
        return "–"
    return f"{v * 100:+.2f}pp" if binary else f"{v:+,.0f}"


def _item(kind: str, s: dict[str, Any], zh: str, en: str, evidence: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "strategy": s["strategy"], "severity": SEVERITY[kind], "text": {"zh": zh, "en": en},
            "evidence": evidence}


def suggest(doc: dict[str, Any], config: Any = None) -> list[dict[str, Any]]:
    """Every finding for every strategy of the review, most serious first."""
    out: list[dict[str, Any]] = []
    for s in doc["strategies"]:
        out.extend(_for_strategy(s, interim=bool(doc.get("interim"))))
    rank = {k: i for i, k in enumerate(SEVERITY)}
    return sorted(out, key=lambda x: (rank[x["kind"]], x["strategy"]))


def _for_strategy(s: dict[str, Any], interim: bool = False) -> list[dict[str, Any]]:
    name = s["name"].get("zh") or s["strategy"]
    name_en = s["name"].get("en") or s["strategy"]
    h, srm, e = s.get("headline"), s.get("sample_ratio"), s["entries"]
    out = []
    if srm and srm["mismatch"]:
        out.append(_item(
            "sample_ratio_mismatch", s,
            f"「{name}」对照组占比 {srm['observed_holdout']:.1%}，计划为 {srm['planned_holdout']:.1%}"
            f"（p={srm['p_value']:.2g}）：分组被破坏，结论不可信，请先查明原因（名单是否被人工修改、渠道是否漏掉对照组）。",
            f"{name_en}: the control group is {srm['observed_holdout']:.1%} of entries against a planned "
            f"{srm['planned_holdout']:.1%} (p = {srm['p_value']:.2g}). The split is broken and the result cannot be "
            "trusted until the cause is found (lists edited by hand? a channel dropping controls?).",
            {k: srm[k] for k in ("planned_holdout", "observed_holdout", "control", "treated", "p_value")}))
        return out  # nothing else about a broken experiment is worth saying
    if not h or h.get("uplift") is None:
        return out
    binary = h["kind"] == "binary"
    evidence = {"outcome": h["outcome"], "uplift": h["uplift"], "ci_low": h["ci_low"], "ci_high": h["ci_high"],
                "p_value": h["p_value"], "treated": e["treated"], "control": e["control"]}
    ci = f"{_pp(h['ci_low'], binary)} .. {_pp(h['ci_high'], binary)}"
    if h["significant"] and h["uplift"] < 0:
        out.append(_item(
            "harmful", s,
            f"「{name}」显著降低了{h['outcome']}（{_pp(h['uplift'], binary)}，95% 区间 {ci}）：建议暂停并复盘话术、渠道与频次。",
            f"{name_en} significantly lowers {h['outcome']} ({_pp(h['uplift'], binary)}, 95% CI {ci}): pause it and "
            "review the script, channel and frequency.", evidence))
    elif not h["significant"] and not interim and e["treated"] >= MIN_TREATED and e["control"] >= MIN_CONTROL:
        # (an interim review measures windows still running: "no uplift yet" is not a finding)
        out.append(_item(
            "no_uplift", s,
            f"「{name}」已触达 {e['treated']:,} 位客户（对照 {e['control']:,}），{h['outcome']} 未见显著提升"
            f"（{_pp(h['uplift'], binary)}，95% 区间 {ci}）：建议调整客群、权益或渠道，或停用以节省成本。",
            f"{name_en} reached {e['treated']:,} customers (control {e['control']:,}) with no significant uplift in "
            f"{h['outcome']} ({_pp(h['uplift'], binary)}, 95% CI {ci}): change the audience, offer or channel, or stop "
            "it and save the cost.", evidence))
    elif h["significant"]:
        money = s.get("money") or {}
        extra_zh = extra_en = ""
        if money.get("incremental_fee_income") is not None:
            extra_zh = f"，增量中收约 {money['incremental_fee_income']:,.0f} 元，成本 {money['cost']:,.0f} 元"
            extra_en = f"; incremental fee income about {money['incremental_fee_income']:,.0f} RMB for {money['cost']:,.0f} RMB of contacts"
        out.append(_item(
            "works", s,
            f"「{name}」显著提升了{h['outcome']}（{_pp(h['uplift'], binary)}，95% 区间 {ci}）{extra_zh}：建议保留并考虑扩大覆盖。",
            f"{name_en} works: {h['outcome']} {_pp(h['uplift'], binary)} (95% CI {ci}){extra_en}. Keep it and consider "
            "widening the audience.", {**evidence, "incremental_fee_income": money.get("incremental_fee_income"),
                                       "cost": money.get("cost")}))
    out.extend(_cheaper_channels(s, name, name_en))
    return out


def _cheaper_channels(s: dict[str, Any], name: str, name_en: str) -> list[dict[str, Any]]:
    """Within a segment, a channel whose cost per incremental conversion is at most half another's."""
    rows = [r for r in s.get("breakdowns", {}).get("segment_channel", [])
            if r.get("cost_per_incremental") is not None and r.get("uplift") and r["uplift"] > 0]
    by_segment: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        segment, _, channel = r["key"].partition(" / ")
        by_segment.setdefault(segment, []).append({**r, "channel": channel})
    out = []
    for segment, found in sorted(by_segment.items()):
        if len(found) < 2:
            continue
        found.sort(key=lambda r: r["cost_per_incremental"])
        best, worst = found[0], found[-1]
        if best["cost_per_incremental"] <= CHEAPER * worst["cost_per_incremental"]:
            out.append(_item(
                "cheaper_channel", s,
                f"「{name}」在{segment}客群中，{best['channel']} 每个增量转化成本约 {best['cost_per_incremental']:,.2f} 元，"
                f"{worst['channel']} 约 {worst['cost_per_incremental']:,.2f} 元：建议该客群优先使用 {best['channel']}。",
                f"{name_en}, {segment} customers: an incremental conversion costs about "
                f"{best['cost_per_incremental']:,.2f} RMB by {best['channel']} against "
                f"{worst['cost_per_incremental']:,.2f} RMB by {worst['channel']}: prefer {best['channel']} there.",
                {"segment": segment, "cheaper": {k: best[k] for k in ("channel", "treated", "control", "uplift",
                                                                      "cost", "cost_per_incremental")},
                 "dearer": {k: worst[k] for k in ("channel", "treated", "control", "uplift", "cost",
                                                  "cost_per_incremental")}}))
    return out
