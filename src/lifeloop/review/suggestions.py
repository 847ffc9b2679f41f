"""Suggestions (策略优化建议): plain-language findings drawn from a review, each with its evidence.

Pure: reads the ``lifeloop.review/1`` document, writes nothing. Kinds, most serious first:

* ``sample_ratio_mismatch`` — the arms' counts are far from their planned shares (every arm at once,
  control and cells): the result cannot be trusted until the assignment is explained (a list edited by
  hand, a channel that drops controls...). When the arm furthest from its plan is a cell and the cells'
  own split is broken, the finding is ``cell_split_mismatch`` instead, which names the cells;
* ``harmful`` — a significant negative uplift on the primary outcome: stop or rethink;
* ``no_uplift`` — no significant uplift although enough customers were exposed (``MIN_TREATED`` /
  ``MIN_CONTROL``) and their windows closed (never from an interim review): the interval says how
  large an effect could still hide;
* ``cell_split_mismatch`` — the cells' shares of the treated entries are far from the planned shares
  (chi-square, p < 0.001): no cell finding is drawn from a broken split;
* ``wave_adds_nothing`` — of two cells of a strategy whose waves are a prefix of one another (``[d1_sms]``
  against ``[d1_sms, d7_rm_call]``), both with ``MIN_TREATED`` entries and closed windows, the longer
  journey is not significantly better on the primary outcome but costs more per entry: the extra waves
  add nothing measurable;
* ``cell_wins`` — one cell is significantly better than another (Holm-adjusted among the pairs of
  cells): script B beats script A;
* ``cheaper_channel`` — within a segment, one channel buys an incremental conversion for much less
  than another (both with a positive uplift estimate);
* ``works`` — a significant positive uplift, with its money: keep it, consider widening the audience.
"""

from __future__ import annotations

from typing import Any

MIN_TREATED = 200   # exposure below which "no significant uplift" is still "too early to say"
MIN_CONTROL = 30
CHEAPER = 0.5        # one channel's cost per incremental conversion at most half the other's
# every kind, most serious first (the order findings are listed in), and how serious it is
SEVERITY = {"sample_ratio_mismatch": "critical", "cell_split_mismatch": "critical", "harmful": "critical",
            "no_uplift": "warning", "wave_adds_nothing": "warning", "cell_wins": "info",
            "cheaper_channel": "info", "works": "info"}


def _pp(v: float | None, binary: bool) -> str:
    if v is None:
        return "–"
    return f"{v * 100:+.2f}pp" if binary else f"{v:+,.0f}"


def _item(kind: str, s: dict[str, Any], zh: str, en: str, evidence: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "strategy": s["strategy"], "severity": SEVERITY[kind], "text": {"zh": zh, "en": en},
            "evidence": evidence}


def suggest(doc: dict[str, Any]) -> list[dict[str, Any]]:
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
        split = s.get("cell_sample_ratio")
        if split and split["mismatch"] and _worst_arm(srm) not in (None, srm["arms"][0]["arm"]):
            return _cells(s, name, name_en, interim)  # the cells are off, not the holdout: say which
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
    if s["verdict"] == "harmful":
        out.append(_item(
            "harmful", s,
            f"「{name}」显著降低了{h['outcome']}（{_pp(h['uplift'], binary)}，95% 区间 "
            f"{ci}）：建议暂停并复盘话术、渠道与频次。",
            f"{name_en} significantly lowers {h['outcome']} ({_pp(h['uplift'], binary)}, 95% CI {ci}): pause it and "
            "review the script, channel and frequency.", evidence))
    elif not h["significant"] and not interim and e["treated"] >= MIN_TREATED and e["control"] >= MIN_CONTROL:
        # (an interim review measures windows still running: "no uplift yet" is not a finding)
        mde = h.get("mde")
        power_zh = (f"（以当前样本量，只有不小于 {_pp(mde, binary)} 的提升才有八成把握被发现）"
                    if mde is not None else "")
        power_en = (f" (at these sizes only an uplift of {_pp(mde, binary)} or more had an 80% chance to show)"
                    if mde is not None else "")
        out.append(_item(
            "no_uplift", s,
            f"「{name}」已触达 {e['treated']:,} 位客户（对照 {e['control']:,}），{h['outcome']} 未见显著提升"
            f"（{_pp(h['uplift'], binary)}，95% 区间 {ci}）{power_zh}：建议调整客群、权益或渠道，或停用以节省成本。",
            f"{name_en} reached {e['treated']:,} customers (control {e['control']:,}) with no significant uplift in "
            f"{h['outcome']} ({_pp(h['uplift'], binary)}, 95% CI {ci}){power_en}: change the audience, offer or "
            "channel, or stop it and save the cost.", {**evidence, "mde": mde}))
    elif s["verdict"] == "works":
        money = s.get("money") or {}
        extra_zh = extra_en = ""
        if money.get("incremental_fee_income") is not None:
            extra_zh = f"，增量中收约 {money['incremental_fee_income']:,.0f} 元，成本 {money['cost']:,.0f} 元"
            extra_en = (f"; incremental fee income about {money['incremental_fee_income']:,.0f} RMB "
                        f"for {money['cost']:,.0f} RMB of contacts")
        out.append(_item(
            "works", s,
            f"「{name}」显著提升了{h['outcome']}（{_pp(h['uplift'], binary)}，95% 区间 "
            f"{ci}）{extra_zh}：建议保留并考虑扩大覆盖。",
            f"{name_en} works: {h['outcome']} {_pp(h['uplift'], binary)} (95% CI {ci}){extra_en}. Keep it and consider "
            "widening the audience.", {**evidence, "incremental_fee_income": money.get("incremental_fee_income"),
                                       "cost": money.get("cost")}))
    out.extend(_cells(s, name, name_en, interim))
    out.extend(_cheaper_channels(s, name, name_en))
    return out


def _oriented(pairwise: list[dict[str, Any]], a: str, b: str) -> dict[str, Any] | None:
    """The comparison of cell ``a`` against cell ``b`` (a - b), turning the stored one round if needed."""
    for p in pairwise:
        if (p["cell"], p["against"]) == (a, b):
            return dict(p)
        if (p["cell"], p["against"]) == (b, a):
            low, high = p["ci_low"], p["ci_high"]
            return {**p, "cell": a, "against": b, "cell_mean": p["against_mean"], "against_mean": p["cell_mean"],
                    "uplift": None if p["uplift"] is None else -p["uplift"],
                    "ci_low": None if high is None else -high, "ci_high": None if low is None else -low}
    return None


def _worst_arm(srm: dict[str, Any]) -> str | None:
    """The arm furthest from its planned count (largest chi-square term), or None without arms."""
    arms = [a for a in srm.get("arms") or [] if a["expected"]]
    return max(arms, key=lambda a: (a["customers"] - a["expected"]) ** 2 / a["expected"])["arm"] if arms else None


def _is_prefix(short: list[str], long: list[str]) -> bool:
    return len(short) < len(long) and long[:len(short)] == short


def _cells(s: dict[str, Any], name: str, name_en: str, interim: bool) -> list[dict[str, Any]]:
    """``wave_adds_nothing`` and ``cell_wins`` from the review's cells and pairwise comparisons."""
    cells, pairwise = s.get("cells") or [], s.get("pairwise") or []
    split = s.get("cell_sample_ratio")
    if split and split["mismatch"]:
        shares = "、".join(f"{c['cell']} {c['observed_share']:.1%}（计划 {c['planned_share']:.1%}）" for c in cells)
        shares_en = ", ".join(f"{c['cell']} {c['observed_share']:.1%} (planned {c['planned_share']:.1%})"
                              for c in cells)
        return [_item(
            "cell_split_mismatch", s,
            f"「{name}」各实验组的人数占比与计划不符：{shares}（p={split['p_value']:.2g}）：组间比较不可信，请先查明原因。",
            f"{name_en}: the cells' shares of the treated entries are not as planned: {shares_en} "
            f"(p = {split['p_value']:.2g}). Comparisons between cells cannot be trusted until the cause is found.",
            {"cells": [c["cell"] for c in cells], "planned_shares": [c["planned_share"] for c in cells],
             "observed_shares": [c["observed_share"] for c in cells], "p_value": split["p_value"]})]
    if not cells or not pairwise:
        return []
    by_id = {c["cell"]: c for c in cells}
    out, said = [], set()
    for short in cells:
        for long in cells:
            if not _is_prefix(short["waves"], long["waves"]) or interim:
                continue
            if short["treated"] < MIN_TREATED or long["treated"] < MIN_TREATED:
                continue
            p = _oriented(pairwise, long["cell"], short["cell"])
            if p is None or p["uplift"] is None or short["cost_per_entry"] is None or long["cost_per_entry"] is None:
                continue
            extra = long["cost_per_entry"] - short["cost_per_entry"]
            if (p["significant"] and p["uplift"] > 0) or extra <= 0:
                continue
            said.add(frozenset((short["cell"], long["cell"])))
            binary = p["kind"] == "binary"
            added = [w for w in long["waves"] if w not in short["waves"]]
            ci = f"{_pp(p['ci_low'], binary)} .. {_pp(p['ci_high'], binary)}"
            total = round(extra * long["treated"], 2)
            out.append(_item(
                "wave_adds_nothing", s,
                f"「{name}」中，收到 {', '.join(added)} 的实验组 {long['cell']}（{long['treated']:,} 人）比只收到 "
                f"{', '.join(short['waves'])} 的 {short['cell']}（{short['treated']:,} "
                f"人）在{p['outcome']}上未见显著提升"
                f"（{_pp(p['uplift'], binary)}，95% 区间 {ci}），每人却多花约 {extra:,.2f} 元（共 {total:,.2f} 元）："
                f"建议去掉 {', '.join(added)} 或改变其渠道与话术。",
                f"{name_en}: cell {long['cell']} ({long['treated']:,} customers), which also gets "
                f"{', '.join(added)}, is not significantly better on {p['outcome']} than cell {short['cell']} "
                f"({short['treated']:,}), which gets {', '.join(short['waves'])} only ({_pp(p['uplift'], binary)}, "
                f"95% CI {ci}), yet costs about {extra:,.2f} RMB more per customer ({total:,.2f} RMB in all): drop "
                f"{', '.join(added)} or change its channel or script.",
                {"outcome": p["outcome"], **_cell_evidence("shorter", short, p["against_mean"]),
                 **_cell_evidence("longer", long, p["cell_mean"]), "added_waves": added, "uplift": p["uplift"],
                 "ci_low": p["ci_low"], "ci_high": p["ci_high"], "p_value": p["p_value"], "p_holm": p["p_holm"],
                 "extra_cost_per_entry": round(extra, 4), "extra_cost": total}))
    for p in pairwise:
        if not p["significant"] or p["uplift"] is None or frozenset((p["cell"], p["against"])) in said:
            continue
        win, lose = (p["cell"], p["against"]) if p["uplift"] > 0 else (p["against"], p["cell"])
        q = _oriented(pairwise, win, lose)
        assert q is not None
        binary = q["kind"] == "binary"
        ci = f"{_pp(q['ci_low'], binary)} .. {_pp(q['ci_high'], binary)}"
        out.append(_item(
            "cell_wins", s,
            f"「{name}」实验组 {win} 的{q['outcome']}显著高于 {lose}（{_pp(q['uplift'], binary)}，95% 区间 {ci}，"
            f"Holm 校正 p={q['p_holm']:.2g}）：建议把 {lose} 的客户也改用 {win} 的做法。",
            f"{name_en}: cell {win} beats cell {lose} on {q['outcome']} ({_pp(q['uplift'], binary)}, 95% CI {ci}, "
            f"Holm-adjusted p = {q['p_holm']:.2g}): give {lose}'s customers what {win} gets.",
            {"outcome": q["outcome"], **_cell_evidence("winner", by_id[win], q["cell_mean"]),
             **_cell_evidence("loser", by_id[lose], q["against_mean"]), "uplift": q["uplift"], "ci_low": q["ci_low"],
             "ci_high": q["ci_high"], "p_value": q["p_value"], "p_holm": q["p_holm"]}))
    return out


def _cell_evidence(role: str, c: dict[str, Any], mean: float | None) -> dict[str, Any]:
    # flat keys (shorter_cell, shorter_mean, ...): the report shows evidence values one by one
    return {f"{role}_cell": c["cell"], f"{role}_waves": c["waves"], f"{role}_treated": c["treated"],
            f"{role}_mean": mean, f"{role}_cost_per_entry": c["cost_per_entry"]}


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
                f"「{name}」在{segment}客群中，{best['channel']} 每个增量转化成本约 "
                f"{best['cost_per_incremental']:,.2f} 元，"
                f"{worst['channel']} 约 {worst['cost_per_incremental']:,.2f} 元："
                f"建议该客群优先使用 {best['channel']}。",
                f"{name_en}, {segment} customers: an incremental conversion costs about "
                f"{best['cost_per_incremental']:,.2f} RMB by {best['channel']} against "
                f"{worst['cost_per_incremental']:,.2f} RMB by {worst['channel']}: prefer {best['channel']} there.",
                {"segment": segment, "cheaper": {k: best[k] for k in ("channel", "treated", "control", "uplift",
                                                                      "cost", "cost_per_incremental")},
                 "dearer": {k: worst[k] for k in ("channel", "treated", "control", "uplift", "cost",
                                                  "cost_per_incremental")}}))
    return out
