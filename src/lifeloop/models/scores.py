"""The ``scores`` step (模型评分): one row per customer per active model as of D, with reasons.

Each active model (its promoted version, see :mod:`lifeloop.models.registry`) scores the day's feature
snapshot: the calibrated probability, the decile (1 = the highest tenth), and the top-3 reason codes with
a banker's words in Chinese and English. A response model's score is the probability of converting if
contacted, an uplift model's the predicted uplift (a difference of probabilities, possibly negative);
they have no reason codes. A CLV model (``kind: clv``) scores the RFM summary of the bank's transactions as
of D rather than the features: score = CLV, no reason codes, and its expected transactions, P(alive), expected
spend and CLV per customer go to ``clv.parquet`` in the same snapshot (:mod:`lifeloop.models.clv.shelf`).
Without an active model the step publishes an empty table and
says so, so that a fresh workspace still runs its day. Scoring is plain numpy over Arrow batches, each row
on its own, run by the engine (:meth:`~lifeloop.engine.adapters.base.Adapter.map_arrow`: in process on
DuckDB, ``mapInArrow`` on Spark's executors); deciles are ranked on the driver over every row and the
file is written by pyarrow, so both engines publish the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from lifeloop.config.shelf import ModelsConfig, ModelSpec, ReasonWords
from lifeloop.contract import Inputs, Output, Read, Snapshot, Step, Table
from lifeloop.errors import DataError
from lifeloop.models import catalogue, labels, reasons, registry
from lifeloop.models.clv import shelf
from lifeloop.models.contract import Model

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

AREA = "scores"
SHADOW = "shadow"     # lake/scores/as_of=D/shadow.parquet: challengers' (and displaced champions') scores no rule reads
CLV = "clv"           # lake/scores/as_of=D/clv.parquet: CLV models' per-customer figures (see models/clv/shelf.py)
TOP = 3


def output_schema() -> pa.Schema:
    """Columns of ``lake/scores/as_of=D/scores.parquet``."""
    import pyarrow as pa

    return pa.schema([("customer_id", pa.string()), ("model", pa.string()), ("version", pa.string()),
                      ("score", pa.float64()), ("decile", pa.int8()),
                      *((f"reason_{i}", pa.string()) for i in range(1, TOP + 1)),
                      ("reasons_zh", pa.string()), ("reasons_en", pa.string())])


def row_schema() -> pa.Schema:
    """The columns a scorer yields per batch: every output column but the decile (a ranking over everyone)."""
    schema = output_schema()
    return schema.remove(schema.get_field_index("decile"))


def deciles(score: np.ndarray) -> np.ndarray:
    """1 for the highest tenth of scores ... 10 for the lowest (ties by position, input sorted by customer)."""
    import numpy as np

    order = np.argsort(-score, kind="stable")
    rank = np.empty(len(score), int)
    rank[order] = np.arange(len(score))
    return (rank * 10 // max(len(score), 1) + 1).astype(np.int8)


def score_rows(model: Any, version: str, features: pa.Table, words: dict[str, Any]) -> pa.Table:
    """One model's scores and reasons, row by row (each row depends on its own features only), in input order."""
    import numpy as np
    import pyarrow as pa

    labels.check_features(features.schema.names, model.spec.features, "the features snapshot")
    X = labels.matrix(features, model.spec.features)
    n = features.num_rows
    fixed = {"customer_id": features["customer_id"], "model": [model.spec.name] * n, "version": [version] * n}
    explains = model.output == "log_odds" and type(model).contributions is not Model.contributions
    if not explains:   # response, uplift (a difference of probabilities), a plug-in without contributions
        return pa.table({**fixed, "score": model.predict(X), **{f"reason_{i}": [None] * n for i in range(1, TOP + 1)},
                         "reasons_zh": [None] * n, "reasons_en": [None] * n}).cast(row_schema())
    base, contrib = model.contributions(X)
    score = 1.0 / (1.0 + np.exp(-(base + contrib.sum(axis=1))))
    codes = model.reason_codes(X)
    top = reasons.top_reasons(contrib, TOP)
    cols: dict[str, list[Any]] = {f"reason_{i}": [] for i in range(1, TOP + 1)}
    zh, en = [], []
    names = model.spec.features
    said: dict[str, tuple[str, str]] = {}     # a code's words, worked out once (a few hundred codes, 20,000+ rows)

    def text(j: int, code: str) -> tuple[str, str]:
        if code not in said:
            said[code] = reasons.words(names[j], model.bin_text(names[j], int(code.rsplit(":", 1)[1])), words)
        return said[code]

    for i, picked in enumerate(top):
        texts = [text(j, codes[i][j]) for j in picked]
        for k in range(TOP):
            cols[f"reason_{k + 1}"].append(codes[i][picked[k]] if k < len(picked) else None)
        zh.append("；".join(t[0] for t in texts) or None)
        en.append("; ".join(t[1] for t in texts) or None)
    return pa.table({**fixed, "score": score, **cols, "reasons_zh": zh, "reasons_en": en}).cast(row_schema())


def with_deciles(rows: pa.Table) -> pa.Table:
    """One model version's rows sorted by customer id, with the decile of each score among them all."""
    import pyarrow as pa

    rows = rows.sort_by("customer_id")
    decile = pa.array(deciles(rows["score"].to_numpy()), pa.int8())
    return rows.add_column(rows.schema.get_field_index("score") + 1, "decile", decile).cast(output_schema())


def score_table(model: Any, version: str, features: pa.Table, words: dict[str, Any]) -> pa.Table:
    """One model's scores, deciles and reasons over a feature table (sorted by customer id)."""
    return with_deciles(score_rows(model, version, features, words))


class Scorer:
    """A fitted model version as a function over Arrow batches, shippable to Spark executors.

    It carries the artefact as JSON (never a pickled estimator) and rebuilds the model once per process,
    on DuckDB and Spark alike, so both engines score with the same code from the same numbers."""

    def __init__(self, model: Any, version: str, words: dict[str, Any]):
        self.estimator, self.version = model.estimator, version
        self.spec = model.spec.model_dump(mode="json")
        self.body = json.dumps(model.to_json(), sort_keys=True)
        self.words = {k: (v.model_dump(mode="json") if hasattr(v, "model_dump") else v) for k, v in words.items()}
        self._model: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_model": None}

    def model(self) -> Any:
        """The rebuilt model (built on first use in each process)."""
        if self._model is None:
            cls = catalogue.estimators()[self.estimator]
            self._model = cls.from_json(ModelSpec.model_validate(self.spec), json.loads(self.body))
        return self._model

    def columns(self) -> list[str]:
        """The feature columns it reads."""
        return ["customer_id", *self.spec["features"]]

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        words = {k: ReasonWords.model_validate(v) for k, v in self.words.items()}
        for batch in batches:
            if batch.num_rows:
                yield from score_rows(self.model(), self.version, pa.Table.from_batches([batch]), words).to_batches()


def clv_schema() -> pa.Schema:
    """What a CLV scorer yields per batch: the scores file's columns (but the decile), then the CLV detail's."""
    import pyarrow as pa

    rows = row_schema()
    return pa.schema([*rows, *(f for f in shelf.detail_schema() if f.name not in rows.names)])


def score_clv(inputs: Inputs, model: Any, version: str) -> tuple[pa.Table, pa.Table, dict[str, Any]]:
    """A CLV version's scores (score = CLV, with deciles, no reasons) and its per-customer detail
    (:func:`shelf.detail_schema`): the RFM summary of the bank's transactions as of D, summarised on the driver,
    scored row by row on the run's engine."""
    import pyarrow.parquet as pq

    rfm, batches = shelf.summary(inputs.lake, model.spec, inputs.as_of)
    scorer = shelf.ClvScorer(model, version, clv_schema())
    with inputs.scratch() as folder:
        pq.write_table(rfm.select(scorer.columns()), folder / "rfm.parquet")
        rows = inputs.engine.map_arrow([folder / "rfm.parquet"], scorer.columns(), scorer, clv_schema())
    detail = rows.select(shelf.detail_schema().names).cast(shelf.detail_schema()).sort_by("customer_id")
    return with_deciles(rows.select(row_schema().names)), detail, {"transactions_batches": batches,
                                                                  "customers": rows.num_rows}


def score_version(inputs: Inputs, features: Snapshot, name: str, version: str,
                  words: dict[str, Any]) -> tuple[pa.Table, dict[str, Any], pa.Table | None]:
    """Every customer's score by one version (with deciles), on the run's engine, its artefact hash, and for a
    CLV model its per-customer detail (None otherwise)."""
    model, manifest = registry.load(inputs.lake, name, version)
    about = {"version": version, "artefact_sha256": manifest["artefact_sha256"]}
    if model.output == "clv":
        table, detail, read = score_clv(inputs, model, version)
        return table, {**about, **read}, detail
    labels.check_features(features.schema().names, model.spec.features, "the features snapshot")
    scorer = Scorer(model, version, words)
    rows = inputs.engine.map_arrow([features.file], scorer.columns(), scorer, row_schema())
    return with_deciles(rows), about, None


def split(name: str, champion: pa.Table, challenger: pa.Table, share: float) -> tuple[pa.Table, pa.Table]:
    """(the rows the rules see, the rows kept in shadow): the challenger's score for the customers its share
    takes (:func:`registry.takes_challenger`), the champion's for the others; both tables by customer id."""
    import pyarrow as pa
    import pyarrow.compute as pc

    take = pa.array(registry.takes_challenger(name, champion["customer_id"].to_pylist(), share), pa.bool_())
    if not pc.all(pc.equal(champion["customer_id"], challenger["customer_id"])).as_py():
        raise DataError(f"model {name}: champion and challenger scored different customers")
    seen = pa.concat_tables([challenger.filter(take), champion.filter(pc.invert(take))])
    kept = pa.concat_tables([challenger.filter(pc.invert(take)), champion.filter(take)])
    return seen, kept


def compute(inputs: Inputs) -> Output:
    """Scores of every active model over the day's features (an empty table, with a warning, if none); a
    challenger's scores go to the rules for its share of customers and to ``shadow.parquet`` otherwise."""
    import pyarrow as pa

    config = inputs.configs["models"][0] if "models" in inputs.configs else ModelsConfig()
    active = registry.active(inputs.lake)
    if not active:
        return Output(tables=[Table(AREA, output_schema().empty_table(), ("model", "customer_id"), output_schema())],
                      manifest={"models": {}}, summary={"models": {}},
                      warnings=["no active model: the scores table is empty (fit one with `lifeloop models fit "
                                "churn --as-of DATE`, then `lifeloop models promote churn VERSION --reason ...`)"])
    features = inputs.snapshot("features")
    tables, shadow, details, used = [], [], [], {}
    for name, version in sorted(active.items()):
        table, used[name], detail = score_version(inputs, features, name, version, config.reasons)
        details += [detail] if detail is not None else []
        found = registry.challenger(inputs.lake, name)
        if found is not None:
            other, about, detail = score_version(inputs, features, name, found["version"], config.reasons)
            details += [detail] if detail is not None else []
            table, kept = split(name, table, other, found["share"])
            shadow.append(kept)
            taken = int(pa.compute.sum(pa.compute.equal(table["version"], found["version"])).as_py() or 0)
            used[name]["challenger"] = {**about, "share": found["share"], "customers": taken,
                                        "mode": "shadow" if found["share"] == 0 else "traffic"}
        tables.append(table)
    out = [Table(AREA, pa.concat_tables(tables), ("model", "customer_id"), output_schema())]
    if shadow:
        out.append(Table(SHADOW, pa.concat_tables(shadow), ("model", "customer_id", "version"), output_schema()))
    if details:   # CLV models: expected transactions, P(alive), expected spend and CLV per customer
        out.append(Table(CLV, pa.concat_tables(details), ("model", "customer_id", "version"), shelf.detail_schema()))
    summary = {n: u["version"] + (f" (challenger {u['challenger']['version']}, share {u['challenger']['share']:g})"
                                  if "challenger" in u else "") for n, u in used.items()}
    return Output(tables=out, manifest={"models": used}, summary={"models": summary})


STEP = Step(AREA, compute, reads=(Read("features"),), configs={"models": ModelsConfig}, writes=AREA,
            doc="scores (模型评分): each active model's score, decile and top-3 reasons per customer")
