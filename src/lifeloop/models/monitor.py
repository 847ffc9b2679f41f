"""Model monitoring (模型监控): input and score drift, missing inputs, calibration over time.

**Population stability index** (PSI; Siddiqi, *Credit Risk Scorecards*, 2006, ch. 8; Yurdakul, 2018,
"Statistical properties of population stability index"): cut the reference values (the model's training
snapshot) into ten quantile bins, with missing values in a bin of their own, and compare the shares of a
later population in the same bins:

    PSI = sum_i (a_i - e_i) ln(a_i / e_i)

with e_i the reference share and a_i the actual share of bin i; an empty bin counts a share of 0.0001 so
the logarithm stays finite. The usual reading: below 0.1 stable, 0.1 to 0.25 a moderate shift worth a
look, above 0.25 a significant shift (refit or investigate).

**Missing inputs**: a feature the model reads that is absent from the day's snapshot, or whose share of
missing values rose by more than 10 points over training.

**Calibration over time** (classifiers read from lifecycle stages): for each scores snapshot whose label
horizon has closed by the as-of date, the mean predicted probability next to the observed rate of the
label among the same eligible customers, with a 95% Wilson interval for the observed rate; a mean
outside it is flagged.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from lifeloop.errors import DataError
from lifeloop.models import labels, registry
from lifeloop.store.lake import Lake

if TYPE_CHECKING:
    import numpy as np

STABLE, SIGNIFICANT = 0.1, 0.25
FLOOR = 1e-4
MISSING_RISE = 0.10


def psi_from_shares(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI of two share vectors over the same bins (empty bins floored at 0.0001)."""
    import numpy as np

    e = np.maximum(np.asarray(expected, float), FLOOR)
    a = np.maximum(np.asarray(actual, float), FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def reference_edges(reference: np.ndarray, bins: int = 10) -> np.ndarray:
    """Distinct inner decile edges of the reference's non-missing values."""
    import numpy as np

    seen = reference[~np.isnan(reference)]
    if seen.size == 0:
        return np.array([])
    return np.unique(np.quantile(seen, np.linspace(0, 1, bins + 1)[1:-1]))


def shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of values per bin (right-closed cuts at the edges), the last bin for missing values."""
    import numpy as np

    idx = np.searchsorted(edges, values, side="left")
    idx[np.isnan(values)] = len(edges) + 1
    counts = np.bincount(idx, minlength=len(edges) + 2)
    return counts / max(len(values), 1)


def psi(reference: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """PSI of ``actual`` against ``reference`` over the reference's decile bins (missing: a bin of its own)."""
    import numpy as np

    reference, actual = np.asarray(reference, float), np.asarray(actual, float)
    edges = reference_edges(reference, bins)
    return psi_from_shares(shares(reference, edges), shares(actual, edges))


def reading(value: float) -> str:
    """The standard reading of a PSI value."""
    if value < STABLE:
        return "stable"
    return "moderate shift" if value < SIGNIFICANT else "significant shift"


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95% Wilson score interval of a rate k / n."""
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return centre - half, centre + half


def drift(model: Any, reference: Any, current: Any) -> dict[str, Any]:
    """Per feature and for the score: PSI, reading, missing shares; features absent from ``current`` flagged.

    ``reference`` and ``current`` are feature tables (pyarrow) with the model's features."""
    import numpy as np

    names = model.spec.features
    ref = labels.matrix(reference, names)
    absent = [n for n in names if n not in current.column_names]
    present = tuple(n for n in names if n not in absent)
    cur = labels.matrix(current, present)
    rows, alerts = [], []
    for j, n in enumerate(names):
        if n in absent:
            rows.append({"feature": n, "psi": None, "reading": "absent", "missing_reference": None,
                         "missing_now": None})
            alerts.append(f"input {n} is not in the day's features: the model cannot score")
            continue
        r, c = ref[:, j], cur[:, present.index(n)]
        value = psi(r, c)
        miss_r, miss_c = float(np.isnan(r).mean()), float(np.isnan(c).mean())
        rows.append({"feature": n, "psi": round(value, 4), "reading": reading(value),
                     "missing_reference": round(miss_r, 4), "missing_now": round(miss_c, 4)})
        if value >= SIGNIFICANT:
            alerts.append(f"input {n}: PSI {value:.3f} (significant shift)")
        if miss_c - miss_r > MISSING_RISE:
            alerts.append(f"input {n}: {miss_c:.0%} missing now, {miss_r:.0%} in training")
    score = None
    if not absent:
        value = psi(model.predict(ref), model.predict(cur))
        score = {"psi": round(value, 4), "reading": reading(value)}
        if value >= SIGNIFICANT:
            alerts.append(f"score: PSI {value:.3f} (significant shift)")
    return {"inputs": rows, "score": score, "alerts": alerts}


def reference_date(manifest: dict[str, Any]) -> dt.date:
    """The features snapshot a model was trained on (the newest one, for offer models)."""
    w = manifest["training_window"]
    day = w.get("features_as_of") or w.get("entries_to")
    if day is None:
        raise DataError(f"model {manifest['name']} {manifest['version']} does not record its training window")
    return dt.date.fromisoformat(day)


def calibration(lake: Lake, name: str, spec: Any, as_of: dt.date) -> list[dict[str, Any]]:
    """Mean predicted vs observed label rate for each scores snapshot whose horizon has closed by ``as_of``."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if spec.kind != "classifier":
        return []
    out = []
    for day in lake.dates("scores"):
        end = day + dt.timedelta(days=spec.label.horizon_days)
        if end > as_of or not lake.exists("lifecycle", day):
            continue
        scores = pq.read_table(lake.snapshot_file("scores", day))
        scores = scores.filter(pc.equal(scores["model"], name))
        later = [d for d in lake.dates("lifecycle") if day < d <= end]
        if scores.num_rows == 0 or not later:
            continue
        stages = pq.read_table(lake.snapshot_file("lifecycle", day), columns=["customer_id", "stage"])
        found = labels.outcomes(stages, [pq.read_table(lake.snapshot_file("lifecycle", d),
                                                       columns=["customer_id", "stage"]) for d in later], spec.label)
        joined = found.join(scores.select(["customer_id", "score", "version"]), "customer_id", join_type="inner")
        n = joined.num_rows
        if n == 0:
            continue
        k = int(pc.sum(pc.cast(joined["label"], "int64")).as_py() or 0)
        predicted = float(pc.mean(joined["score"]).as_py())
        lo, hi = wilson(k, n)
        out.append({"scored_on": day.isoformat(), "versions": sorted(set(joined["version"].to_pylist())),
                    "customers": n, "predicted": round(predicted, 4), "observed": round(k / n, 4),
                    "observed_ci95": [round(lo, 4), round(hi, 4)], "calibrated": lo <= predicted <= hi})
    return out


def monitor(lake: Lake, name: str, as_of: dt.date, version: str | None = None) -> dict[str, Any]:
    """Drift of inputs and score on the features of ``as_of`` against training, and calibration over time."""
    import pyarrow.parquet as pq

    version = version or registry.champion(lake, name) or (registry.versions(lake, name) or [None])[-1]
    if version is None:
        raise DataError(f"model {name} has no fitted version to monitor", hint=f"fit it: `lifeloop models fit {name}`")
    model, manifest = registry.load(lake, name, version)
    if model.spec.kind == "clv":
        raise DataError(f"model {name} is a CLV model: monitoring reads feature drift and label calibration, which "
                        "a CLV model does not have", hint=f"see its holdout validation: `lifeloop models show {name}`")
    ref_day = reference_date(manifest)
    today = lake.latest_date("features", as_of)
    if today is None:
        raise DataError(f"no features snapshot on or before {as_of} to monitor against",
                        hint=f"run the features step for {as_of}")
    found = drift(model, pq.read_table(lake.snapshot_file("features", ref_day)),
                  pq.read_table(lake.snapshot_file("features", today)))
    cal = calibration(lake, name, model.spec, as_of)
    alerts = found["alerts"] + [f"scores of {c['scored_on']}: predicted {c['predicted']:.3f}, observed "
                                f"{c['observed']:.3f} [{c['observed_ci95'][0]:.3f}, {c['observed_ci95'][1]:.3f}]"
                                for c in cal if not c["calibrated"]]
    return {"model": name, "version": version, "reference": ref_day.isoformat(), "features_as_of": today.isoformat(),
            "thresholds": {"stable_below": STABLE, "significant_from": SIGNIFICANT},
            "inputs": found["inputs"], "score": found["score"], "calibration": cal, "alerts": alerts}
