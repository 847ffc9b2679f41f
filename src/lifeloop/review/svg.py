"""Chart geometry and number formats for the HTML report: pure functions from numbers to shapes and text.

A chart is a dict ``{"width", "height", "label", "shapes"}``; each shape is a dict with a ``kind``
(rect, line, circle, text, polyline) and its SVG attributes, an optional CSS class ``cls``, a fill
colour and a ``title`` (the tooltip). The template's one macro turns shapes into elements, so every
text goes through Jinja2's escaping and no chart library, script or font is needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Chart = dict[str, Any]
Fmt = Callable[[float], str]

# a restrained categorical palette (one hue per lifecycle stage / series), readable in print
PALETTE = ("#1f4e79", "#2e86ab", "#6aa84f", "#a3c585", "#e0a526", "#d9822b", "#b03a2e", "#7f6a93",
           "#5f9ea0", "#8c8c8c", "#c27ba0", "#4f6d3a")
LOW, HIGH = (238, 243, 249), (31, 78, 121)  # heat-map ramp: near white to the report's navy
DASH = "–"  # a number not computable yet


# ---------------------------------------------------------------------------- number formats
def num(v: Any, digits: int = 0) -> str:
    """A count or amount with thousands separators; '–' when missing."""
    return DASH if _missing(v) else f"{float(v):,.{digits}f}"


def money(v: Any) -> str:
    """RMB with thousands separators (cents only under 100, where they matter)."""
    if _missing(v):
        return DASH
    v = float(v)
    return f"RMB {v:,.2f}" if 0 < abs(v) < 100 else f"RMB {v:,.0f}"


def amount(v: Any) -> str:
    """Money without the currency, for table columns whose header says RMB."""
    return money(v).removeprefix("RMB ")


def wan(v: Any) -> str:
    """Compact RMB as a banker says it: 万 (10^4) and 亿 (10^8)."""
    if _missing(v):
        return DASH
    v = float(v)
    if abs(v) >= 1e8:
        return f"{v / 1e8:,.2f}亿"
    return f"{v / 1e4:,.1f}万" if abs(v) >= 1e4 else f"{v:,.0f}元"


def pct(v: Any, digits: int = 1) -> str:
    """A share as a percentage (0.081 -> 8.1%)."""
    return DASH if _missing(v) else f"{float(v) * 100:.{digits}f}%"


def pp(v: Any) -> str:
    """A difference of rates in percentage points, signed (0.05 -> +5.0 pp)."""
    return DASH if _missing(v) else f"{float(v) * 100:+.1f} pp"


def signed_money(v: Any) -> str:
    """A signed money difference per customer."""
    return DASH if _missing(v) else ("+" if float(v) >= 0 else "-") + money(abs(float(v)))


def tick_points(v: float) -> str:
    """An axis tick in rate points, short (0.02 -> +2, 0.005 -> +0.5)."""
    x = round(v * 100, 6)
    return "0" if x == 0 else f"{x:+.0f}" if x.is_integer() else f"{x:+.1f}"


def tick_money(v: float) -> str:
    """An axis tick in RMB, short (2,000 -> +2,000; 12,000 -> +1.2万; 1,500,000 -> +150万; 3e8 -> +3亿)."""
    if v == 0:
        return "0"
    sign, a = "+" if v > 0 else "-", abs(v)
    if a >= 1e8:
        return f"{sign}{a / 1e8:,.4g}亿"
    if a >= 1e5:
        return f"{sign}{a / 1e4:,.0f}万"
    return f"{sign}{a / 1e4:.1f}万" if a >= 1e4 else f"{sign}{a:,.4g}"


def pval(v: Any) -> str:
    """A p-value to three places, '<0.001' below."""
    return DASH if _missing(v) else ("<0.001" if float(v) < 0.001 else f"{float(v):.3f}")


def roi(v: Any) -> str:
    """ROI = (incremental money - cost) / cost, as a signed percentage."""
    return DASH if _missing(v) else f"{float(v) * 100:+.0f}%"


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and (math.isnan(v) or math.isinf(v)))


def chart(width: float, height: float, label: str, shapes: list[dict[str, Any]]) -> Chart:
    """A chart dict as the template's ``svg`` macro draws it."""
    return {"width": round(width), "height": round(height), "label": label, "shapes": shapes}


def ramp(t: float) -> str:
    """Colour for ``t`` in [0, 1] on the heat-map ramp (0 = near white, 1 = navy)."""
    t = min(1.0, max(0.0, t))
    return "#" + "".join(f"{round(a + (b - a) * t):02x}" for a, b in zip(LOW, HIGH, strict=False))


def ink(t: float) -> str:
    """Text colour readable on ``ramp(t)``."""
    return "#ffffff" if t > 0.55 else "#1b1b1b"


def scale(lo: float, hi: float, a: float, b: float) -> Callable[[float], float]:
    """Linear map of [lo, hi] onto pixels [a, b]."""
    span = (hi - lo) or 1.0
    return lambda v: a + (v - lo) / span * (b - a)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (steps of 1, 2 or 5 times a power of ten)."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks, v = [], first
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 12) + 0.0)
        v += step
    return ticks


# ---------------------------------------------------------------------------- forest plots
def forest_domain(rows: Sequence[Mapping[str, Any]]) -> tuple[float, float]:
    """A shared axis for uplift intervals: covers every interval and zero, with a little margin."""
    values = [0.0] + [float(r[k]) for r in rows for k in ("ci_low", "ci_high", "uplift") if r.get(k) is not None]
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.08 or 0.01
    return lo - pad, hi + pad


def forest_row(row: Mapping[str, Any], domain: tuple[float, float], fmt: Fmt, width: float = 240,
               height: float = 22, ticks: Fmt | None = None) -> Chart:
    """One interval on the shared axis: zero line, whisker from ci_low to ci_high, the point estimate.

    With ``ticks`` the row carries its own scale (tick labels under it), for a measure no other row shares."""
    point, low, high = row.get("uplift"), row.get("ci_low"), row.get("ci_high")
    if point is None:
        return chart(width, height, "no estimate yet", [{"kind": "text", "x": width / 2, "y": height / 2 + 4,
                                                         "text": "–", "anchor": "middle", "cls": "muted"}])
    x = scale(*domain, 6, width - 6)
    mid = height / 2
    shapes: list[dict[str, Any]] = [{"kind": "line", "x1": x(0), "y1": 1, "x2": x(0), "y2": height - 1, "cls": "zero"}]
    if ticks is not None:
        for t in nice_ticks(*domain, 4):
            shapes.append({"kind": "text", "x": x(t), "y": height + 10, "text": "0" if t == 0 else ticks(t),
                           "anchor": "middle", "cls": "tick"})
        height += 13
    state = "sig" if row.get("significant") and point > 0 else "harm" if row.get("significant") else "ns"
    tip = f"uplift {fmt(point)}"
    if low is not None and high is not None:
        tip += f", 95% CI {fmt(low)} .. {fmt(high)}"
        shapes += [{"kind": "line", "x1": x(low), "y1": mid, "x2": x(high), "y2": mid, "cls": f"whisker {state}"},
                   {"kind": "line", "x1": x(low), "y1": mid - 5, "x2": x(low), "y2": mid + 5,
                    "cls": f"whisker {state}"},
                   {"kind": "line", "x1": x(high), "y1": mid - 5, "x2": x(high), "y2": mid + 5,
                    "cls": f"whisker {state}"}]
    shapes.append({"kind": "circle", "cx": x(point), "cy": mid, "r": 4.5, "cls": f"point {state}", "title": tip})
    return chart(width, height, tip, shapes)


def forest_axis(domain: tuple[float, float], fmt: Fmt, width: float = 240, height: float = 22) -> Chart:
    """The tick labels under a column of :func:`forest_row` charts."""
    x = scale(*domain, 6, width - 6)
    shapes: list[dict[str, Any]] = [{"kind": "line", "x1": 6, "y1": 2, "x2": width - 6, "y2": 2, "cls": "axis"}]
    for t in nice_ticks(*domain, 6):
        shapes.append({"kind": "line", "x1": x(t), "y1": 2, "x2": x(t), "y2": 6, "cls": "axis"})
        shapes.append({"kind": "text", "x": x(t), "y": 17, "text": "0" if t == 0 else fmt(t), "anchor": "middle",
                       "cls": "tick"})
    return chart(width, height, "uplift axis", shapes)


# ---------------------------------------------------------------------------- bars
def stacked_bars(dates: Sequence[str], stages: Sequence[str], shares: Mapping[tuple[str, str], float],
                 counts: Mapping[tuple[str, str], int], label: Callable[[str], str],
                 colours: Mapping[str, str], width: float = 720, height: float = 260) -> Chart:
    """100% stacked columns: one per snapshot date, one band per stage (share of that day's customers)."""
    left, bottom, top = 40, 34, 8
    plot_h = height - bottom - top
    step = (width - left - 8) / max(len(dates), 1)
    bar = min(step * 0.7, 60)
    y = scale(0, 1, height - bottom, top)
    shapes: list[dict[str, Any]] = []
    for t in (0, 0.25, 0.5, 0.75, 1):
        shapes.append({"kind": "line", "x1": left - 4, "y1": y(t), "x2": width - 8, "y2": y(t), "cls": "grid"})
        shapes.append({"kind": "text", "x": left - 7, "y": y(t) + 4, "text": f"{t:.0%}", "anchor": "end",
                       "cls": "tick"})
    every = max(1, math.ceil(len(dates) / 12))  # keep date labels from colliding on long windows
    for i, d in enumerate(dates):
        x0 = left + i * step + (step - bar) / 2
        acc = 0.0
        for st in stages:
            s = shares.get((d, st), 0.0)
            if s <= 0:
                continue
            shapes.append({"kind": "rect", "x": x0, "y": y(acc + s), "width": bar, "height": s * plot_h,
                           "fill": colours[st], "title": f"{d} · {label(st)}: {counts.get((d, st), 0):,} ({s:.1%})"})
            acc += s
        if (len(dates) - 1 - i) % every == 0:  # counted from the end: the newest date is always labelled
            shapes.append({"kind": "text", "x": x0 + bar / 2, "y": height - bottom + 16,
                           "text": d[5:] if len(dates) > 1 else d,
                           "anchor": "middle", "cls": "tick"})
    return chart(width, height, "stage distribution per snapshot", shapes)


def columns(labels: Sequence[str], values: Sequence[float], tips: Sequence[str], tick: Fmt, width: float = 720,
            height: float = 180, fill: str = PALETTE[0]) -> Chart:
    """Vertical bars over time (e.g. the day's sales amount), with a few y ticks."""
    left, bottom, top = 56, 26, 8
    peak = max(values, default=0) or 1.0
    ticks = nice_ticks(0, peak, 4)
    if len(ticks) > 1 and ticks[-1] < peak:  # end the axis on a round tick above the tallest bar
        ticks.append(ticks[-1] + ticks[1] - ticks[0])
    y = scale(0, max(ticks[-1], peak), height - bottom, top)
    step = (width - left - 8) / max(len(values), 1)
    bar = max(min(step * 0.75, 40), 1)
    shapes: list[dict[str, Any]] = []
    for t in ticks:
        shapes.append({"kind": "line", "x1": left - 4, "y1": y(t), "x2": width - 8, "y2": y(t), "cls": "grid"})
        shapes.append({"kind": "text", "x": left - 7, "y": y(t) + 4, "text": tick(t), "anchor": "end", "cls": "tick"})
    every = max(1, math.ceil(len(values) / 12))
    for i, (label, v, tip) in enumerate(zip(labels, values, tips, strict=False)):
        x0 = left + i * step + (step - bar) / 2
        shapes.append({"kind": "rect", "x": x0, "y": y(max(v, 0)), "width": bar, "height": y(0) - y(max(v, 0)),
                       "fill": fill, "title": tip})
        if (len(values) - 1 - i) % every == 0:
            shapes.append({"kind": "text", "x": x0 + bar / 2, "y": height - bottom + 16, "text": label,
                           "anchor": "middle", "cls": "tick"})
    return chart(width, height, "columns", shapes)


def hbars(items: Sequence[tuple[str, float, str]], width: float = 420, bar_h: float = 20,
          label_w: float = 130, fill: str = PALETTE[1]) -> Chart:
    """Horizontal bars (label, value >= 0, value text), scaled to the largest value."""
    top = max((v for _, v, _ in items), default=0) or 1.0
    value_w = 110
    x = scale(0, top, label_w, width - value_w)
    shapes: list[dict[str, Any]] = []
    for i, (name, v, text) in enumerate(items):
        y0 = 4 + i * (bar_h + 6)
        shapes.append({"kind": "text", "x": label_w - 8, "y": y0 + bar_h * 0.7, "text": name, "anchor": "end",
                       "cls": "lbl"})
        shapes.append({"kind": "rect", "x": label_w, "y": y0, "width": max(x(max(v, 0)) - label_w, 1), "height": bar_h,
                       "fill": fill, "title": f"{name}: {text}"})
        shapes.append({"kind": "text", "x": max(x(max(v, 0)), label_w) + 6, "y": y0 + bar_h * 0.7, "text": text,
                       "anchor": "start", "cls": "val"})
    return chart(width, 8 + len(items) * (bar_h + 6), "bars", shapes)


# ---------------------------------------------------------------------------- lines
def line_chart(xs: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]], width: float = 520,
               height: float = 240, y_max: float = 1.0) -> Chart:
    """Lines over categorical x positions (e.g. 1, 3, 6, 12 months); None leaves a gap; y is a share."""
    left, right, bottom, top = 44, 12, 30, 10
    x = scale(0, max(len(xs) - 1, 1), left + 10, width - right - 10)
    y = scale(0, y_max, height - bottom, top)
    shapes: list[dict[str, Any]] = []
    for t in nice_ticks(0, y_max, 5):
        shapes.append({"kind": "line", "x1": left, "y1": y(t), "x2": width - right, "y2": y(t), "cls": "grid"})
        shapes.append({"kind": "text", "x": left - 6, "y": y(t) + 4, "text": f"{t:.0%}", "anchor": "end",
                       "cls": "tick"})
    for i, label in enumerate(xs):
        shapes.append({"kind": "text", "x": x(i), "y": height - bottom + 18, "text": label, "anchor": "middle",
                       "cls": "tick"})
    for n, (name, values) in enumerate(series):
        colour = PALETTE[n % len(PALETTE)]
        run: list[tuple[float, float]] = []
        for i, v in enumerate([*values, None]):
            if v is not None:
                run.append((x(i), y(v)))
                shapes.append({"kind": "circle", "cx": x(i), "cy": y(v), "r": 3, "fill": colour,
                               "title": f"{name} · {xs[i]}: {v:.1%}"})
            elif run:
                if len(run) > 1:
                    shapes.append({"kind": "polyline", "points": " ".join(f"{a:.1f},{b:.1f}" for a, b in run),
                                   "stroke": colour, "cls": "series"})
                run = []
    return chart(width, height, "lines", shapes)


# ---------------------------------------------------------------------------- heat maps
def heatmap(rows: Sequence[str], cols: Sequence[str], cells: Mapping[tuple[str, str], tuple[float, str, str]],
            row_label: Callable[[str], str], col_label: Callable[[str], str], cell_w: float = 70,
            cell_h: float = 30, left: float = 130, top: float = 44) -> Chart:
    """A grid coloured by value in [0, 1]: cells map (row, col) to (value, text in the cell, tooltip)."""
    shapes: list[dict[str, Any]] = []
    for j, c in enumerate(cols):
        shapes.append({"kind": "text", "x": left + j * cell_w + cell_w / 2, "y": top - 8, "text": col_label(c),
                       "anchor": "middle", "cls": "lbl"})
    for i, r in enumerate(rows):
        y0 = top + i * cell_h
        shapes.append({"kind": "text", "x": left - 8, "y": y0 + cell_h * 0.62, "text": row_label(r), "anchor": "end",
                       "cls": "lbl"})
        for j, c in enumerate(cols):
            x0 = left + j * cell_w
            value, text, tip = cells.get((r, c), (0.0, "", ""))
            shapes.append({"kind": "rect", "x": x0 + 1, "y": y0 + 1, "width": cell_w - 2, "height": cell_h - 2,
                           "fill": ramp(value) if text else "#f7f7f7", "title": tip or None})
            if text:
                shapes.append({"kind": "text", "x": x0 + cell_w / 2, "y": y0 + cell_h * 0.62, "text": text,
                               "anchor": "middle", "cls": "cell", "fill": ink(value)})
    return chart(left + len(cols) * cell_w + 4, top + len(rows) * cell_h + 4, "heat map", shapes)


def coverage_map(rows: Sequence[tuple[str, str]], stages: Sequence[str],
                 cells: Mapping[tuple[str, str, str], Mapping[str, Any]],
                 row_label: Callable[[tuple[str, str]], str], stage_label: Callable[[str], str],
                 cell_w: float = 132, cell_h: float = 74, left: float = 180, top: float = 40) -> Chart:
    """The strategy-map coverage grid: colour by customers (square-root scale), customers and AUM in
    each cell, up to three strategies reaching it; gaps outlined, overlaps flagged with the winner.

    ``cells`` maps (kind, segment, stage) to: value (0..1 colour), head (text), lines (strategy
    texts), tip, gap (bool), overlap (the winner's text or None)."""
    shapes: list[dict[str, Any]] = []
    for j, st in enumerate(stages):
        shapes.append({"kind": "text", "x": left + j * cell_w + cell_w / 2, "y": top - 12, "text": stage_label(st),
                       "anchor": "middle", "cls": "lbl"})
    for i, key in enumerate(rows):
        y0 = top + i * cell_h
        if i and key[0] != rows[i - 1][0]:  # a rule between value tiers and featured groups
            shapes.append({"kind": "line", "x1": 8, "y1": y0, "x2": left + len(stages) * cell_w, "y2": y0,
                           "cls": "rule"})
        shapes.append({"kind": "text", "x": left - 10, "y": y0 + cell_h / 2 + 4, "text": row_label(key),
                       "anchor": "end", "cls": "lbl"})
        for j, st in enumerate(stages):
            x0 = left + j * cell_w
            c = cells.get((*key, st))
            if c is None:
                shapes.append({"kind": "rect", "x": x0 + 2, "y": y0 + 2, "width": cell_w - 4, "height": cell_h - 4,
                               "fill": "#fafafa", "cls": "empty"})
                continue
            v = c["value"]
            cls = "cov gap" if c["gap"] else "cov overlap" if c["overlap"] else "cov"
            shapes.append({"kind": "rect", "x": x0 + 2, "y": y0 + 2, "width": cell_w - 4, "height": cell_h - 4,
                           "fill": ramp(v), "cls": cls, "title": c["tip"]})
            colour = ink(v)
            shapes.append({"kind": "text", "x": x0 + 8, "y": y0 + 17, "text": c["head"], "anchor": "start",
                           "cls": "cell strong", "fill": colour})
            for k, line in enumerate(c["lines"][:3]):
                shapes.append({"kind": "text", "x": x0 + 8, "y": y0 + 32 + k * 12, "text": line, "anchor": "start",
                               "cls": "cell small", "fill": colour})
            if c["gap"]:  # a white tag, readable on any shade
                shapes.append({"kind": "rect", "x": x0 + cell_w - 64, "y": y0 + cell_h - 22, "width": 56, "height": 15,
                               "fill": "#ffffff", "cls": "flagbg"})
                shapes.append({"kind": "text", "x": x0 + cell_w - 36, "y": y0 + cell_h - 11, "text": "GAP 缺口",
                               "anchor": "middle", "cls": "flag gapflag"})
            elif c["overlap"]:
                shapes.append({"kind": "rect", "x": x0 + cell_w - 24, "y": y0 + 6, "width": 16, "height": 15,
                               "fill": "#ffffff", "cls": "flagbg"})
                shapes.append({"kind": "text", "x": x0 + cell_w - 16, "y": y0 + 17, "text": "⚑", "anchor": "middle",
                               "cls": "flag overflag"})
                shapes.append({"kind": "text", "x": x0 + 8, "y": y0 + cell_h - 8, "text": c["overlap"],
                               "anchor": "start", "cls": "cell small overtext", "fill": colour})
    return chart(left + len(stages) * cell_w + 4, top + len(rows) * cell_h + 4, "strategy-map coverage", shapes)


# ---------------------------------------------------------------------------- lift charts (models)
def lift_chart(lift: Sequence[Mapping[str, Any]], label: str, width: float = 420, height: float = 200) -> Chart:
    """Bars of lift per tenth of customers by score (highest first), a dashed line at 1 (random targeting).

    Bar heights are proportional to the lift on an axis from 0 to a round number above the largest; each
    bar's tooltip gives customers, positives, rate and cumulative capture."""
    left, right, top, bottom = 34, 8, 10, 30
    values = [float(r["lift"]) if not _missing(r["lift"]) else 0.0 for r in lift]
    ticks = nice_ticks(0.0, max([1.0, *values]), 4)
    hi = max(ticks[-1], max(values, default=1.0))
    y = scale(0.0, hi, height - bottom, top)
    step = (width - left - right) / max(len(lift), 1)
    shapes: list[dict[str, Any]] = []
    for t in ticks:
        shapes.append({"kind": "line", "x1": left, "y1": y(t), "x2": width - right, "y2": y(t), "cls": "grid"})
        shapes.append({"kind": "text", "x": left - 4, "y": y(t) + 3, "anchor": "end", "text": f"{t:g}", "cls": "tick"})
    for i, (r, v) in enumerate(zip(lift, values, strict=True)):
        x = left + i * step + step * 0.15
        shapes.append({"kind": "rect", "x": x, "y": y(v), "width": step * 0.7, "height": y(0.0) - y(v),
                       "fill": PALETTE[0], "title": f"decile {r['decile']}: {r['customers']:,} customers, "
                       f"{r['positives']:,} positive ({pct(r['rate'])}), lift {v:.2f}, cumulative capture "
                       f"{pct(r['cumulative_capture'])}"})
        shapes.append({"kind": "text", "x": x + step * 0.35, "y": height - bottom + 13, "anchor": "middle",
                       "text": str(r["decile"]), "cls": "tick"})
    shapes.append({"kind": "line", "x1": left, "y1": y(1.0), "x2": width - right, "y2": y(1.0), "cls": "zero"})
    shapes.append({"kind": "text", "x": (left + width - right) / 2, "y": height - 3, "anchor": "middle",
                   "text": "decile by score (1 = highest) 评分十分位", "cls": "tick"})
    return chart(width, height, label, shapes)
