"""Learned expected uplift (学习): the configured prior, moved toward what review measured.

Arbitration ranks a contact by expected incremental value = expected uplift x value of a success -
channel cost. The uplift starts as the strategy's configured prior (``expected.uplift``) and is
updated from Lifeloop's own post-evaluation (``lifeloop.review.evidence.uplift_evidence``: treated
vs control conversion per strategy, entry wave, entry channel and segment), shrunk toward the prior
while the evidence is thin, so one lucky week cannot hijack the relationship managers' time.

Normal-normal precision weighting, in two levels:

* strategy x wave x channel (segment ``*``): the prior ``mu0`` with standard deviation ``tau``
  (``expected.prior_sd``, else ``arbitration.prior_sd`` of contact_policy.yaml) and the pooled
  estimate ``est`` with standard error ``se`` give
  ``posterior = (mu0/tau^2 + est/se^2) / (1/tau^2 + 1/se^2)``; the weight given to evidence is
  ``(1/se^2) / (1/tau^2 + 1/se^2)``;
* each segment (the customer's value tier on the day): the same formula with the level above's
  posterior as the prior (``tau`` again: how far a segment may differ from the whole).

Evidence counts only when both arms hold at least ``arbitration.min_customers``; otherwise the
posterior is the prior and the weight 0. A standard error of 0 (no conversions in either arm) would
claim certainty, so it is recomputed with half a success and half a failure added to each arm.
Pure: Arrow in, Arrow out; the plan step does the reading.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lifeloop.config.contact_policy import ContactPolicy
from lifeloop.config.strategies import StrategiesConfig

if TYPE_CHECKING:
    import pyarrow as pa

ALL = "*"   # the segment of the strategy-wave-channel row (every customer)


def values_schema() -> pa.Schema:
    """Columns of the learned-values table (``lake/lists/as_of=D/values.parquet``)."""
    import pyarrow as pa

    s, f, i = pa.string(), pa.float64(), pa.int64()
    return pa.schema([("strategy", s), ("wave", s), ("channel", s), ("segment", s),
                      ("prior_uplift", f), ("prior_sd", f), ("treated", i), ("control", i),
                      ("treated_rate", f), ("control_rate", f), ("observed_uplift", f), ("se", f),
                      ("evidence_used", pa.bool_()), ("shrunk_toward", f), ("weight", f), ("uplift", f),
                      ("value_of_success", f), ("cost", f), ("expected_value", f)])


def evidence_schema() -> pa.Schema:
    """Columns of the evidence table review hands over (one row per strategy x wave x channel x segment)."""
    import pyarrow as pa

    s, f, i = pa.string(), pa.float64(), pa.int64()
    return pa.schema([("strategy", s), ("wave", s), ("channel", s), ("segment", s), ("treated", i),
                      ("control", i), ("treated_rate", f), ("control_rate", f), ("uplift", f), ("se", f)])


@dataclass(frozen=True)
class Arm:
    """Evaluated treated vs control of one cell: counts, rates, observed uplift and its standard error."""

    treated: int
    control: int
    treated_rate: float
    control_rate: float
    se: float | None = None

    @property
    def uplift(self) -> float:
        """Treated rate - control rate."""
        return self.treated_rate - self.control_rate

    def standard_error(self) -> float:
        """The given standard error, or (when missing or 0) one from the rates with half a success added."""
        if self.se is not None and self.se > 0 and math.isfinite(self.se):
            return self.se
        return binomial_se(self.treated, self.treated_rate, self.control, self.control_rate, adjust=True)


def binomial_se(nt: int, pt: float, nc: int, pc_: float, adjust: bool = False) -> float:
    """Standard error of a difference of two proportions (``adjust``: half a success and failure per arm)."""
    if adjust:
        pt, pc_ = (pt * nt + 0.5) / (nt + 1), (pc_ * nc + 0.5) / (nc + 1)
    var = pt * (1 - pt) / max(nt, 1) + pc_ * (1 - pc_) / max(nc, 1)
    if var <= 0:
        return binomial_se(nt, pt, nc, pc_, adjust=True) if not adjust else 0.5
    return math.sqrt(var)


def pooled(arms: Iterable[Arm]) -> Arm | None:
    """One arm from several segments: counts summed, rates weighted by each arm's size."""
    arms = list(arms)
    if len(arms) == 1:
        return arms[0]   # one segment: the whole is that segment (its own standard error)
    nt, nc = sum(a.treated for a in arms), sum(a.control for a in arms)
    if not arms or nt == 0 or nc == 0:
        return None
    pt = sum(a.treated_rate * a.treated for a in arms) / nt
    pc_ = sum(a.control_rate * a.control for a in arms) / nc
    return Arm(nt, nc, pt, pc_, binomial_se(nt, pt, nc, pc_))


def shrink(prior: float, tau: float, arm: Arm | None, min_customers: int) -> tuple[float, float, bool]:
    """(posterior uplift, weight of evidence, evidence used) by normal-normal precision weighting."""
    if arm is None or arm.treated < min_customers or arm.control < min_customers:
        return prior, 0.0, False
    se = arm.standard_error()
    p_prior, p_data = 1 / tau ** 2, 1 / se ** 2
    weight = p_data / (p_prior + p_data)
    return (prior * p_prior + arm.uplift * p_data) / (p_prior + p_data), weight, True


def _arms(evidence: pa.Table | None) -> dict[tuple[str, str, str], dict[str | None, Arm]]:
    """Evidence rows by (strategy, wave, channel) and segment."""
    out: dict[tuple[str, str, str], dict[str | None, Arm]] = {}
    if evidence is None or evidence.num_rows == 0:
        return out
    cols = {c: evidence[c].to_pylist() for c in ("strategy", "wave", "channel", "segment", "treated", "control",
                                                  "treated_rate", "control_rate", "se")}
    for i in range(evidence.num_rows):
        nt, nc = int(cols["treated"][i] or 0), int(cols["control"][i] or 0)
        if nt == 0 and nc == 0:
            continue
        arm = Arm(nt, nc, float(cols["treated_rate"][i] or 0.0), float(cols["control_rate"][i] or 0.0),
                  cols["se"][i])
        seg = cols["segment"][i]
        cell = out.setdefault((cols["strategy"][i], cols["wave"][i], cols["channel"][i]), {})
        if seg in cell:   # the same cell twice (should not happen): pool rather than overwrite
            cell[seg] = pooled([cell[seg], arm]) or arm
        else:
            cell[seg] = arm
    return out


def learned_values(config: StrategiesConfig, policy: ContactPolicy, evidence: pa.Table | None = None,
                   segments: Iterable[str] = ()) -> pa.Table:
    """One row per (strategy, wave, channel, segment): prior, evidence, weight, uplift used and expected value.

    Segment ``*`` is the strategy-wave-channel level; a row follows for every segment in ``segments``
    or in the evidence (a segment without evidence gets the level above's uplift).
    """
    import pyarrow as pa

    settings = policy.arbitration
    shown = _arms(evidence)   # evidence is shown even when learning is switched off
    by_cell = shown if settings.learn else {}
    names = sorted({s for s in segments if s is not None and s != ALL}
                   | {s for cell in shown.values() for s in cell if s is not None and s != ALL})
    rows: list[dict] = []
    for s in config.strategies:
        tau = s.expected.prior_sd or settings.prior_sd
        value = float(s.expected.value)
        for w in s.waves:
            for ch in s.channels_of(w):
                prior = s.expected.uplift_for(ch)
                cost = float(policy.channel(ch).cost)
                key = (s.id, w.id, ch)
                cell, seen = by_cell.get(key, {}), shown.get(key, {})
                whole = pooled(seen.values())
                top, weight, used = shrink(prior, tau, pooled(cell.values()), settings.min_customers)
                rows.append(_row(key, ALL, prior, tau, whole, used, prior, weight, top, value, cost))
                for seg in names:
                    up, wt, u = shrink(top, tau, cell.get(seg), settings.min_customers)
                    rows.append(_row(key, seg, prior, tau, seen.get(seg), u, top, wt, up, value, cost))
    return pa.Table.from_pylist(rows, schema=values_schema())


def _row(key: tuple[str, str, str], segment: str, prior: float, tau: float, arm: Arm | None, used: bool,
         toward: float, weight: float, uplift: float, value: float, cost: float) -> dict:
    return {"strategy": key[0], "wave": key[1], "channel": key[2], "segment": segment,
            "prior_uplift": prior, "prior_sd": tau,
            "treated": arm.treated if arm else 0, "control": arm.control if arm else 0,
            "treated_rate": arm.treated_rate if arm else None, "control_rate": arm.control_rate if arm else None,
            "observed_uplift": arm.uplift if arm else None, "se": arm.standard_error() if arm else None,
            "evidence_used": used, "shrunk_toward": toward, "weight": round(weight, 6), "uplift": uplift,
            "value_of_success": value, "cost": cost, "expected_value": round(uplift * value - cost, 6)}


class ValueLookup:
    """Expected value (and the uplift it is made of) per (strategy, wave, channel) and segment, from a
    learned-values table."""

    def __init__(self, values: pa.Table):
        # column -> (strategy, wave, channel) -> the whole level's number, and per segment
        self.whole: dict[str, dict[tuple[str, str, str], float]] = {}
        self.by_segment: dict[str, dict[tuple[str, str, str], dict[str, float]]] = {}
        keys = [values[c].to_pylist() for c in ("strategy", "wave", "channel", "segment")]
        for column in ("expected_value", "uplift"):
            whole, by_segment = self.whole.setdefault(column, {}), self.by_segment.setdefault(column, {})
            for s, w, ch, seg, v in zip(*keys, values[column].to_pylist(), strict=False):
                if seg == ALL:
                    whole[(s, w, ch)] = v
                else:
                    by_segment.setdefault((s, w, ch), {})[seg] = v
        # segments matter only where some segment's value (or uplift) differs from the whole's
        self.varies = any(any(v != self.whole[c].get(key) for v in segs.values())
                          for c in self.whole for key, segs in self.by_segment[c].items())

    def matrix(self, strategy: str, wave: str, channels: list[str], segment: pa.Array | None,
               n: int, fallback: Iterable[float], column: str = "expected_value") -> Any:
        """(n, channels) NumPy matrix of expected values (or ``column="uplift"``: uplifts) for ``n`` rows whose
        segments are ``segment``."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        fallback = list(fallback)
        out = np.empty((n, len(channels)), dtype=np.float64)
        for j, ch in enumerate(channels):
            key = (strategy, wave, ch)
            whole = self.whole[column].get(key, fallback[j])
            segs = self.by_segment[column].get(key)
            if segment is None or not segs or all(v == whole for v in segs.values()):
                out[:, j] = whole
                continue
            names = list(segs)
            table = np.array([segs[x] for x in names] + [whole], dtype=np.float64)
            idx = pc.fill_null(pc.index_in(segment, value_set=pa.array(names, pa.string())), len(names))
            out[:, j] = table[idx.to_numpy(zero_copy_only=False)]
        return out
