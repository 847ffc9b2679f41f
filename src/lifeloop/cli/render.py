"""Rich rendering of results for the terminal. Pure presentation: no business logic here."""

from __future__ import annotations

from typing import Any

from lifeloop.data.masking import money_band
from lifeloop.insight.money import money_columns

MIN_CROWD = 10  # a money mean over fewer customers than this is banded: it is too close to one customer's amount


def print_ingest(out: Any, report: Any) -> None:
    """An ingest report: rows per table, warnings, where it was published."""
    from rich.table import Table

    t = Table(title=f"Ingested batch as of {report.as_of} (run {report.run_id})", title_justify="left")
    t.add_column("table")
    t.add_column("rows", justify="right")
    for name, rows in report.tables.items():
        t.add_row(name, f"{rows:,}")
    out.print(t)
    encodings = getattr(report, "encodings", {})
    if any(e != "utf-8" for e in encodings.values()):   # say so only when a file was not plain UTF-8
        out.print("Read as: " + ", ".join(f"{f} {e}" for f, e in encodings.items()))
    for w in report.warnings:
        out.print(f"[yellow]warning:[/] {w}")
    suppressed = getattr(report, "suppressed", {})
    if suppressed:
        out.print(f"[yellow]{len(suppressed):,} customer(s) match a purged person's identifiers[/] (keyed hashes of "
                  "customer id, ID number or mobile): kept out of marketing — see `lifeloop customers rights ID`")
    if getattr(report, "unchanged", False):
        out.print("Same input as the published batch: nothing changed.")
    out.print(f"Published in {report.seconds:.1f}s.")


def print_steps(out: Any, results: list[Any]) -> None:
    """One line per step run."""
    from rich.table import Table

    t = Table(title="Steps", title_justify="left")
    for col in ("step", "as of", "rows", "run id", "seconds"):
        t.add_column(col, justify="right" if col in ("rows", "seconds") else "left")
    for r in results:
        t.add_row(r.step, r.as_of.isoformat(), f"{r.rows:,}", r.run_id, f"{r.seconds:.2f}")
    out.print(t)
    for r in results:  # said out loud: an audience that matches no one, a rule that can never fire, ...
        for w in getattr(r, "warnings", ()):
            out.print(f"[bold yellow]Warning[/] ({r.step}): {w}")


def feature_summary_rows(table: Any, money: frozenset[str] | None = None) -> list[dict[str, Any]]:
    """Per-column summary of a feature table: non-null share, mean/min/max or top value.

    The min and max of a money column (``money``; None: every DECIMAL and DOUBLE column) are one customer's
    amount, so they are shown as bands (``10k-100k``); so is the mean over fewer than :data:`MIN_CROWD`
    customers (with one customer it is their amount).
    """
    money = money_columns({f.name: f.type for f in table.schema}, money)
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = []
    n = table.num_rows
    for name in table.column_names:
        if name == "customer_id":
            continue
        col = table[name]
        filled = n - col.null_count
        row: dict[str, Any] = {"tag": name, "type": _kind(col.type), "filled": filled / n if n else 0.0}
        t = col.type
        if pa.types.is_decimal(t):
            col = pc.cast(col, pa.float64())
            t = col.type
        if (pa.types.is_integer(t) or pa.types.is_floating(t)) and filled:
            low, high, mean = pc.min(col).as_py(), pc.max(col).as_py(), pc.mean(col).as_py()
            if name in money:
                low, high = money_band(low), money_band(high)
                mean = mean if filled >= MIN_CROWD else money_band(mean)
                row["type"] = "money"
            row.update(mean=mean, min=low, max=high)
        elif pa.types.is_boolean(t) and filled:
            row.update(mean=pc.mean(pc.cast(col, pa.float64())).as_py())
        elif filled and (pa.types.is_string(t) or pa.types.is_large_string(t)):
            counts = pc.value_counts(col.drop_null()).to_pylist()
            top = max(counts, key=lambda c: c["counts"])
            row.update(top=f"{top['values']} ({top['counts'] / filled:.0%})")
        rows.append(row)
    return rows


def _kind(t: Any) -> str:
    """A banker's word for an Arrow type."""
    import pyarrow as pa

    if pa.types.is_decimal(t):
        return "money" if t.scale == 2 else "decimal"
    if pa.types.is_integer(t):
        return "count"
    if pa.types.is_floating(t):
        return "number"
    if pa.types.is_boolean(t):
        return "flag"
    if pa.types.is_date(t) or pa.types.is_timestamp(t):
        return "date"
    return "text"


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (int, float)) and abs(v) >= 100_000:
        for unit, size in (("bn", 1e9), ("m", 1e6), ("k", 1e3)):
            if abs(v) >= size:
                return f"{v / size:,.1f}{unit}"
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) >= 1 or v == 0 else f"{v:.3f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def print_feature_summary(out: Any, table: Any, money: frozenset[str] | None = None) -> None:
    """The feature snapshot as one row per tag (``money``: the money tags, whose min and max are banded)."""
    from rich.table import Table

    rows = feature_summary_rows(table, money)
    with_top = any("top" in r for r in rows)
    t = Table(title=f"Features: {table.num_rows:,} customers x {table.num_columns - 1} tags", title_justify="left")
    for col in ("tag", "type", "filled", "mean", "min", "max") + (("top",) if with_top else ()):
        t.add_column(col, justify="left" if col in ("tag", "type", "top") else "right", no_wrap=col == "tag")
    for r in rows:
        cells = [r["tag"], r["type"], f"{r['filled']:.0%}", _fmt(r.get("mean")), _fmt(r.get("min")), _fmt(r.get("max"))]
        t.add_row(*cells, *((r.get("top", ""),) if with_top else ()))
    out.print(t)


def plan_rows(lists: Any) -> list[dict[str, Any]]:
    """Per strategy, wave and channel: treated, control and dropped counts, and what dropped most."""
    from collections import Counter, defaultdict

    cells: dict[tuple[str, str, str], Counter] = defaultdict(Counter)
    drops: dict[tuple[str, str, str], Counter] = defaultdict(Counter)
    for r in lists.select(["strategy", "wave", "channel", "group", "status", "dropped_by"]).to_pylist():
        key = (r["strategy"], r["wave"], r["channel"] or "-")
        if r["dropped_by"]:
            cells[key]["dropped"] += 1
            drops[key][r["dropped_by"]] += 1
        else:
            cells[key][r["group"]] += 1
    out = []
    for key in sorted(cells):
        top = drops[key].most_common(1)
        out.append({"strategy": key[0], "wave": key[1], "channel": key[2], "treated": cells[key]["treated"],
                    "control": cells[key]["control"], "dropped": cells[key]["dropped"],
                    "top_drop": f"{top[0][0]} ({top[0][1]})" if top else ""})
    return out


def print_plan(out: Any, lists: Any, as_of: Any) -> None:
    """The day's lists: who is contacted, who is held out, who was dropped and why."""
    from rich.table import Table

    t = Table(title=f"Lists as of {as_of}: treated, control (holdout) and dropped", title_justify="left")
    for col in ("strategy", "wave", "channel", "treated", "control", "dropped", "most dropped by"):
        t.add_column(col, justify="right" if col in ("treated", "control", "dropped") else "left")
    for r in plan_rows(lists):
        t.add_row(r["strategy"], r["wave"], r["channel"], f"{r['treated']:,}", f"{r['control']:,}",
                  f"{r['dropped']:,}", r["top_drop"])
    out.print(t)
