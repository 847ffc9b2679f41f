"""Training examples for response and uplift models: Lifeloop's own treated and control entries.

An example is one entry of ``lake/outcomes`` (a customer entering a strategy that makes the offer, in the
treated arm or held out as control; see :mod:`lifeloop.review.outcomes`) whose evaluation window has
closed (``complete``) by the fit's as-of date D, with the customer's feature row of the newest features
snapshot on or before the entry date — what the plan saw when it chose — and the measured outcome
(``purchased`` by default). Only the outcomes snapshot of D (or the newest before it) is read, and a
complete entry's window ended on or before it, so nothing dated after D is read.

The holdout assigns by a hash of the customer, independent of the features, so treated and control
entries of the same offer form a randomised experiment: what uplift learners need. A customer who
entered twice (two strategies, or again after ``reentry_days``) gives two examples.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lifeloop.config.shelf import ModelSpec
from lifeloop.errors import DataError
from lifeloop.models.labels import check_features, matrix
from lifeloop.store.lake import Lake

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

OUTCOMES, FEATURES = "outcomes", "features"


@dataclass
class Examples:
    """Entries of one offer with their features, outcome and arm, sorted by (entry date, customer)."""

    customer_id: list[str]
    entry_date: np.ndarray       # datetime64[D]
    X: np.ndarray
    y: np.ndarray                # 0/1
    treated: np.ndarray          # bool
    outcomes_as_of: dt.date
    features_dates: tuple[dt.date, ...]
    data_hash: str

    def __len__(self) -> int:
        return len(self.y)

    def take(self, rows: np.ndarray) -> Examples:
        """A subset of the rows (same provenance)."""
        return Examples([self.customer_id[i] for i in rows], self.entry_date[rows], self.X[rows], self.y[rows],
                        self.treated[rows], self.outcomes_as_of, self.features_dates, self.data_hash)

    def describe(self) -> dict[str, Any]:
        """Provenance and counts as manifest fields."""
        dates = self.entry_date
        return {"outcomes_as_of": self.outcomes_as_of.isoformat(),
                "entries_from": str(dates.min()) if len(dates) else None,
                "entries_to": str(dates.max()) if len(dates) else None,
                "entries": int(len(self.y)), "treated": int(self.treated.sum()),
                "control": int((~self.treated).sum()),
                "treated_converted": int(self.y[self.treated].sum()),
                "control_converted": int(self.y[~self.treated].sum())}


def entries_of_offer(outcomes: pa.Table, offer: str, outcome: str) -> pa.Table:
    """Pure: the complete treated and control entries of one offer with a measured outcome."""
    import pyarrow.compute as pc

    if outcome not in outcomes.column_names:
        raise DataError(f"the outcomes table has no column {outcome!r}",
                        hint="measure outcomes with this Lifeloop (`lifeloop run --steps outcomes`)")
    keep = pc.and_(pc.and_(pc.equal(outcomes["offer"], offer), pc.fill_null(outcomes["complete"], False)),
                   pc.and_(pc.is_in(outcomes["arm"], value_set=_arms()), pc.invert(pc.is_null(outcomes[outcome]))))
    return outcomes.filter(keep).select(["customer_id", "entry_date", "arm", outcome]) \
        .sort_by([("entry_date", "ascending"), ("customer_id", "ascending")])


def _arms() -> pa.Array:
    import pyarrow as pa

    return pa.array(["treated", "control"])


def examples(lake: Lake, spec: ModelSpec, as_of: dt.date) -> Examples:
    """The examples of ``spec.offer`` for a fit as of D (a DataError saying what is missing otherwise)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    day = lake.latest_date(OUTCOMES, as_of)
    if day is None:
        raise DataError(f"no outcomes snapshot on or before {as_of}: model {spec.name} learns from measured entries",
                        hint="run strategies that make the offer, with a holdout, and the outcomes step")
    found = entries_of_offer(pq.read_table(lake.snapshot_file(OUTCOMES, day)), spec.offer, spec.outcome)
    if found.num_rows == 0:
        raise DataError(f"no complete entries of offer {spec.offer!r} in the outcomes of {day}",
                        hint="an entry counts once its evaluation window has closed; check the offer's spelling "
                             "(the product id or code the strategies use)")
    h = hashlib.sha256(f"outcomes/{day}:{lake.manifest(OUTCOMES, day)['files'][f'{OUTCOMES}.parquet']}\n".encode())
    parts, used = [], []
    entry_days = sorted(set(found["entry_date"].to_pylist()))
    by_snapshot: dict[dt.date, list[dt.date]] = {}
    for d in entry_days:
        snap = lake.latest_date(FEATURES, d)
        if snap is None:
            raise DataError(f"no features snapshot on or before {d}, when entries of {spec.offer} began",
                            hint=f"backfill the features step to {d}")
        by_snapshot.setdefault(snap, []).append(d)
    for snap, days in sorted(by_snapshot.items()):
        path = lake.snapshot_file(FEATURES, snap)
        feats = pq.read_table(path)
        check_features(feats.schema.names, spec.features, path)
        rows = found.filter(pc.is_in(found["entry_date"], value_set=pa.array(days, pa.date32())))
        parts.append(rows.join(feats.select(["customer_id", *spec.features]), "customer_id", join_type="inner"))
        used.append(snap)
        h.update(f"features/{snap}:{lake.manifest(FEATURES, snap)['files'][f'{FEATURES}.parquet']}\n".encode())
    table = pa.concat_tables(parts).sort_by([("entry_date", "ascending"), ("customer_id", "ascending")])
    y = np.asarray(table[spec.outcome].to_pylist(), bool).astype(np.int8)
    treated = np.asarray([a == "treated" for a in table["arm"].to_pylist()], bool)
    return Examples(table["customer_id"].to_pylist(), table["entry_date"].to_numpy().astype("datetime64[D]"),
                    matrix(table, spec.features), y, treated, day, tuple(used), h.hexdigest()[:16])
