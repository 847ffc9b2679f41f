"""The ``scores`` step (模型评分): one row per customer per active model as of D, with reasons.

Each active model (its promoted version, see :mod:`lifeloop.models.registry`) scores the day's feature
snapshot: the calibrated probability, the decile (1 = the highest tenth), and the top-3 reason codes with
a banker's words in Chinese and English. A response model's score is the probability of converting if
contacted, an uplift model's the predicted uplift (a difference of probabilities, possibly negative);
they have no reason codes. Without an active model the step publishes an empty table and
says so, so that a fresh workspace still runs its day. Scoring is plain numpy over Arrow, so its bytes
do not depend on the engine (this increment runs it on any engine in-process; Spark's ``mapInArrow``
for very large banks is a later step).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lifeloop.contract import Inputs, Output, Read, Step, Table
from lifeloop.models import labels, reasons, registry
from lifeloop.models.contract import Model, ModelsConfig

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

AREA = "scores"
TOP = 3


def output_schema() -> pa.Schema:
    """Columns of ``lake/scores/as_of=D/scores.parquet``."""
    import pyarrow as pa

    return pa.schema([("customer_id", pa.string()), ("model", pa.string()), ("version", pa.string()),
                      ("score", pa.float64()), ("decile", pa.int8()),
                      *((f"reason_{i}", pa.string()) for i in range(1, TOP + 1)),
                      ("reasons_zh", pa.string()), ("reasons_en", pa.string())])


def deciles(score: np.ndarray) -> np.ndarray:
    """1 for the highest tenth of scores ... 10 for the lowest (ties by position, input sorted by customer)."""
    import numpy as np

    order = np.argsort(-score, kind="stable")
    rank = np.empty(len(score), int)
    rank[order] = np.arange(len(score))
    return (rank * 10 // max(len(score), 1) + 1).astype(np.int8)


def score_table(model: Any, version: str, features: pa.Table, words: dict[str, Any]) -> pa.Table:
    """One model's scores, deciles and reasons over a feature table (sorted by customer id)."""
    import numpy as np
    import pyarrow as pa

    features = features.sort_by("customer_id")
    labels.check_features(features.schema.names, model.spec.features, "the features snapshot")
    X = labels.matrix(features, model.spec.features)
    n = features.num_rows
    explains = model.output == "log_odds" and type(model).contributions is not Model.contributions
    if not explains:   # response, uplift (a difference of probabilities), a plug-in without contributions
        score = model.predict(X)
        return pa.table({"customer_id": features["customer_id"], "model": [model.spec.name] * n,
                         "version": [version] * n, "score": score, "decile": deciles(score),
                         **{f"reason_{i}": [None] * n for i in range(1, TOP + 1)},
                         "reasons_zh": [None] * n, "reasons_en": [None] * n}).cast(output_schema())
    base, contrib = model.contributions(X)
    score = 1.0 / (1.0 + np.exp(-(base + contrib.sum(axis=1))))
    codes = model.reason_codes(X)
    top = reasons.top_reasons(contrib, TOP)
    cols: dict[str, list[Any]] = {f"reason_{i}": [] for i in range(1, TOP + 1)}
    zh, en = [], []
    names = model.spec.features
    for i, picked in enumerate(top):
        texts = [reasons.words(names[j], model.bin_text(names[j], int(codes[i][j].rsplit(":", 1)[1])), words)
                 for j in picked]
        for k in range(TOP):
            cols[f"reason_{k + 1}"].append(codes[i][picked[k]] if k < len(picked) else None)
        zh.append("；".join(t[0] for t in texts) or None)
        en.append("; ".join(t[1] for t in texts) or None)
    return pa.table({"customer_id": features["customer_id"], "model": [model.spec.name] * n,
                     "version": [version] * n, "score": score, "decile": deciles(score), **cols,
                     "reasons_zh": zh, "reasons_en": en}).cast(output_schema())


def compute(inputs: Inputs) -> Output:
    """Scores of every active model over the day's features (an empty table, with a warning, if none)."""
    import pyarrow as pa

    config = inputs.configs["models"][0] if "models" in inputs.configs else ModelsConfig()
    active = registry.active(inputs.lake)
    if not active:
        return Output(tables=[Table(AREA, output_schema().empty_table(), ("model", "customer_id"), output_schema())],
                      manifest={"models": {}}, summary={"models": {}},
                      warnings=["no active model: the scores table is empty (fit one with `lifeloop models fit "
                                "churn --as-of DATE`, then `lifeloop models promote churn VERSION --reason ...`)"])
    features = inputs.snapshot("features").read()
    tables, used = [], {}
    for name, version in sorted(active.items()):
        model, manifest = registry.load(inputs.lake, name, version)
        tables.append(score_table(model, version, features, config.reasons))
        used[name] = {"version": version, "artefact_sha256": manifest["artefact_sha256"]}
    table = pa.concat_tables(tables)
    return Output(tables=[Table(AREA, table, ("model", "customer_id"), output_schema())],
                  manifest={"models": used}, summary={"models": {n: u["version"] for n, u in used.items()}})


STEP = Step(AREA, compute, reads=(Read("features"),), configs={"models": ModelsConfig}, writes=AREA,
            doc="scores (模型评分): each active model's score, decile and top-3 reasons per customer")
