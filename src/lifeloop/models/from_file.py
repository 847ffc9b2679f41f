"""Bring your own table (自带数据建模): train and evaluate a yes/no model on any CSV or Parquet file.

``lifeloop models fit --from-file FILE --target COL [--exclude COL ...] [--time-column COL]``

* **Columns.** Every column but the target, the excluded ones and the time column is an input.
  Numbers and booleans are used as they are; dates become days since 1970-01-01; text columns are
  categories (scikit-learn's native categorical splits; beyond 250 categories the rarest share one
  "other" category). Missing values need no filling: the trees learn where they go. A text column with
  a different value on every row (an id) cannot generalise and is left out, and the report says so.
* **Target.** Two distinct values: booleans (true = positive), 0/1, or any two values with
  ``--positive VALUE`` naming the positive one. Rows without a target are left out and counted.
* **Split.** With ``--time-column`` the latest 30% of rows by time are the test set (out of time, as a
  model would be used); otherwise a stratified random 30% (seeded).
* **Report.** AUC and PR-AUC with 95% bootstrap intervals (:mod:`lifeloop.models.metrics`) and a lift
  table by decile of score on the test set.

Nothing is saved: this answers "is there signal in this table, and how much", before a model is declared.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifeloop.errors import DataError
from lifeloop.models import metrics
from lifeloop.models.metrics import lift_table

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

TEST_SHARE = 0.3
MAX_CATEGORIES = 250


def read_table(path: Path) -> pa.Table:
    """A CSV or Parquet file as an Arrow table (a DataError naming the file otherwise)."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    if not path.exists():
        raise DataError(f"{path}: no such file", hint="give the path of a CSV or Parquet file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pq.read_table(path)
        if suffix in (".csv", ".txt"):
            return pcsv.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types; the message says what went wrong
        raise DataError(f"{path}: cannot read it: {str(exc).splitlines()[0]}",
                        hint="a CSV needs one header line and UTF-8 text") from None
    raise DataError(f"{path}: unknown file type {suffix!r}", hint="use a .csv or .parquet file")


def _column(table: pa.Table, name: str, role: str, path: Path) -> None:
    if name not in table.column_names:
        close = difflib.get_close_matches(name, table.column_names, n=1)
        raise DataError(f"{path}: no column {name!r} ({role})" + (f"; did you mean {close[0]!r}?" if close else ""),
                        hint="columns: " + ", ".join(table.column_names[:40]))


def target_vector(col: pa.ChunkedArray, positive: str | None, name: str, path: Path) -> tuple[np.ndarray,
                                                                                                np.ndarray]:
    """(keep, y): rows with a target, and their 0/1 label."""
    import numpy as np
    import pyarrow as pa

    values = col.to_pylist()
    keep = np.asarray([v is not None for v in values])
    seen = sorted({str(v) for v in values if v is not None})
    if len(seen) != 2:
        raise DataError(f"{path}: the target {name!r} has {len(seen)} distinct value(s) "
                        f"({', '.join(seen[:5])}{' ...' if len(seen) > 5 else ''}); a yes/no target needs two",
                        hint="pick a yes/no column, or derive one first (e.g. churned = 1 / 0)")
    if positive is None:
        if pa.types.is_boolean(col.type):
            positive = "True"
        elif set(seen) == {"0", "1"}:
            positive = "1"
        else:
            raise DataError(f"{path}: which value of {name!r} is the positive one: {seen[0]!r} or {seen[1]!r}?",
                            hint=f"say it with --positive {seen[1]}")
    if positive not in seen:
        raise DataError(f"{path}: --positive {positive!r} is not a value of {name!r}",
                        hint=f"its values: {', '.join(seen)}")
    y = np.asarray([str(v) == positive for v in values], np.int8)
    return keep, y


def design(table: pa.Table, columns: list[str]) -> tuple[np.ndarray, list[bool], list[str], dict[str, str]]:
    """(X, categorical mask, used columns, left-out columns with why): numbers, dates as days, text as codes."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    cols, cats, used, dropped = [], [], [], {}
    n = table.num_rows
    for name in columns:
        col = table[name]
        t = col.type
        if pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
            x = pc.cast(pc.cast(col, pa.int8()) if pa.types.is_boolean(t) else col, pa.float64())
            cols.append(x.to_numpy(zero_copy_only=False).astype(float))
            cats.append(False)
        elif pa.types.is_date(t) or pa.types.is_timestamp(t):
            days = pc.cast(pc.cast(col, pa.date32()), pa.int32())
            cols.append(pc.cast(days, pa.float64()).to_numpy(zero_copy_only=False).astype(float))
            cats.append(False)
        elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
            text = [None if v is None else str(v) for v in col.to_pylist()]
            distinct = {v for v in text if v is not None}
            if n > 20 and len(distinct) == sum(v is not None for v in text):
                dropped[name] = "a different value on every row (an id?)"
                continue
            counts: dict[str, int] = {}
            for v in text:
                if v is not None:
                    counts[v] = counts.get(v, 0) + 1
            kept = sorted(counts, key=lambda v: (-counts[v], v))[:MAX_CATEGORIES - 1]
            code = {v: float(i) for i, v in enumerate(kept)}
            other = float(len(kept))
            cols.append(np.asarray([np.nan if v is None else code.get(v, other) for v in text], float))
            cats.append(True)
        else:
            dropped[name] = f"type {t} is not used"
            continue
        used.append(name)
    X = np.column_stack(cols) if cols else np.zeros((n, 0))
    return X, cats, used, dropped


def fit_from_file(path: str | Path, target: str, exclude: tuple[str, ...] = (), time_column: str | None = None,
                  positive: str | None = None, seed: int = 7, threads: int | None = None) -> dict[str, Any]:
    """Train on the first 70% (by time, or at random), evaluate on the rest; the report as a dict."""
    import numpy as np
    import pyarrow.compute as pc
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import train_test_split
    from threadpoolctl import threadpool_limits

    path = Path(path)
    table = read_table(path)
    _column(table, target, "--target", path)
    for c in exclude:
        _column(table, c, "--exclude", path)
    if time_column:
        _column(table, time_column, "--time-column", path)
    keep, y = target_vector(table[target], positive, target, path)
    missing_target = int((~keep).sum())
    table = table.filter(keep)
    y = y[keep]
    inputs = [c for c in table.column_names if c not in {target, time_column, *exclude}]
    X, cats, used, dropped = design(table, inputs)
    if not used:
        raise DataError(f"{path}: no input column left to learn from", hint="exclude fewer columns")
    if time_column:
        order = np.asarray(pc.sort_indices(table, [(time_column, "ascending")]))
        cut = int(len(order) * (1 - TEST_SHARE))
        train, test = order[:cut], order[cut:]
        split = f"out of time: the latest {TEST_SHARE:.0%} of rows by {time_column}"
    else:
        train, test = train_test_split(np.arange(len(y)), test_size=TEST_SHARE, random_state=seed, stratify=y)
        split = f"a stratified random {TEST_SHARE:.0%} of rows (seed {seed})"
    for part, who in ((train, "training"), (test, "test")):
        if len(np.unique(y[part])) < 2:
            raise DataError(f"{path}: every {who} row has the same target", hint="use a longer or more varied table")
    model = HistGradientBoostingClassifier(categorical_features=np.asarray(cats, bool) if any(cats) else None,
                                           max_iter=200, learning_rate=0.05, max_depth=4, min_samples_leaf=20,
                                           l2_regularization=1.0, early_stopping=False, random_state=seed)
    with threadpool_limits(limits=threads, user_api="openmp"):
        model.fit(X[train], y[train])
        score = model.predict_proba(X[test])[:, 1]
    return {"file": str(path), "target": target, "positive_rate": float(y.mean()), "rows": int(len(y)),
            "rows_without_target": missing_target, "inputs": used, "categorical": [c for c, k in zip(used, cats,
                                                                                                     strict=True) if k],
            "left_out": dropped, "split": split, "train_rows": int(len(train)), "test_rows": int(len(test)),
            "metrics": metrics.evaluate(y[test], score, seed=seed), "lift": lift_table(y[test], score),
            "test_scores": score, "test_labels": y[test]}
