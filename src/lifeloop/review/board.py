"""The strategy board (策略管理看板) in the terminal: one line per strategy, then the suggestions.

Renders the ``lifeloop.review/1`` document; with one strategy asked for, also every outcome and the
breakdowns by wave, channel and segment.
"""

from __future__ import annotations

from typing import Any

VERDICTS = {"works": ("green", "works 有效"), "harmful": ("red", "harmful 有害"),
            "no_effect_yet": ("yellow", "no effect yet 未见效果"), "untrustworthy": ("red", "UNTRUSTWORTHY 分组异常"),
            "too_early": ("dim", "too early 数据不足")}
TRUTH = "simulator_truth"                       # review/simulator_truth.py: set in a demo workspace only
TRUTH_COLUMN = "simulator truth (demo only)"


def _fmt(v: float | None, binary: bool, signed: bool = False) -> str:
    if v is None:
        return "–"
    if binary:
        return f"{v * 100:+.2f}pp" if signed else f"{v:.2%}"
    return f"{v:+,.0f}" if signed else f"{v:,.0f}"


def _p(v: float | None) -> str:
    return "–" if v is None else ("<0.0001" if v < 1e-4 else f"{v:.4f}")


def print_board(out: Any, doc: dict[str, Any], detail: bool = False) -> None:
    """The board, the suggestions, and (``detail``) each strategy's outcomes and breakdowns."""
    from rich.table import Table

    scope = "interim: windows still running are measured to date" if doc["interim"] else "closed windows only"
    t = Table(title=f"Strategy board (策略管理看板) as of {doc['as_of']} — {scope}", title_justify="left")
    demo = any(TRUTH in s for s in doc["strategies"])   # a demo workspace: the simulator's truth beside each estimate
    for c in ("strategy", "treated / control (open)", "outcome: treated vs control", "uplift (95% CI)",
              *((TRUTH_COLUMN,) if demo else ()), "p", "verdict", "cost", "Δ fee income"):
        t.add_column(c, justify="left" if c in ("strategy", "outcome: treated vs control", "verdict") else "right")
    for s in doc["strategies"]:
        h, e, m = s["headline"] or {}, s["entries"], s["money"]
        binary = h.get("kind", "binary") == "binary"
        colour, label = VERDICTS[s["verdict"]]
        levels = (f"{h['outcome']}: {_fmt(h.get('treated_mean'), binary)} vs {_fmt(h.get('control_mean'), binary)}"
                  if h else s["primary_outcome"])
        uplift = (("[bold]" if h.get("significant") else "") + _fmt(h.get("uplift"), binary, True)
                  + f" ({_fmt(h.get('ci_low'), binary, True)} .. {_fmt(h.get('ci_high'), binary, True)})") if h else "–"
        truth = ((_fmt((s.get(TRUTH) or {}).get("uplift"), binary, True),) if demo else ())
        t.add_row(s["strategy"], f"{e['treated']:,} / {e['control']:,} ({e['in_window']:,})", levels, uplift, *truth,
                  _p(h.get("p_value")), f"[{colour}]{label}[/]", f"{m['cost']:,.2f}",
                  _fmt(m.get("incremental_fee_income"), False, True))
    out.print(t)
    for s in doc["strategies"]:
        print_selections(out, s)
    if detail:
        for s in doc["strategies"]:
            _detail(out, s)
    if doc["suggestions"]:
        out.print("[bold]Suggestions (策略优化建议)[/]")
        for x in doc["suggestions"]:
            colour = {"critical": "red", "warning": "yellow"}.get(x["severity"], "cyan")
            out.print(f" [{colour}]●[/] {x['text']['zh']}\n   {x['text']['en']}")
    elif doc["strategies"]:
        out.print("No suggestions yet: no strategy has a finding with enough evidence.")


SELECTION_VERDICTS = {"too_early": ("dim", "too early 数据不足"),
                      "no_difference_yet": ("yellow", "no difference yet 未见差异"),
                      "differs": ("green", "differs 有差异")}


def print_selections(out: Any, s: dict[str, Any]) -> None:
    """A strategy with selection cells: each selection against its own control, then the difference of uplifts
    (模型组 vs 非模型组)."""
    from rich.table import Table

    sel = s.get("selections")
    if not sel:
        return
    binary = sel["kind"] == "binary"
    t = Table(title=f"{s['strategy']}: model group vs non-model group (模型组 vs 非模型组), {sel['outcome']}, "
                    "one shared holdout", title_justify="left")
    for c in ("cell", "selects", "treated / control", "treated level", "control level", "uplift", "95% CI"):
        t.add_column(c, justify="left" if c in ("cell", "selects") else "right")
    for c in sel["cells"]:
        t.add_row(c["cell"], c["select"], f"{c['treated']:,} / {c['control']:,}", _fmt(c["treated_mean"], binary),
                  _fmt(c["control_mean"], binary), _fmt(c["uplift"], binary, True),
                  f"{_fmt(c['ci_low'], binary, True)} .. {_fmt(c['ci_high'], binary, True)}")
    out.print(t)
    for d in sel["differences"]:
        colour, label = SELECTION_VERDICTS[d["verdict"]]
        better = f": {d['better']} selects better" if d["better"] else ""
        out.print(f" {d['cell']} - {d['against']} (difference of uplifts): {_fmt(d['difference'], binary, True)} "
                  f"({_fmt(d['ci_low'], binary, True)} .. {_fmt(d['ci_high'], binary, True)}), p {_p(d['p_value'])} "
                  f"[{colour}]{label}{better}[/]")


def _detail(out: Any, s: dict[str, Any]) -> None:
    from rich.table import Table

    ev = s["evaluation"]
    if ev is None:
        out.print(f"[dim]{s['strategy']}: not enough closed entries in both arms to evaluate yet.[/]")
        return
    t = Table(title=f"{s['strategy']}: every outcome, treated vs control", title_justify="left")
    for c in ("outcome", "treated", "control", "uplift", "95% CI", "p", "CUPED", "incremental"):
        t.add_column(c, justify="left" if c == "outcome" else "right")
    for o in ev["outcomes"]:
        c = o["versus_control"][0]
        binary = o["kind"] == "binary"
        cuped = "" if o["cuped"] is None else (f"-{o['cuped']['variance_reduction']:.0%} var"
                                               if o["cuped"]["used"] else "not used")
        t.add_row(o["name"], _fmt(c["arm_mean"], binary), _fmt(c["against_mean"], binary),
                  ("[bold]" if c["significant"] else "") + _fmt(c["uplift"], binary, True),
                  f"{_fmt(c['ci_low'], binary, True)} .. {_fmt(c['ci_high'], binary, True)}", _p(c["p_value"]), cuped,
                  "–" if c["incremental"] is None else f"{c['incremental']:,.1f}")
    out.print(t)
    binary = (s["headline"] or {}).get("kind") == "binary"
    _cells(out, s)
    for by in ("wave", "channel", "segment"):
        rows = s["breakdowns"][by]
        if not rows:
            continue
        b = Table(title=f"{s['strategy']}: {s['primary_outcome']} by {by}", title_justify="left")
        for c in (by, "treated", "control", "treated level", "control level", "uplift", "95% CI", "p", "cost"):
            b.add_column(c, justify="left" if c == by else "right")
        for r in rows:
            b.add_row(r["key"], f"{r['treated']:,}", f"{r['control']:,}", _fmt(r["treated_mean"], binary),
                      _fmt(r["control_mean"], binary), _fmt(r["uplift"], binary, True),
                      f"{_fmt(r['ci_low'], binary, True)} .. {_fmt(r['ci_high'], binary, True)}", _p(r["p_value"]),
                      f"{r['cost']:,.2f}" if r["cost"] is not None else "–")
        out.print(b)


def _cells(out: Any, s: dict[str, Any]) -> None:
    """A strategy with cells: each cell against the control, then every pair of cells (primary outcome)."""
    from rich.table import Table

    if not s.get("cells"):
        return
    t = Table(title=f"{s['strategy']}: {s['primary_outcome']} by cell (实验分组)", title_justify="left")
    for c in ("cell", "waves", "own scripts", "treated", "share (planned)", "cost / entry", "cell level",
              "control level", "uplift", "95% CI", "p (Holm)"):
        t.add_column(c, justify="left" if c in ("cell", "waves", "own scripts") else "right")
    for c in s["cells"]:
        v = c["versus_control"] or {}
        binary = v.get("kind", "binary") == "binary"
        share = "–" if c["observed_share"] is None else f"{c['observed_share']:.1%}"
        t.add_row(c["cell"], ", ".join(c["waves"]), ", ".join(c["scripts"]) or "–", f"{c['treated']:,}",
                  f"{share} ({c['planned_share']:.0%})",
                  "–" if c["cost_per_entry"] is None else f"{c['cost_per_entry']:,.2f}",
                  _fmt(v.get("cell_mean"), binary), _fmt(v.get("against_mean"), binary),
                  ("[bold]" if v.get("significant") else "") + _fmt(v.get("uplift"), binary, True),
                  f"{_fmt(v.get('ci_low'), binary, True)} .. {_fmt(v.get('ci_high'), binary, True)}",
                  _p(v.get("p_holm")))
    out.print(t)
    split = s.get("cell_sample_ratio")
    if split and split["mismatch"]:
        out.print(f" [red]the cells' shares are not as planned (p = {split['p_value']:.2g}): do not trust the "
                  "comparisons between cells[/]")
    for p in s.get("pairwise") or []:
        binary = p["kind"] == "binary"
        uplift = _fmt(p["uplift"], binary, True)
        out.print(f" {p['cell']} vs {p['against']}: {_fmt(p['cell_mean'], binary)} vs "
                  f"{_fmt(p['against_mean'], binary)}, "
                  + (f"[bold]{uplift}[/]" if p["significant"] else uplift)
                  + f" ({_fmt(p['ci_low'], binary, True)} .. {_fmt(p['ci_high'], binary, True)}), p "
                    f"(Holm) {_p(p['p_holm'])}")
