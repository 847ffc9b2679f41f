"""Evaluate a campaign run outside Lifeloop from a file: one row per customer, its arm and its outcomes.

The file is CSV (read as text, like every extract) or Parquet. Everything wrong with it is reported
at once, located: the file, the column, the 1-based data row (header not counted).
"""

from __future__ import annotations

import difflib
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lifeloop.data.readers import CsvFormat, is_parquet, read_csv, read_parquet
from lifeloop.errors import Problem, ValidationError
from lifeloop.review.evaluation import ALPHA, Evaluation, evaluate

if TYPE_CHECKING:
    import pyarrow as pa

MIN_PER_ARM = 30  # below this a rate or a mean is too noisy for an interval anyone should act on
MAX_PROBLEMS = 20
_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(,\d{3})+(\.\d+)?$")
_TRUE = {"true", "t", "yes", "y"}
_FALSE = {"false", "f", "no", "n"}


def evaluate_file(path: str | Path, *, arm: str, control: str, outcomes: Sequence[str], money: Sequence[str] = (),
                  pre: str | None = None, cost_per_contact: float | None = None, holdout: float | None = None,
                  min_per_arm: int = MIN_PER_ARM, alpha: float = ALPHA, encoding: str = "utf-8") -> Evaluation:
    """Read, validate and evaluate a results file (``lifeloop evaluate --from-file``)."""
    path = Path(path)
    table = read_results(path, encoding)
    return evaluate_table(table, file=path.name, arm=arm, control=control, outcomes=outcomes, money=money,
                          pre=pre, cost_per_contact=cost_per_contact, holdout=holdout, min_per_arm=min_per_arm,
                          alpha=alpha)


def read_results(path: Path, encoding: str = "utf-8") -> pa.Table:
    """A results file as an Arrow table (CSV in ``encoding`` as text columns, Parquet as stored)."""

    if not path.is_file():
        raise ValidationError(f"{path}: file not found", problems=[Problem("file not found", file=str(path))],
                              hint="pass a CSV or Parquet file with one row per customer")
    if is_parquet(path):
        return read_parquet(path)
    with tempfile.TemporaryDirectory(prefix="lifeloop-evaluate-") as tmp:
        return read_csv(path, CsvFormat(encoding=encoding), tmpdir=Path(tmp), set_encoding="pass --encoding {}")


def evaluate_table(table: pa.Table, *, file: str, arm: str, control: str, outcomes: Sequence[str],
                   money: Sequence[str] = (), pre: str | None = None, cost_per_contact: float | None = None,
                   holdout: float | None = None, min_per_arm: int = MIN_PER_ARM, alpha: float = ALPHA) -> Evaluation:
    """Validate a results table (columns, numbers, arms, sizes) and evaluate it."""
    outcome_names = list(dict.fromkeys([*outcomes, *money]))
    if not outcome_names:
        raise ValidationError("nothing to evaluate: no outcome column given",
                              hint="name at least one outcome: --outcome converted (0/1) or --money aum_change")
    _check_options(file, cost_per_contact, holdout)
    _check_columns(table, file, [arm, *outcome_names, *([pre] if pre else [])])
    arms, problems, total = _arm_values(table, arm, file)
    columns: dict[str, np.ndarray] = {}
    for name in [*outcome_names, *([pre] if pre else [])]:
        values, bad, n_bad = _numbers(table, name, file)
        columns[name] = values
        problems += bad
        total += n_bad
    if problems:
        raise ValidationError(f"{file}: {total:,} value(s) cannot be evaluated", problems=problems[:MAX_PROBLEMS],
                              total=total, hint="outcomes and the pre-period column must be numbers (0/1 for "
                                                "conversions) on every row; every row needs its arm")
    _check_arms(arms, control, arm, file, min_per_arm)
    return evaluate(arms, {n: columns[n] for n in outcome_names}, control=control, money=list(money),
                    pre=columns[pre] if pre else None, pre_name=pre or "pre", cost_per_contact=cost_per_contact,
                    holdout=holdout, alpha=alpha)


def _check_options(file: str, cost_per_contact: float | None, holdout: float | None) -> None:
    if holdout is not None and not 0 < holdout < 1:
        raise ValidationError(f"--holdout {holdout} is not a share between 0 and 1",
                              hint="give the planned control share, e.g. --holdout 0.1 for a 10% holdout")
    if cost_per_contact is not None and cost_per_contact < 0:
        raise ValidationError(f"--cost-per-contact {cost_per_contact} is negative",
                              hint="give the channel's cost of one contact, e.g. 0.05 for an SMS")


def _check_columns(table: pa.Table, file: str, wanted: list[str]) -> None:
    present = table.column_names
    missing = [c for c in dict.fromkeys(wanted) if c not in present]
    if missing:
        problems = []
        for c in missing:
            close = difflib.get_close_matches(c, present, n=1)
            problems.append(Problem("column not found" + (f" (did you mean {close[0]!r}?)" if close else ""),
                                    file=file, column=c))
        raise ValidationError(f"{file}: {len(missing)} column(s) missing: {', '.join(missing)}", problems=problems,
                              hint=f"the file has: {', '.join(present)}")


def _arm_values(table: pa.Table, column: str, file: str) -> tuple[np.ndarray, list[Problem], int]:
    import pyarrow as pa
    import pyarrow.compute as pc

    col = pc.utf8_trim_whitespace(pc.cast(table[column], pa.string())).fill_null("")
    values = col.to_numpy(zero_copy_only=False).astype(str)
    empty = np.flatnonzero(values == "").tolist()
    problems = [Problem("no arm", file=file, row=i + 1, column=column) for i in empty[:MAX_PROBLEMS]]
    return values, problems, len(empty)


def _numbers(table: pa.Table, column: str, file: str) -> tuple[np.ndarray, list[Problem], int]:
    """A column as float64; the rows that are empty or not numbers, located."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = table[column]
    t = col.type
    if pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        values = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
        bad_rows = np.flatnonzero(~np.isfinite(values)).tolist()  # nulls (and stored NaN/inf) have no outcome
        problems = [Problem("empty value" if np.isnan(values[i]) else f"{values[i]} is not a number", file=file,
                            row=i + 1, column=column) for i in bad_rows[:MAX_PROBLEMS]]
        return values, problems, len(bad_rows)
    try:  # the common case, all plain numbers: one vectorised cast; anything else is read value by value
        values = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
        if np.isfinite(values).all():
            return values, [], 0
    except pa.ArrowInvalid:
        pass
    out = np.empty(len(col), dtype=float)
    problems: list[Problem] = []
    n_bad = 0
    for i, raw in enumerate(col.to_pylist()):
        value = _number(raw)
        if value is None:
            n_bad += 1
            if len(problems) < MAX_PROBLEMS:
                text = "empty value" if raw is None or str(raw).strip() == "" else f"{raw!r} is not a number"
                problems.append(Problem(text, file=file, row=i + 1, column=column))
            value = np.nan
        out[i] = value
    return out, problems, n_bad


def _number(raw: object) -> float | None:
    if raw is None:
        return None
    text = raw.strip() if isinstance(raw, str) else raw
    if isinstance(text, str) and _THOUSANDS.match(text):
        text = text.replace(",", "")  # 1,234.50 as exported by a spreadsheet; 1,5 stays an error, not 15
    if isinstance(text, str):
        low = text.lower()
        if low in _TRUE:
            return 1.0
        if low in _FALSE:
            return 0.0
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None


def _check_arms(arms: np.ndarray, control: str, column: str, file: str, min_per_arm: int) -> None:
    names, counts = np.unique(arms.astype(str), return_counts=True)
    sizes = dict(zip(names.tolist(), counts.tolist(), strict=False))
    if control not in sizes:
        close = difflib.get_close_matches(control, list(sizes), n=1)
        raise ValidationError(
            f"{file}: the control value {control!r} does not occur in column {column}",
            problems=[Problem(f"arms found: {', '.join(f'{a} ({n:,})' for a, n in sizes.items())}"
                              + (f"; did you mean {close[0]!r}?" if close else ""), file=file, column=column)],
            hint="pass --control with the exact value that marks the holdout rows")
    if len(sizes) < 2:
        raise ValidationError(f"{file}: every row is in the control group {control!r}; there is no arm to evaluate",
                              problems=[Problem("only one arm", file=file, column=column)],
                              hint="check --arm: it must name the column that tells treated from control")
    small = {a: n for a, n in sizes.items() if n < min_per_arm}
    if small:
        raise ValidationError(
            f"{file}: {len(small)} arm(s) have fewer than {min_per_arm} customers",
            problems=[Problem(f"arm {a!r} has {n:,} customer(s)", file=file, column=column) for a, n in small.items()],
            hint="wait for more customers, merge small arms, or lower the minimum (min_per_arm) knowingly")
