"""Honest labels (诚实标签): features as of T, outcomes over (T, T+H], nothing dated after T+H read.

A training example is a customer's feature row of the snapshot dated T and a 0/1 outcome read from the
bank's own lifecycle snapshots dated in (T, T+H]. :func:`window` picks T for a fit "as of D" so that
T + H <= D: the newest date with both a features and a lifecycle snapshot on or before D - H. Nothing a
fit reads is dated after D, so changing every row dated after D cannot change the model (tested).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifeloop.config.shelf import LabelSpec
from lifeloop.errors import DataError
from lifeloop.store.lake import Lake

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

FEATURES, LIFECYCLE = "features", "lifecycle"


@dataclass(frozen=True)
class Window:
    """One training window: features as of ``start``, outcomes on the lifecycle snapshots ``outcome_dates``."""

    start: dt.date
    end: dt.date                      # start + horizon; the newest date read
    outcome_dates: tuple[dt.date, ...]
    files: tuple[Path, ...]           # features at start, lifecycle at start, lifecycle at each outcome date

    def data_hash(self, lake: Lake) -> str:
        """A hash of every snapshot the window reads (from their manifests' file hashes)."""
        h = hashlib.sha256()
        for area, day in [(FEATURES, self.start), (LIFECYCLE, self.start),
                          *((LIFECYCLE, d) for d in self.outcome_dates)]:
            h.update(f"{area}/{day}:{lake.manifest(area, day)['files'][f'{area}.parquet']}\n".encode())
        return h.hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        """The window as manifest fields."""
        return {"features_as_of": self.start.isoformat(), "outcomes_until": self.end.isoformat(),
                "outcome_snapshots": [d.isoformat() for d in self.outcome_dates]}


def window(lake: Lake, label: LabelSpec, as_of: dt.date) -> Window:
    """The newest honest window ending on or before ``as_of`` (a DataError saying what to backfill otherwise)."""
    cutoff = as_of - dt.timedelta(days=label.horizon_days)
    both = sorted(set(lake.dates(FEATURES)) & set(lake.dates(LIFECYCLE)))
    starts = [d for d in both if d <= cutoff]
    if not starts:
        raise DataError(f"no features and lifecycle snapshots on or before {cutoff} ({as_of} minus the label's "
                        f"{label.horizon_days}-day horizon): there is nothing to train on",
                        hint=f"backfill the insight steps for earlier dates, e.g. `lifeloop backfill` to {cutoff}")
    start = starts[-1]
    end = start + dt.timedelta(days=label.horizon_days)
    outcomes = tuple(d for d in lake.dates(LIFECYCLE) if start < d <= end)
    if not outcomes:
        raise DataError(f"no lifecycle snapshot in ({start}, {end}]: the label {label.describe()!r} cannot be read",
                        hint="run the lifecycle step on dates after the training date (weekly or month-end)")
    files = (lake.snapshot_file(FEATURES, start), lake.snapshot_file(LIFECYCLE, start),
             *(lake.snapshot_file(LIFECYCLE, d) for d in outcomes))
    return Window(start, end, outcomes, files)


def outcomes(stages_at_start: pa.Table, later: list[pa.Table], label: LabelSpec) -> pa.Table:
    """Per eligible customer at T, whether a later snapshot shows one of the label's stages (pure)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    targets = pa.array(label.stages)
    skip = pa.array(label.stages + label.exclude)
    eligible = stages_at_start.filter(pc.invert(pc.is_in(stages_at_start["stage"], value_set=skip)))
    hit: set[str] = set()
    for table in later:
        hit.update(table.filter(pc.is_in(table["stage"], value_set=targets))["customer_id"].to_pylist())
    ids = eligible["customer_id"]
    return pa.table({"customer_id": ids, "label": pc.is_in(ids, value_set=pa.array(sorted(hit), pa.string()))})


def matrix(features: pa.Table, names: tuple[str, ...]) -> np.ndarray:
    """The named feature columns as a float matrix (NaN for missing), in ``names`` order."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    cols = []
    for n in names:
        col = features[n]
        if pa.types.is_boolean(col.type):
            col = pc.cast(col, pa.int8())
        cols.append(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False))
    return np.column_stack(cols) if cols else np.zeros((features.num_rows, 0))


def examples(w: Window, label: LabelSpec, names: tuple[str, ...]) -> tuple[list[str], np.ndarray, np.ndarray,
                                                                          pa.Table]:
    """(customer ids, X, y, stages at T) of one window, sorted by customer id."""
    import numpy as np
    import pyarrow.parquet as pq

    feats = pq.read_table(w.files[0])
    check_features(feats.schema.names, names, w.files[0])
    stages = pq.read_table(w.files[1], columns=["customer_id", "stage"])
    labelled = outcomes(stages, [pq.read_table(f, columns=["customer_id", "stage"]) for f in w.files[2:]], label)
    joined = labelled.join(feats.select(["customer_id", *names]), "customer_id", join_type="inner") \
        .join(stages, "customer_id", join_type="inner").sort_by("customer_id")
    y = joined["label"].to_numpy(zero_copy_only=False).astype(np.int8)
    return joined["customer_id"].to_pylist(), matrix(joined, names), y, joined.select(["customer_id", "stage"])


def check_features(columns: list[str], names: tuple[str, ...], where: Path | str) -> None:
    """Every feature a model declares must be a column of the feature snapshot."""
    import difflib

    missing = [n for n in names if n not in columns]
    if missing:
        close = difflib.get_close_matches(missing[0], columns, n=1)
        raise DataError(f"{where}: the model's feature {missing[0]!r} is not a feature column"
                        + (f"; did you mean {close[0]!r}?" if close else ""),
                        hint="name features of config/tags.yaml in config/models.yaml")
