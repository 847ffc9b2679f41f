"""Post-evaluation statistics (策略后评估): did each arm beat the control group, by how much, how surely.

Pure functions over NumPy arrays: no files, no engine. Every test statistic comes from statsmodels or
scipy; this module only chooses the method, feeds the counts and arrays, and names the results.

- Binary outcomes (bought, activated, retained): rates; the difference of rates with the classic
  pooled two-proportion z-test (statsmodels' score test at a difference of 0 without the n/(n-1)
  factor: Farrington & Manning 1990) and Newcombe's hybrid score interval (Newcombe 1998, method 10),
  via ``statsmodels.stats.proportion``. Newcombe rather than Wald: Wald's interval is too narrow at
  the low rates campaigns see (1-5%) and with a small holdout; Newcombe's keeps close to 95% there.
  The interval and the test are different constructions, so at the very edge of 5% they may disagree;
  "significant" is decided by the (Holm-adjusted) p-value.
- Amounts (money: AUM change, fee income): means; Welch's t-test and interval (unequal variances,
  Welch-Satterthwaite degrees of freedom), via ``statsmodels.stats.weightstats.CompareMeans``.
- CUPED (Deng, Xu, Kohavi & Walker 2013, "Improving the sensitivity of online controlled experiments
  by utilizing pre-experiment data", WSDM): y' = y - theta (x - mean x), theta = cov(y, x) / var(x)
  pooled over every customer of the experiment; used only when it removes at least 1% of the variance.
- Sample-ratio mismatch: chi-square goodness of fit of every arm's count (control and each treated arm)
  against its planned share (``scipy.stats.chisquare``, k - 1 degrees of freedom); flagged when
  p < 0.001 (Fabijan et al. 2019, KDD). All arms at once, not control against the treated arms pooled:
  rows moved from one treated arm to another leave the pooled split intact but break the experiment.
- Several arms: each arm against the control, and every pair of arms; p-values are also given
  Holm-adjusted within each family (Holm 1979, ``statsmodels.stats.multitest.multipletests``);
  intervals are not adjusted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np

from lifeloop.errors import DataError, Problem

ALPHA = 0.05
SRM_ALPHA = 0.001  # a sample-ratio test is a data-quality alarm: only a very small p-value raises it
CUPED_MIN_REDUCTION = 0.01  # below 1% the adjustment buys nothing worth explaining to a reader
BINARY_METHOD = "pooled two-proportion z-test; Newcombe hybrid score interval"
WELCH_METHOD = "Welch t-test"


@dataclass(frozen=True)
class Difference:
    """One difference (arm minus baseline) with its interval and two-sided p-value."""

    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    statistic: float
    method: str


@dataclass(frozen=True)
class ArmShare:
    """One arm of the sample-ratio check: its customers against its planned share."""

    arm: str
    customers: int
    planned_share: float
    observed_share: float
    expected: float


@dataclass(frozen=True)
class SampleRatio:
    """Every arm's observed count against its planned share (样本比例检验); control first."""

    planned_holdout: float
    observed_holdout: float
    control: int
    treated: int
    expected_control: float
    chi2: float
    p_value: float
    mismatch: bool
    arms: tuple[ArmShare, ...] = ()
    degrees_of_freedom: int = 1

    def worst(self) -> ArmShare | None:
        """The arm furthest from its plan (largest chi-square contribution)."""
        return max(self.arms, key=lambda a: (a.customers - a.expected) ** 2 / a.expected if a.expected else 0.0,
                   default=None)


@dataclass(frozen=True)
class Cuped:
    """The CUPED adjustment of one amount outcome: theta, variance removed, and whether it was used."""

    covariate: str
    theta: float
    variance_reduction: float
    used: bool


@dataclass(frozen=True)
class ArmResult:
    """One arm's customers and outcome level (rate or mean; CUPED-adjusted mean when used)."""

    arm: str
    customers: int
    mean: float
    sd: float
    successes: int | None = None
    adjusted_mean: float | None = None


@dataclass(frozen=True)
class Comparison:
    """Arm against baseline: uplift, interval, p-values, and the money it is worth."""

    arm: str
    against: str
    arm_mean: float
    against_mean: float
    uplift: Difference
    relative_uplift: float | None
    p_holm: float
    significant: bool
    incremental: float | None = None  # uplift x customers in the arm (conversions, or money)
    incremental_ci: tuple[float, float] | None = None
    cost: float | None = None
    roi: float | None = None  # (incremental money - cost) / cost
    roi_ci: tuple[float, float] | None = None
    cost_per_incremental: float | None = None  # binary outcomes: cost per extra conversion


@dataclass(frozen=True)
class OutcomeResult:
    """Everything measured for one outcome column."""

    name: str
    kind: str  # "binary" or "amount"
    money: bool
    arms: list[ArmResult]
    versus_control: list[Comparison]
    pairwise: list[Comparison]
    cuped: Cuped | None = None


@dataclass(frozen=True)
class Evaluation:
    """The evaluation of one experiment: arms, sample-ratio check, and per-outcome results."""

    control: str
    alpha: float
    customers: int
    arms: dict[str, int]
    sample_ratio: SampleRatio | None
    outcomes: list[OutcomeResult]
    cost_per_contact: float | None = None
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------- building blocks
def compare_rates(successes: int, customers: int, base_successes: int, base_customers: int,
                  alpha: float = ALPHA) -> Difference:
    """Difference of two rates (arm - baseline): Newcombe interval and pooled z-test p-value."""
    from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep

    args = (int(successes), int(customers), int(base_successes), int(base_customers))
    # Newcombe (1998, method 10): closed form from two Wilson intervals, so it never fails to converge
    # (statsmodels' score-interval root finder can, with a small control group), and it keeps its
    # coverage at the low rates campaigns see, where Wald's interval is too narrow.
    with np.errstate(divide="ignore", invalid="ignore"):  # statsmodels also computes ratios we do not use
        low, high = confint_proportions_2indep(*args, method="newcomb", compare="diff", alpha=alpha)
    diff = successes / customers - base_successes / base_customers
    if successes + base_successes in (0, customers + base_customers):
        # everyone (or no one) converted: no variance under the null, nothing to test
        return Difference(diff, float(low), float(high), 1.0, 0.0, BINARY_METHOD)
    with np.errstate(divide="ignore", invalid="ignore"):
        test = test_proportions_2indep(*args, value=0, method="score", compare="diff", correction=False)
    return Difference(float(test.diff), float(low), float(high), float(test.pvalue), float(test.statistic),
                      BINARY_METHOD)


def compare_means(values: np.ndarray, base_values: np.ndarray, alpha: float = ALPHA) -> Difference:
    """Difference of two means (arm - baseline): Welch t-test and interval."""
    from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

    y, b = np.asarray(values, dtype=float), np.asarray(base_values, dtype=float)
    diff = float(y.mean() - b.mean())
    if y.var(ddof=1) == 0 and b.var(ddof=1) == 0:  # no spread at all: the t statistic is undefined
        return Difference(diff, diff, diff, 1.0 if diff == 0 else 0.0, math.nan, WELCH_METHOD)
    cm = CompareMeans(DescrStatsW(y), DescrStatsW(b))
    stat, p, _df = cm.ttest_ind(usevar="unequal")
    low, high = cm.tconfint_diff(alpha=alpha, usevar="unequal")
    return Difference(diff, float(low), float(high), float(p), float(stat), WELCH_METHOD)


def cuped_theta(y: np.ndarray, x: np.ndarray) -> float:
    """theta = cov(y, x) / var(x) (Deng et al. 2013, eq. 3); 0 when the covariate does not vary."""
    vx = float(np.var(x, ddof=1))
    return float(np.cov(y, x, ddof=1)[0, 1] / vx) if vx > 0 else 0.0


def cuped_adjust(y: np.ndarray, x: np.ndarray, theta: float) -> np.ndarray:
    """y - theta (x - mean x): same expected difference between arms, less variance."""
    return y - theta * (x - x.mean())


def sample_ratio(control: int, treated: int, holdout: float) -> SampleRatio:
    """Chi-square goodness of fit of (control, treated) against the planned holdout share."""
    return sample_ratio_arms({"control": control, "treated": treated},
                             {"control": holdout, "treated": 1 - holdout}, control="control")


def planned_shares(arms: Sequence[str], control: str, holdout: float,
                   treated_shares: Mapping[str, float] | None = None) -> dict[str, float]:
    """Planned share of every arm: ``holdout`` for the control, the rest split by ``treated_shares``.

    ``treated_shares`` weighs the treated arms (e.g. the cells' planned shares); without it they are
    planned equal. Weights are normalised, so shares of the treated group and of all customers both work.
    """
    treated = [a for a in arms if a != control]
    weights = {a: float((treated_shares or {}).get(a, 0.0 if treated_shares else 1.0)) for a in treated}
    total = sum(weights.values())
    return {control: holdout, **{a: (1 - holdout) * w / total if total else 0.0 for a, w in weights.items()}}


def sample_ratio_arms(counts: Mapping[str, int], planned: Mapping[str, float], *, control: str) -> SampleRatio:
    """Chi-square goodness of fit of every arm's count against its planned share of all customers."""
    from scipy.stats import chisquare

    order = [control] + [a for a in counts if a != control]
    n = sum(counts[a] for a in order)
    total_share = sum(planned[a] for a in order)
    expected = [planned[a] / total_share * n for a in order]
    observed = [counts[a] for a in order]
    chi2, p = chisquare(observed, f_exp=expected)
    arms = tuple(ArmShare(a, counts[a], planned[a] / total_share, counts[a] / n if n else 0.0, e)
                 for a, e in zip(order, expected, strict=True))
    return SampleRatio(planned[control] / total_share, counts[control] / n, counts[control], n - counts[control],
                       expected[0], float(chi2), float(p), bool(p < SRM_ALPHA), arms, len(order) - 1)


def srm_text(srm: SampleRatio) -> str:
    """Where the split is off: the control share, and the arm furthest from its plan when that is another."""
    text = f"control is {srm.observed_holdout:.2%} of customers, planned {srm.planned_holdout:.2%}"
    worst = srm.worst()
    if worst is not None and worst.arm != srm.arms[0].arm:
        text += f"; arm {worst.arm} is {worst.observed_share:.2%}, planned {worst.planned_share:.2%}"
    return text


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (Holm 1979) for one family of comparisons."""
    if len(p_values) < 2:  # a family of one needs no adjustment (and multipletests costs a gc.collect())
        return [float(p) for p in p_values]
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, math.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return [float(v) for v in out]


def is_binary(values: np.ndarray) -> bool:
    """All values are 0 or 1 (a conversion flag)."""
    return bool(np.isin(values, (0.0, 1.0)).all())


# ---------------------------------------------------------------------------------------- the experiment
def evaluate(arms: Sequence[str] | np.ndarray, outcomes: Mapping[str, np.ndarray], *, control: str,
             money: Sequence[str] = (), pre: np.ndarray | None = None, pre_name: str = "pre",
             cost_per_contact: float | None = None, holdout: float | None = None,
             treated_shares: Mapping[str, float] | None = None, srm: SampleRatio | None = None,
             alpha: float = ALPHA) -> Evaluation:
    """Evaluate every outcome for every arm against the control group and pairwise between arms.

    The sample-ratio check runs when ``holdout`` is given: every arm against its planned share
    (:func:`planned_shares`). A caller that knows finer arms than it evaluates (the lake review's cells)
    passes its own check as ``srm``.
    """
    labels = np.asarray(arms).astype(str)
    names = sorted(set(labels.tolist()))
    if control not in names:
        raise DataError(f"the control group {control!r} has no customers",
                        problems=[Problem(f"arms found: {', '.join(names)}", field="control")],
                        hint="pass the arm value that marks the control (holdout) customers")
    order = [control] + [a for a in names if a != control]
    masks = {a: labels == a for a in order}
    counts = {a: int(m.sum()) for a, m in masks.items()}
    small = [a for a, c in counts.items() if c < 2]
    if len(order) < 2 or small:
        raise DataError("an evaluation needs a control group and at least one arm, each with 2+ customers",
                        problems=[Problem(f"{a}: {counts[a]} customer(s)", field="arm") for a in small])
    if srm is None and holdout is not None:
        srm = sample_ratio_arms(counts, planned_shares(order, control, holdout, treated_shares), control=control)
    notes = []
    if srm and srm.mismatch:
        notes.append(f"sample-ratio mismatch: {srm_text(srm)} (p = {srm.p_value:.2g}); results are not "
                     "trustworthy until the assignment is explained")
    if len(order) > 2:
        notes.append("several arms: p_holm is Holm-adjusted within each family (vs control; pairwise); "
                     "intervals are not adjusted")
    x = None if pre is None else np.asarray(pre, dtype=float)
    gaps = [Problem(f"{int((~np.isfinite(v)).sum()):,} value(s) missing or not finite", column=n)
            for n, v in [*((n, np.asarray(v, dtype=float)) for n, v in outcomes.items()),
                         *([(pre_name, x)] if x is not None else [])] if not np.isfinite(v).all()]
    if gaps:
        raise DataError("outcomes must have a value for every customer", problems=gaps,
                        hint="measure every customer (treated and control) on the same window; fill a "
                             "customer without a pre-period with 0 rather than leaving it empty")
    results = []
    for name, values in outcomes.items():
        y = np.asarray(values, dtype=float)
        is_money = name in money
        kind = "binary" if not is_money and is_binary(y) else "amount"
        cuped = None
        if kind == "amount" and x is not None:
            theta = cuped_theta(y, x)
            vy = float(np.var(y, ddof=1))
            reduction = 1 - float(np.var(cuped_adjust(y, x, theta), ddof=1)) / vy if vy > 0 else 0.0
            cuped = Cuped(pre_name, theta, reduction, reduction >= CUPED_MIN_REDUCTION)
        analysed = cuped_adjust(y, x, cuped.theta) if cuped and cuped.used else y
        arm_results = [_arm(a, y[masks[a]], analysed[masks[a]] if cuped and cuped.used else None, kind)
                       for a in order]
        by_arm = {r.arm: r for r in arm_results}

        def compare(a: str, b: str, with_cost: bool, kind: str = kind, by_arm: dict = by_arm,
                    analysed: Any = analysed, is_money: bool = is_money) -> Comparison:
            if kind == "binary":
                d = compare_rates(by_arm[a].successes, counts[a], by_arm[b].successes, counts[b], alpha)
            else:
                d = compare_means(analysed[masks[a]], analysed[masks[b]], alpha)
            return _comparison(a, b, by_arm, d, counts[a], kind, is_money, cost_per_contact if with_cost else None)

        vs = [compare(a, control, True) for a in order[1:]]
        pairs = [compare(a, b, False) for a, b in combinations(order[1:], 2)]
        results.append(OutcomeResult(name, kind, is_money, arm_results, _with_holm(vs, alpha),
                                     _with_holm(pairs, alpha), cuped))
    return Evaluation(control, alpha, len(labels), counts, srm, results, cost_per_contact, notes)


def _arm(arm: str, y: np.ndarray, adjusted: np.ndarray | None, kind: str) -> ArmResult:
    successes = int(y.sum()) if kind == "binary" else None
    return ArmResult(arm, len(y), float(y.mean()), float(y.std(ddof=1)), successes,
                     float(adjusted.mean()) if adjusted is not None else None)


def _comparison(arm: str, against: str, by_arm: dict[str, ArmResult], d: Difference, customers: int, kind: str,
                is_money: bool, cost_per_contact: float | None) -> Comparison:
    base = by_arm[against].mean
    relative = d.estimate / base if base else None
    incremental = incremental_ci = cost = roi = roi_ci = per = None
    if kind == "binary" or is_money:
        # incremental = uplift x customers treated: the conversions (or money) the arm added over its baseline
        incremental = d.estimate * customers
        incremental_ci = (d.ci_low * customers, d.ci_high * customers)
    if cost_per_contact is not None and incremental is not None:
        cost = cost_per_contact * customers
        if is_money and cost > 0:
            roi = (incremental - cost) / cost
            roi_ci = ((incremental_ci[0] - cost) / cost, (incremental_ci[1] - cost) / cost)
        if kind == "binary" and incremental > 0:
            per = cost / incremental
    return Comparison(arm, against, by_arm[arm].adjusted_mean if by_arm[arm].adjusted_mean is not None
                      else by_arm[arm].mean,
                      by_arm[against].adjusted_mean if by_arm[against].adjusted_mean is not None else base,
                      d, relative, d.p_value, False, incremental, incremental_ci, cost, roi, roi_ci, per)


def _with_holm(comparisons: list[Comparison], alpha: float) -> list[Comparison]:
    from dataclasses import replace

    adjusted = holm([c.uplift.p_value for c in comparisons])
    return [replace(c, p_holm=p, significant=bool(p < alpha)) for c, p in zip(comparisons, adjusted, strict=False)]
