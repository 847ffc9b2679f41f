"""Post-evaluation over the lake (策略后评估): each strategy's treated vs control entries and outcomes.

Reads the ``outcomes`` snapshot (review/outcomes.py) of the day and evaluates, per strategy, every
outcome with :func:`lifeloop.review.evaluation.evaluate` (rates with Newcombe intervals, money with
Welch and CUPED on the AUM at entry, the sample-ratio check of every arm -- control and, when the
strategy declares cells, each cell -- against its planned share), then the
strategy's primary outcome broken down by entry wave, channel and segment (value tier). By default
only entries whose window has closed are evaluated; ``interim`` adds the open ones, measured to date
(both arms over the same days, so the comparison stays fair, but uplift still accruing is missed).

The result is the stable ``lifeloop.review/1`` JSON documented in docs/review.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lifeloop.config.strategies import selection_cells
from lifeloop.errors import DataError, Problem, did_you_mean
from lifeloop.review import simulator_truth
from lifeloop.review.evaluation import (
    ALPHA,
    SRM_ALPHA,
    SampleRatio,
    compare_means,
    compare_rates,
    evaluate,
    planned_shares,
    sample_ratio_arms,
)
from lifeloop.review.outcomes import AREA
from lifeloop.review.render import _num, evaluation_json
from lifeloop.review.suggestions import suggest
from lifeloop.store.ops import feedback as ops_feedback
from lifeloop.strategy.inputs import load_map

if TYPE_CHECKING:
    import pyarrow as pa

    from lifeloop.config.strategies import StrategiesConfig, Strategy

SCHEMA = "lifeloop.review/1"
MONEY = ("purchase_amount", "fee_income", "inflow", "aum_change")
# objective.metric -> the outcome that answers it (docs/review.md, "Outcomes")
METRICS = {
    "activation_rate": "active", "card_activation_rate": "purchased", "reactivation_rate": "reactivated",
    "aum_retained": "aum_change", "aum_growth": "aum_change", "reinvested_aum": "purchase_amount",
    "wealth_fee_income": "fee_income", "fee_income": "fee_income", "retention_rate": "retained",
    "conversion_rate": "purchased", "purchase_rate": "purchased", "inflow": "inflow",
}
BREAKDOWNS = ("wave", "channel", "segment")
MIN_PER_ARM = 2  # fewer than this in either arm and there is nothing to compare
# fewer than this in either arm and a verdict would rest on a variance guessed from a handful of customers
# (Welch with 2 controls can look "significant"): the numbers are shown, the verdict waits
MIN_FOR_VERDICT = 30


def primary_outcome(strategy: Strategy) -> str:
    """The outcome answering the strategy's objective metric (purchase for a product offer by default)."""
    found = METRICS.get(strategy.objective.metric)
    if found in ("purchased", "purchase_amount") and strategy.offer.product_id is None:
        found = None  # an offer code has nothing to buy
    return found or ("purchased" if strategy.offer.product_id else "inflow")


def outcome_names(table: pa.Table, strategy: Strategy) -> list[str]:
    """The outcomes measured for every entry of this strategy (nullable ones only when all are present)."""
    names = ["purchased", "purchase_amount"] if strategy.offer.product_id else []
    names += ["active", "reactivated", "retained", "inflow", "fee_income", "aum_change"]
    return [n for n in names if table.num_rows and table[n].null_count == 0]


def values(table: pa.Table, name: str) -> np.ndarray:
    """An outcome column as floats (booleans as 0/1)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = table[name]
    if pa.types.is_boolean(column.type):
        column = pc.cast(column, pa.int8())
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=float)


def compare(arms: np.ndarray, y: np.ndarray, binary: bool, alpha: float = ALPHA) -> dict[str, Any]:
    """Treated against control on one outcome (no CUPED): counts, levels, uplift, interval, p-value."""
    t, c = arms == "treated", arms == "control"
    row: dict[str, Any] = {"treated": int(t.sum()), "control": int(c.sum()), "treated_mean": None,
                           "control_mean": None, "uplift": None, "ci_low": None, "ci_high": None,
                           "p_value": None, "significant": False}
    if row["treated"] < MIN_PER_ARM or row["control"] < MIN_PER_ARM:
        return row
    if binary:
        d = compare_rates(int(y[t].sum()), row["treated"], int(y[c].sum()), row["control"], alpha)
    else:
        d = compare_means(y[t], y[c], alpha)
    row.update(treated_mean=_num(y[t].mean()), control_mean=_num(y[c].mean()), uplift=_num(d.estimate),
               ci_low=_num(d.ci_low), ci_high=_num(d.ci_high), p_value=_num(d.p_value),
               significant=bool(d.p_value < alpha))
    return row


def breakdown(keys_column: pa.ChunkedArray, arms: np.ndarray, y: np.ndarray, cost: np.ndarray, binary: bool,
              alpha: float = ALPHA) -> list[dict[str, Any]]:
    """The primary outcome ``y`` per value of a column (wave, channel, segment), treated vs control within it."""
    keys = np.asarray(["-" if k is None else k for k in keys_column.to_pylist()], dtype=object)
    out = []
    for key in sorted(set(keys.tolist())):
        m = keys == key
        row = {"key": key, **compare(arms[m], y[m], binary, alpha)}
        treated = m & (arms == "treated")
        row["cost"] = _num(round(float(cost[treated].sum()), 2))
        inc = row["uplift"] * row["treated"] if row["uplift"] is not None else None
        row["cost_per_incremental"] = _num(row["cost"] / inc) if binary and inc and inc > 0 else None
        out.append(row)
    return out


POWER = 0.8


def detectable_uplift(y: np.ndarray, arms: np.ndarray, binary: bool, alpha: float = ALPHA,
                      power: float = POWER) -> float | None:
    """The smallest uplift these arm sizes detect with 80% power (minimum detectable effect, 最小可检测提升).

    "Not significant" means little when only a large effect could have shown: this says how large.
    Rates: Cohen's h solved by ``statsmodels.stats.power.NormalIndPower`` at the control's rate, turned
    back into points; amounts: Cohen's d by ``TTestIndPower`` times the pooled standard deviation."""
    from statsmodels.stats.power import NormalIndPower, TTestIndPower

    t, c = y[arms == "treated"], y[arms == "control"]
    if len(t) < MIN_PER_ARM or len(c) < MIN_PER_ARM:
        return None
    solver = NormalIndPower() if binary else TTestIndPower()
    effect = float(solver.solve_power(effect_size=None, nobs1=len(t), alpha=alpha, power=power,
                                      ratio=len(c) / len(t), alternative="two-sided"))
    if binary:
        p0 = float(c.mean())
        reached = min(float(np.arcsin(np.sqrt(p0))) + effect / 2, np.pi / 2)
        return _num(float(np.sin(reached) ** 2) - p0)
    sd = float(np.sqrt(((len(t) - 1) * t.var(ddof=1) + (len(c) - 1) * c.var(ddof=1)) / (len(t) + len(c) - 2)))
    return _num(effect * sd)


def verdict(headline: dict[str, Any], srm_mismatch: bool, enough: bool) -> str:
    """works / harmful / no_effect_yet / untrustworthy / too_early."""
    if srm_mismatch:
        return "untrustworthy"
    if not enough or headline.get("uplift") is None:
        return "too_early"
    if headline["significant"]:
        return "works" if headline["uplift"] > 0 else "harmful"
    return "no_effect_yet"


def planned_share(table: pa.Table, strategy: Strategy) -> float:
    """The control share the entries were planned with (their mean, when the holdout changed mid-flight)."""
    import pyarrow.compute as pc

    if table.num_rows == 0 or "planned_holdout" not in table.column_names or table["planned_holdout"].null_count:
        return strategy.holdout
    return float(pc.mean(table["planned_holdout"]).as_py())


def strategy_review(table: pa.Table, strategy: Strategy, in_window: int, alpha: float = ALPHA) -> dict[str, Any]:
    """The review of one strategy from its (already filtered) outcome rows."""
    import pyarrow.compute as pc

    primary = primary_outcome(strategy)
    # an outcome that does not apply to some entries (``reactivated`` of a customer who was not dormant,
    # ``retained`` of one who held nothing at entry: null) is judged on the entries it applies to; what decides
    # it is known at entry, before any contact, so both arms are cut alike and stay comparable
    undefined = table[primary].null_count if table.num_rows and primary in table.column_names else 0
    if undefined:
        table = table.filter(pc.is_valid(table[primary]))
    arms = np.asarray(table["arm"].to_pylist(), dtype=object)
    n_t, n_c = int((arms == "treated").sum()), int((arms == "control").sum())
    names = outcome_names(table, strategy)
    enough = n_t >= MIN_PER_ARM and n_c >= MIN_PER_ARM and primary in names
    days = table["entry_date"].to_pylist()
    cost = float(pc.sum(table["cost"]).as_py() or 0.0) if table.num_rows else 0.0
    review: dict[str, Any] = {
        "strategy": strategy.id, "name": {"zh": strategy.name.zh, "en": strategy.name.en}, "owner": strategy.owner,
        "objective": strategy.objective.model_dump(mode="json"),
        "offer": strategy.offer.product_id or strategy.offer.code,
        "primary_outcome": primary, "planned_holdout": planned_share(table, strategy),
        "entries": {"treated": n_t, "control": n_c, "in_window": in_window,
                    "contacted": int(pc.sum(table["contacted"]).as_py() or 0) if table.num_rows else 0,
                    "first": min(days).isoformat() if days else None, "last": max(days).isoformat() if days else None,
                    "outcome_not_applicable": undefined},   # left out: the primary outcome does not apply to them
        "verdict": "too_early", "headline": None, "sample_ratio": None,
        "money": {"contacts": int(pc.sum(table["contacts"]).as_py() or 0) if table.num_rows else 0,
                  "cost": round(cost, 2),
                  "incremental_aum": None, "incremental_aum_ci": None, "incremental_fee_income": None,
                  "incremental_fee_income_ci": None, "roi": None, "roi_ci": None,
                  "cost_per_incremental_conversion": None},
        "evaluation": None, "breakdowns": {b: [] for b in (*BREAKDOWNS, "segment_channel")}, "feedback": None,
    }
    if not enough:
        return with_cells(review, table, strategy, primary, primary in names, alpha)
    outcomes = {n: values(table, n) for n in names}
    ev = evaluate(arms.astype(str), outcomes, control="control", money=[n for n in names if n in MONEY],
                  pre=values(table, "aum_before"), pre_name="aum_before", holdout=review["planned_holdout"],
                  srm=split_check(table, strategy, review["planned_holdout"]), alpha=alpha)
    doc = evaluation_json(ev)
    review["evaluation"] = doc
    by_name = {o["name"]: o for o in doc["outcomes"]}
    head = by_name[primary]["versus_control"][0]
    binary = by_name[primary]["kind"] == "binary"
    review["headline"] = {"outcome": primary, "kind": by_name[primary]["kind"], "treated_mean": head["arm_mean"],
                          "control_mean": head["against_mean"], "uplift": head["uplift"], "ci_low": head["ci_low"],
                          "ci_high": head["ci_high"], "p_value": head["p_value"], "significant": head["significant"],
                          "cuped": head["cuped"],
                          "mde": detectable_uplift(outcomes[primary], arms, binary, alpha)}
    srm = doc["sample_ratio"]
    review["sample_ratio"] = None if srm is None else {k: srm[k] for k in ("planned_holdout", "observed_holdout",
                                                                            "control", "treated", "arms", "p_value",
                                                                            "mismatch")}
    money = review["money"]
    treated_cost = float(values(table, "cost")[arms == "treated"].sum())
    for name, key in (("aum_change", "incremental_aum"), ("fee_income", "incremental_fee_income")):
        if name in by_name:
            c = by_name[name]["versus_control"][0]
            money[key] = c["incremental"]
            money[key + "_ci"] = [c["incremental_ci_low"], c["incremental_ci_high"]]
    fee = by_name.get("fee_income", {}).get("versus_control", [{}])[0]
    # ROI counts what the bank earns: fee income of new holdings. An offer that is not a product earns none
    # we can measure (a gift, a care message), so it has no ROI rather than a misleading -100%.
    if treated_cost > 0 and fee.get("incremental") is not None and strategy.offer.product_id:
        money["roi"] = _num((fee["incremental"] - treated_cost) / treated_cost)
        money["roi_ci"] = [_num((fee["incremental_ci_low"] - treated_cost) / treated_cost),
                           _num((fee["incremental_ci_high"] - treated_cost) / treated_cost)]
    if binary and head["incremental"] and head["incremental"] > 0 and treated_cost > 0:
        money["cost_per_incremental_conversion"] = _num(treated_cost / head["incremental"])
    cost = values(table, "cost")
    review["breakdowns"] = {b: breakdown(table[b], arms, outcomes[primary], cost, binary, alpha) for b in BREAKDOWNS}
    both = pc.binary_join_element_wise(pc.fill_null(table["segment"], "-"), pc.fill_null(table["channel"], "-"), " / ")
    review["breakdowns"]["segment_channel"] = breakdown(both, arms, outcomes[primary], cost, binary, alpha)
    review["verdict"] = verdict(review["headline"], bool(srm and srm["mismatch"]),
                                min(n_t, n_c) >= MIN_FOR_VERDICT)
    return with_cells(review, table, strategy, primary, True, alpha)


def split_check(table: pa.Table, strategy: Strategy, holdout: float) -> SampleRatio:
    """The sample-ratio check over every arm: control and each cell (when 2+ are declared), else treated.

    Each arm's planned share: the entries' planned control share for the control, and the rest split by
    the cells' planned shares. Entries written before cells existed carry no cell; they are checked as
    control against treated, like a strategy without cells.
    """
    arms = np.asarray(table["arm"].to_pylist(), dtype=object)
    labels = arms
    if len(strategy.cells) >= 2 and "cell" in table.column_names and not selection_cells(strategy):
        cells = np.asarray(table["cell"].to_pylist(), dtype=object)
        declared = {c.id for c in strategy.cells}
        if all(c in declared for c in cells[arms == "treated"].tolist()):
            labels = np.where(arms == "control", CONTROL_ARM, cells)
    names = [CONTROL_ARM] + sorted({str(x) for x in labels.tolist()} - {CONTROL_ARM})
    counts = {a: int((labels == a).sum()) for a in names}
    shares = {c.id: c.share for c in strategy.cells} if labels is not arms else None
    if shares:
        names = [CONTROL_ARM, *[c.id for c in strategy.cells]]   # a planned cell without entries counts too
        counts = {a: counts.get(a, 0) for a in names}
    return sample_ratio_arms(counts, planned_shares(names, CONTROL_ARM, holdout, shares), control=CONTROL_ARM)


def with_cells(review: dict[str, Any], table: pa.Table, strategy: Strategy, primary: str, measured: bool,
               alpha: float = ALPHA) -> dict[str, Any]:
    """Add ``cells`` and ``pairwise`` to the review of a strategy with 2+ cells (others are left as they are).

    Arms are the control group and each cell (its treated entries), evaluated on the primary outcome:
    every cell against the control and every pair of cells, Holm-adjusted within each family.
    """
    if selection_cells(strategy):
        return with_selections(review, table, strategy, primary, measured, alpha)
    if len(strategy.cells) < 2:
        return review
    arms = np.asarray(table["arm"].to_pylist(), dtype=object)
    # an outcomes snapshot written before cells existed has no cell column: none of its entries has a cell
    cells = np.asarray(table["cell"].to_pylist() if "cell" in table.column_names else [None] * table.num_rows,
                       dtype=object)
    cost = values(table, "cost") if table.num_rows else np.zeros(0)
    label = np.where(arms == "control", CONTROL_ARM, np.where(arms == "treated", cells, None))
    out: list[dict[str, Any]] = []
    for c in strategy.cells:
        mine = label == c.id
        n = int(mine.sum())
        spent = round(float(cost[mine].sum()), 2)
        out.append({"cell": c.id, "waves": strategy.cell_waves(c.id), "scripts": sorted(c.scripts),
                    "planned_share": c.share, "treated": n, "cost": spent,
                    "cost_per_entry": _num(spent / n) if n else None, "versus_control": None})
    total = sum(r["treated"] for r in out)
    for r in out:
        r["observed_share"] = _num(r["treated"] / total) if total else None
    review["cells"], review["pairwise"] = out, []
    review["cell_sample_ratio"] = cell_sample_ratio(out)
    n_control = int((label == CONTROL_ARM).sum())
    usable = [r["cell"] for r in out if r["treated"] >= MIN_PER_ARM]
    if not measured or n_control < MIN_PER_ARM or not usable:
        return review
    wanted = {CONTROL_ARM, *usable}
    keep = np.asarray([x in wanted for x in label.tolist()], dtype=bool)
    rows = table.filter(pa_mask(keep))
    y = values(rows, primary)
    ev = evaluation_json(evaluate(label[keep].astype(str), {primary: y}, control=CONTROL_ARM,
                                 money=[primary] if primary in MONEY else [], pre=values(rows, "aum_before"),
                                 pre_name="aum_before", alpha=alpha))
    result = ev["outcomes"][0]
    by_cell = {c["arm"]: c for c in result["versus_control"]}
    for r in out:
        c = by_cell.get(r["cell"])
        if c is not None:
            r["versus_control"] = {"outcome": primary, "kind": result["kind"], **_levels(c)}
    review["pairwise"] = [{"cell": c["arm"], "against": c["against"], "outcome": primary, "kind": result["kind"],
                           **_levels(c)} for c in result["pairwise"]]
    return review


CONTROL_ARM = "control"   # a cell may not be called so (config.strategies refuses it)


def uplift_interval(treated: np.ndarray, control: np.ndarray, alpha: float = ALPHA) -> dict[str, Any]:
    """Pure: treated mean - control mean, its standard error sqrt(s_t^2/n_t + s_c^2/n_c) (sample variances,
    unequal) and the normal interval; missing values (NaN) are left out. None-valued below two per arm."""
    from scipy.stats import norm

    t, c = treated[~np.isnan(treated)], control[~np.isnan(control)]
    out: dict[str, Any] = {"treated": int(len(t)), "control": int(len(c)), "treated_mean": None,
                           "control_mean": None, "uplift": None, "se": None, "ci_low": None, "ci_high": None}
    if len(t):
        out["treated_mean"] = _num(float(t.mean()))
    if len(c):
        out["control_mean"] = _num(float(c.mean()))
    if len(t) < MIN_PER_ARM or len(c) < MIN_PER_ARM:
        return out
    uplift = float(t.mean() - c.mean())
    se = float(np.sqrt(t.var(ddof=1) / len(t) + c.var(ddof=1) / len(c)))
    z = float(norm.ppf(1 - alpha / 2))
    out.update(uplift=_num(uplift), se=_num(se), ci_low=_num(uplift - z * se), ci_high=_num(uplift + z * se))
    return out


def uplift_difference(a: Mapping[str, Any], b: Mapping[str, Any], alpha: float = ALPHA) -> dict[str, Any]:
    """Pure: the difference of two uplifts measured on independent samples (disjoint customers):
    ``a - b`` with SE = sqrt(se_a^2 + se_b^2), its normal interval and two-sided p-value."""
    from scipy.stats import norm

    if a.get("uplift") is None or b.get("uplift") is None:
        return {"difference": None, "se": None, "ci_low": None, "ci_high": None, "p_value": None}
    d = float(a["uplift"]) - float(b["uplift"])
    se = float(np.hypot(float(a["se"]), float(b["se"])))
    z = float(norm.ppf(1 - alpha / 2))
    p = float(2 * norm.sf(abs(d) / se)) if se > 0 else (1.0 if d == 0 else 0.0)
    return {"difference": _num(d), "se": _num(se), "ci_low": _num(d - z * se), "ci_high": _num(d + z * se),
            "p_value": _num(p)}


def with_selections(review: dict[str, Any], table: pa.Table, strategy: Strategy, primary: str, measured: bool,
                    alpha: float = ALPHA) -> dict[str, Any]:
    """Add ``selections`` to the review of a strategy with selection cells (模型组 vs 非模型组).

    Each cell's treated entries against the control entries the same selection picked (one shared holdout,
    control rows carry their cell), then every pair of cells: the difference of their uplifts with SE =
    sqrt(se1^2 + se2^2) (the cells are disjoint, so the samples are independent). The verdict waits
    (``too_early``) until every arm of the pair has ``MIN_FOR_VERDICT`` entries with the outcome measured."""
    arms = np.asarray(table["arm"].to_pylist(), dtype=object)
    cells = np.asarray(table["cell"].to_pylist() if "cell" in table.column_names else [None] * table.num_rows,
                       dtype=object)
    y = values(table, primary) if measured and table.num_rows else np.full(table.num_rows, np.nan)
    binary = primary not in MONEY
    out: list[dict[str, Any]] = []
    for c in strategy.cells:
        mine = cells == c.id
        found = uplift_interval(y[mine & (arms == "treated")], y[mine & (arms == "control")], alpha)
        found["treated"] = int((mine & (arms == "treated")).sum())   # entries, measured or not
        found["control"] = int((mine & (arms == "control")).sum())
        out.append({"cell": c.id, "select": c.select, **found})
    pairs = []
    for i, a in enumerate(out):
        for b in out[i + 1:]:
            diff = uplift_difference(a, b, alpha)
            small = min(a["treated"], a["control"], b["treated"], b["control"]) < MIN_FOR_VERDICT
            if diff["difference"] is None or small:
                verdict, better = "too_early", None
            elif diff["ci_low"] > 0 or diff["ci_high"] < 0:
                verdict, better = "differs", a["cell"] if diff["difference"] > 0 else b["cell"]
            else:
                verdict, better = "no_difference_yet", None
            pairs.append({"cell": a["cell"], "against": b["cell"], **diff, "verdict": verdict, "better": better})
    untagged = int(((arms == "control") & np.asarray([x is None for x in cells.tolist()], dtype=bool)).sum())
    review["selections"] = {"outcome": primary, "kind": "binary" if binary else "amount", "alpha": alpha,
                            "cells": out, "differences": pairs, "control_without_cell": untagged}
    return review


def cell_sample_ratio(cells: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Chi-square of the cells' entries against their planned shares (a broken split, like a broken holdout)."""
    from scipy.stats import chisquare


    total = sum(c["treated"] for c in cells)
    if total == 0:
        return None
    expected = [c["planned_share"] * total for c in cells]
    chi2, p = chisquare([c["treated"] for c in cells], f_exp=expected)
    return {"chi2": _num(float(chi2)), "p_value": _num(float(p)), "mismatch": bool(p < SRM_ALPHA)}


def _levels(c: dict[str, Any]) -> dict[str, Any]:
    return {"cell_mean": c["arm_mean"], "against_mean": c["against_mean"], "uplift": c["uplift"],
            "ci_low": c["ci_low"], "ci_high": c["ci_high"], "p_value": c["p_value"], "p_holm": c["p_holm"],
            "significant": c["significant"], "cuped": c["cuped"]}


def pa_mask(mask: np.ndarray) -> pa.Array:
    """A NumPy boolean mask as an Arrow array (for ``Table.filter``)."""
    import pyarrow as pa

    return pa.array(mask.astype(bool), pa.bool_())


def review_table(outcomes: pa.Table, config: StrategiesConfig, as_of: dt.date, *, strategies: Sequence[str] = (),
                 interim: bool = False, alpha: float = ALPHA) -> dict[str, Any]:
    """Pure: the ``lifeloop.review/1`` document from an outcomes table and the strategy map."""
    import pyarrow as pa
    import pyarrow.compute as pc


    known = {s.id: s for s in config.strategies}
    present = sorted(set(outcomes["strategy"].to_pylist()))
    wanted = list(strategies) or [s.id for s in config.strategies if s.id in present]
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise DataError(f"unknown strategy {unknown[0]!r}{did_you_mean(unknown[0], known)}",
                        problems=[Problem(f"strategies are: {', '.join(known)}", field="strategy")],
                        hint="`lifeloop strategies` lists the map")
    docs = []
    for sid in wanted:
        rows = outcomes.filter(pc.equal(outcomes["strategy"], pa.scalar(sid)))
        closed = rows.filter(rows["complete"])
        in_window = rows.num_rows - closed.num_rows
        docs.append(strategy_review(rows if interim else closed, known[sid], in_window, alpha))
    doc = {"schema": SCHEMA, "as_of": as_of.isoformat(), "interim": interim, "alpha": alpha, "strategies": docs}
    doc["suggestions"] = suggest(doc)
    return doc


def evaluate_lake(ctx: Any, as_of: dt.date | None = None, strategies: Sequence[str] = (),
                  interim: bool = False) -> dict[str, Any]:
    """Read the outcomes snapshot of ``as_of`` (default: the newest) and review the strategies in it."""

    published = ctx.lake.dates(AREA)
    usable = [d for d in published if as_of is None or d <= as_of]
    if not usable:
        raise DataError("no outcomes snapshot to evaluate" + (f" on or before {as_of}" if as_of else ""),
                        hint="run the daily steps first (`lifeloop run --as-of D`; the `outcomes` step measures "
                             "every strategy entry from the bank's data)")
    day = usable[-1]
    config, _, _ = load_map(ctx)
    table = ctx.snapshot(AREA, day)
    doc = review_table(table, config, day, strategies=strategies, interim=interim)
    simulator_truth.add_truth(ctx.workspace, doc, table)   # the demo only: the simulator's true uplift
    add_feedback(ctx, doc)
    return doc


def add_feedback(ctx: Any, doc: dict[str, Any]) -> None:
    """Relationship managers' recorded feedback per strategy (descriptive: the control group has none)."""
    counts = ops_feedback.outcomes_by_strategy(ctx.ops())
    for s in doc["strategies"]:
        found = counts.get(s["strategy"], {})
        s["feedback"] = {"recorded": sum(found.values()), "by_outcome": dict(sorted(found.items()))}
