"""An evaluation as stable JSON (documented field by field in docs/review.md) and as rich tables."""

from __future__ import annotations

import math
from typing import Any

from lifeloop.review.evaluation import (
    BINARY_METHOD,
    CUPED_MIN_REDUCTION,
    SRM_ALPHA,
    WELCH_METHOD,
    ArmResult,
    Comparison,
    Evaluation,
    OutcomeResult,
)

SCHEMA = "lifeloop.evaluation/1"


def evaluation_json(ev: Evaluation) -> dict[str, Any]:
    """The evaluation as plain JSON types; NaN becomes null. Field order and names are a contract."""
    srm = ev.sample_ratio
    return {
        "schema": SCHEMA,
        "control": ev.control,
        "alpha": ev.alpha,
        "customers": ev.customers,
        "arms": [{"arm": a, "customers": n, "control": a == ev.control} for a, n in ev.arms.items()],
        "cost_per_contact": ev.cost_per_contact,
        "sample_ratio": None if srm is None else {
            "planned_holdout": srm.planned_holdout, "observed_holdout": srm.observed_holdout,
            "control": srm.control, "treated": srm.treated, "expected_control": srm.expected_control,
            "arms": [{"arm": a.arm, "customers": a.customers, "planned_share": a.planned_share,
                      "observed_share": a.observed_share, "expected": a.expected} for a in srm.arms],
            "degrees_of_freedom": srm.degrees_of_freedom,
            "chi2": _num(srm.chi2), "p_value": _num(srm.p_value), "threshold": SRM_ALPHA, "mismatch": srm.mismatch},
        "outcomes": [_outcome(o) for o in ev.outcomes],
        "notes": list(ev.notes),
        "methods": {
            "binary": BINARY_METHOD + " (statsmodels.stats.proportion)",
            "amount": WELCH_METHOD + " (statsmodels.stats.weightstats.CompareMeans, usevar='unequal')",
            "cuped": f"Deng et al. 2013; theta pooled over all customers; used when variance falls >= "
                     f"{CUPED_MIN_REDUCTION:.0%}",
            "sample_ratio": f"chi-square goodness of fit of every arm against its planned share "
                            f"(scipy.stats.chisquare, arms - 1 degrees of freedom); mismatch when p < {SRM_ALPHA}",
            "multiple_comparisons": "Holm (statsmodels.stats.multitest.multipletests) within each family",
        },
    }


def _outcome(o: OutcomeResult) -> dict[str, Any]:
    return {
        "name": o.name,
        "kind": o.kind,
        "money": o.money,
        "cuped": None if o.cuped is None else {
            "covariate": o.cuped.covariate, "theta": _num(o.cuped.theta),
            "variance_reduction": _num(o.cuped.variance_reduction), "used": o.cuped.used},
        "arms": [_arm(a) for a in o.arms],
        "versus_control": [_comparison(c, o) for c in o.versus_control],
        "pairwise": [_comparison(c, o) for c in o.pairwise],
    }


def _arm(a: ArmResult) -> dict[str, Any]:
    return {"arm": a.arm, "customers": a.customers, "mean": _num(a.mean), "sd": _num(a.sd),
            "successes": a.successes, "adjusted_mean": _num(a.adjusted_mean)}


def _comparison(c: Comparison, o: OutcomeResult) -> dict[str, Any]:
    d = c.uplift
    inc = c.incremental_ci or (None, None)
    roi = c.roi_ci or (None, None)
    return {
        "arm": c.arm, "against": c.against,
        "arm_mean": _num(c.arm_mean), "against_mean": _num(c.against_mean),
        "uplift": _num(d.estimate), "ci_low": _num(d.ci_low), "ci_high": _num(d.ci_high),
        "relative_uplift": _num(c.relative_uplift),
        "statistic": _num(d.statistic), "p_value": _num(d.p_value), "p_holm": _num(c.p_holm),
        "significant": c.significant, "method": d.method, "cuped": bool(o.cuped and o.cuped.used),
        "incremental": _num(c.incremental), "incremental_ci_low": _num(inc[0]), "incremental_ci_high": _num(inc[1]),
        "cost": _num(c.cost), "roi": _num(c.roi), "roi_ci_low": _num(roi[0]), "roi_ci_high": _num(roi[1]),
        "cost_per_incremental": _num(c.cost_per_incremental),
    }


def _num(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


# ------------------------------------------------------------------------------------------------ terminal
def print_evaluation(out: Any, ev: Evaluation) -> None:
    """Arms, the sample-ratio check, then one table per outcome: each arm vs control, then pairwise."""
    from rich.table import Table

    arms = ", ".join(f"{a} {n:,}" + (" (control)" if a == ev.control else "") for a, n in ev.arms.items())
    out.print(f"[bold]Evaluation[/] of {ev.customers:,} customers: {arms}")
    srm = ev.sample_ratio
    if srm is not None:
        colour = "red" if srm.mismatch else "green"
        verdict = "MISMATCH" if srm.mismatch else "ok"
        arms = ", ".join(f"{a.arm} {a.observed_share:.2%} vs {a.planned_share:.2%}" for a in srm.arms)
        out.print(f"Sample ratio (observed vs planned share): {arms} "
                  f"(chi2 {srm.chi2:.2f}, df {srm.degrees_of_freedom}, p {srm.p_value:.3g}) [{colour}]{verdict}[/]")
    for o in ev.outcomes:
        rate = o.kind == "binary"
        title = f"{o.name} ({'rate' if rate else 'mean'}{', money' if o.money else ''})"
        if o.cuped is not None:
            title += (f"; CUPED on {o.cuped.covariate}: variance -{o.cuped.variance_reduction:.0%}"
                      + ("" if o.cuped.used else " (not used)"))
        t = Table(title=title, title_justify="left")
        for col in ("arm", "vs", "arm level", "baseline", "uplift", "95% CI", "p", "p (Holm)", "incremental", "ROI"):
            t.add_column(col, justify="left" if col in ("arm", "vs") else "right")
        for c in [*o.versus_control, *o.pairwise]:
            d = c.uplift
            fmt = _pct if rate else _money
            t.add_row(c.arm, c.against, fmt(c.arm_mean), fmt(c.against_mean),
                      ("[bold]" if c.significant else "") + _signed(d.estimate, rate),
                      f"{_signed(d.ci_low, rate)} .. {_signed(d.ci_high, rate)}", _p(d.p_value), _p(c.p_holm),
                      "" if c.incremental is None else f"{c.incremental:,.1f}",
                      "" if c.roi is None else f"{c.roi:.0%}")
        out.print(t)
    for note in ev.notes:
        out.print(f"[yellow]note:[/] {note}")


def _pct(v: float) -> str:
    return f"{v:.2%}"


def _money(v: float) -> str:
    return f"{v:,.2f}"


def _signed(v: float, rate: bool) -> str:
    return f"{v * 100:+.2f}pp" if rate else f"{v:+,.2f}"


def _p(v: float) -> str:
    return "" if v is None or math.isnan(v) else ("<0.0001" if v < 1e-4 else f"{v:.4f}")
