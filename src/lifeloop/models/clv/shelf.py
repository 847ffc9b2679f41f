"""CLV on the model shelf (``kind: clv``): BG/NBD and Gamma-Gamma fitted on the bank's transactions as of D - H.

What is counted (the bank's measured quantity): the **customer-initiated debit transactions** of the
canonical ``transactions`` table (``direction = 'debit'``, ``customer_initiated``, amount > 0; optionally
only some ``txn_types``) — payments, transfers, purchases the customer makes; interest, fees and other
system postings are left out. Same-day debits are one transaction (amounts added, :func:`rfm_summary`).
Time is in weeks. ``clv`` is the expected debit volume over the next ``horizon_days``, discounted at the
annual ``discount_rate``, times ``margin`` (the bank's income per RMB of volume; 1: the volume itself).

**Honest fit.** A fit as of D reads only the batches dated on or before the cut-off C = D - H (H =
``horizon_days``) and only rows dated on or before C: the calibration window ends at C, so changing any
row dated after C leaves ``model.json`` unchanged (tested). The holdout (C, D] then validates it: the
predicted repeat transactions per customer against those observed (recorded in the manifest only).

**Scoring as of D** (:class:`ClvScorer`): the RFM summary of every transaction on or before D is computed
on the driver (pyarrow) and scored row by row through the engine's ``map_arrow`` — the same code on DuckDB
and Spark — giving per customer expected transactions over H, P(alive), expected spend per transaction and
CLV. A customer without any counted transaction by D has no RFM history and is not scored.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from lifeloop.config.shelf import ModelSpec
from lifeloop.models.clv.bgnbd import BetaGeoModel
from lifeloop.models.clv.gamma_gamma import GammaGammaModel
from lifeloop.models.clv.rfm import rfm_summary
from lifeloop.models.clv.value import customer_lifetime_value, per_period_rate
from lifeloop.models.contract import Model

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from lifeloop.store.lake import Lake

RFM = ("frequency", "recency", "T", "monetary_value")
DETAIL = ("expected_transactions", "p_alive", "expected_spend", "clv")
PERIOD, UNITS, WEEK = "W", "weeks", 7.0
READ = ("customer_id", "txn_date", "amount", "direction", "txn_type", "customer_initiated")


def transactions(lake: Lake, day: dt.date, spec: ModelSpec) -> tuple[pa.Table, list[str]]:
    """(customer_id, txn_date, amount) of the counted debits dated on or before ``day``, read from the batches
    dated on or before it, and the batch dates read."""
    import pyarrow as pa
    import pyarrow.compute as pc

    files = lake.bank_files(day).get("transactions", [])
    empty = pa.table({"customer_id": pa.array([], pa.string()), "txn_date": pa.array([], pa.date32()),
                      "amount": pa.array([], pa.float64())})
    if not files:
        return empty, []
    parts = []
    for f in files:
        t = lake.read_table(f, list(READ))
        keep = pc.and_(pc.and_(pc.equal(t["direction"], "debit"), pc.fill_null(t["customer_initiated"], False)),
                       pc.and_(pc.less_equal(t["txn_date"], pa.scalar(day, pa.date32())),
                               pc.greater(pc.cast(t["amount"], pa.float64()), 0.0)))
        if spec.clv.txn_types:
            keep = pc.and_(keep, pc.is_in(t["txn_type"], value_set=pa.array(spec.clv.txn_types, pa.string())))
        t = t.filter(keep)
        parts.append(pa.table({"customer_id": pc.cast(t["customer_id"], pa.string()),
                               "txn_date": pc.cast(t["txn_date"], pa.date32()),
                               "amount": pc.cast(t["amount"], pa.float64())}))
    return pa.concat_tables(parts), [f.parent.name.removeprefix("as_of=") for f in files]


def summary(lake: Lake, spec: ModelSpec, day: dt.date, calibration_end: dt.date | None = None
            ) -> tuple[pa.Table, list[str]]:
    """The RFM summary (in weeks) of the counted transactions as of ``day``; with ``calibration_end`` the
    holdout columns too."""
    rows, batches = transactions(lake, day, spec)
    return rfm_summary(rows, "customer_id", "txn_date", "amount", observation_end=day, period=PERIOD,
                       calibration_end=calibration_end), batches


class ClvShelfModel(Model):
    """A BG/NBD and Gamma-Gamma pair with the spec's horizon, discount rate and margin: a model of the shelf."""

    estimator = "bg_nbd_gamma_gamma"
    output = "clv"
    requires = ("numpy",)

    def __init__(self, spec: ModelSpec, bg: BetaGeoModel | None = None, gg: GammaGammaModel | None = None):
        super().__init__(spec)
        self.bg, self.gg = bg, gg

    @property
    def horizon(self) -> float:
        """The horizon in weeks."""
        return self.spec.clv.horizon_days / WEEK

    def fit_summary(self, rfm: pa.Table, window: dict[str, str]) -> ClvShelfModel:
        """Fit both models by maximum likelihood on an RFM summary (in weeks)."""
        self.bg = BetaGeoModel.fit(rfm, units=UNITS, window=window)
        self.gg = GammaGammaModel.fit(rfm, units=UNITS, window=window)
        return self

    def fit(self, X: np.ndarray, y: np.ndarray) -> ClvShelfModel:
        raise NotImplementedError("a CLV model is fitted on an RFM summary: fit_summary()")

    def detail(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Per row of (frequency, recency, T, monetary_value): expected transactions over the horizon, P(alive),
        expected spend per transaction and CLV."""
        x, t_x, age, m = (X[:, i] for i in range(4))
        assert self.bg is not None and self.gg is not None
        clv = customer_lifetime_value(self.bg, self.gg, x, t_x, age, m, horizon=self.horizon,
                                      discount_rate=per_period_rate(self.spec.clv.discount_rate, UNITS),
                                      margin=self.spec.clv.margin)
        return {"expected_transactions": self.bg.expected_transactions(self.horizon, x, t_x, age),
                "p_alive": self.bg.p_alive(x, t_x, age), "expected_spend": self.gg.expected_spend(x, m), "clv": clv}

    def predict(self, X: np.ndarray) -> np.ndarray:
        """CLV per row of (frequency, recency, T, monetary_value)."""
        return self.detail(X)["clv"]

    def to_json(self) -> dict[str, Any]:
        assert self.bg is not None and self.gg is not None
        return {"bg_nbd": self.bg.to_dict(), "gamma_gamma": self.gg.to_dict()}

    @classmethod
    def from_json(cls, spec: ModelSpec, data: dict[str, Any]) -> ClvShelfModel:
        return cls(spec, BetaGeoModel.from_dict(data["bg_nbd"]), GammaGammaModel.from_dict(data["gamma_gamma"]))


ESTIMATORS: dict[str, type[Model]] = {"bg_nbd_gamma_gamma": ClvShelfModel}


def matrix(rfm: pa.Table) -> np.ndarray:
    """The RFM columns as a float matrix."""
    import numpy as np

    return np.column_stack([rfm[c].to_numpy(zero_copy_only=False).astype(float) for c in RFM])


def validate(model: ClvShelfModel, rfm: pa.Table) -> dict[str, Any]:
    """Predicted against observed repeat transactions in the holdout (C, D], per customer of the calibration."""
    import numpy as np

    if rfm.num_rows == 0:
        return {"not_measured": "no customer in the holdout summary"}
    X = matrix(rfm)
    predicted = model.detail(X)["expected_transactions"]
    actual = rfm["frequency_holdout"].to_numpy(zero_copy_only=False).astype(float)
    corr = float(np.corrcoef(predicted, actual)[0, 1]) if predicted.std() > 0 and actual.std() > 0 else None
    active = actual > 0
    p_alive = model.bg.p_alive(X[:, 0], X[:, 1], X[:, 2]) if model.bg is not None else predicted
    return {"customers": int(rfm.num_rows), "holdout_weeks": round(model.horizon, 4),
            "predicted_transactions": round(float(predicted.sum()), 4),
            "observed_transactions": int(actual.sum()),
            "mean_absolute_error": round(float(np.abs(predicted - actual).mean()), 6),
            "correlation": None if corr is None else round(corr, 6),
            "mean_p_alive": round(float(p_alive.mean()), 6),
            "share_transacting_in_holdout": round(float(active.mean()), 6)}


def fit(lake: Lake, spec: ModelSpec, as_of: dt.date) -> tuple[ClvShelfModel, dict[str, Any]]:
    """Fitted on the transactions up to C = as_of - horizon (nothing later read), validated on (C, as_of]."""
    import hashlib

    cutoff = as_of - dt.timedelta(days=spec.clv.horizon_days)
    calibration, batches = summary(lake, spec, cutoff)
    window = {"calibration_end": cutoff.isoformat()}
    model = ClvShelfModel(spec).fit_summary(calibration, window)
    try:
        holdout, _ = summary(lake, spec, as_of, calibration_end=cutoff)
        validation = validate(model, holdout)
    except ValueError as exc:   # a holdout with no spread, an empty window: said, not fatal
        validation = {"not_measured": str(exc)}
    data_hash = hashlib.sha256(json.dumps([model.bg.data_hash, model.gg.data_hash]).encode()).hexdigest()[:16]
    what = "customer-initiated debits" + (f" of types {', '.join(spec.clv.txn_types)}" if spec.clv.txn_types else "")
    return model, {
        "as_of": as_of.isoformat(), "kind": spec.kind,
        "label": f"{what}: expected count, P(alive), spend and discounted value over {spec.clv.horizon_days} days",
        "features": list(RFM), "seed": spec.seed, "data_hash": data_hash,
        "training_window": {"calibration_end": cutoff.isoformat(), "batches_read": batches,
                            "holdout_until": as_of.isoformat()},
        "training_rows": int(calibration.num_rows),
        "training_positives": int(sum(1 for f in calibration["frequency"].to_pylist() if f > 0)),
        "parameters": {"bg_nbd": model.bg.params, "gamma_gamma": model.gg.params},
        "validation": validation,
    }


def detail_schema() -> pa.Schema:
    """Columns of ``lake/scores/as_of=D/clv.parquet``: a CLV model's per-customer figures."""
    import pyarrow as pa

    return pa.schema([("customer_id", pa.string()), ("model", pa.string()), ("version", pa.string()),
                      *((c, pa.float64()) for c in RFM if c != "frequency"), ("frequency", pa.int64()),
                      *((c, pa.float64()) for c in DETAIL)])


class ClvScorer:
    """A CLV model version as a function over Arrow batches of the RFM summary (shippable to Spark executors):
    yields the scores file's columns (score = clv, no reasons) followed by the CLV detail columns."""

    def __init__(self, model: ClvShelfModel, version: str, schema: pa.Schema):
        self.version, self.schema = version, schema
        self.spec = model.spec.model_dump(mode="json")
        self.body = json.dumps(model.to_json(), sort_keys=True)
        self._model: ClvShelfModel | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_model": None}

    def model(self) -> ClvShelfModel:
        """The rebuilt model (built on first use in each process)."""
        if self._model is None:
            self._model = ClvShelfModel.from_json(ModelSpec.model_validate(self.spec), json.loads(self.body))
        return self._model

    def columns(self) -> list[str]:
        """The summary columns it reads."""
        return ["customer_id", *RFM]

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        for batch in batches:
            if not batch.num_rows:
                continue
            t = pa.Table.from_batches([batch])
            n = t.num_rows
            found = self.model().detail(matrix(t))
            none = pa.nulls(n, pa.string())
            cols: dict[str, Any] = {"customer_id": t["customer_id"], "model": [self.spec["name"]] * n,
                                    "version": [self.version] * n, "score": found["clv"]}
            for name in self.schema.names:
                if name in cols:
                    continue
                if name in RFM:
                    cols[name] = t[name]
                elif name in DETAIL:
                    cols[name] = found[name]
                else:
                    cols[name] = none   # reason codes: none for CLV
            yield from pa.table(cols).cast(self.schema).to_batches()
