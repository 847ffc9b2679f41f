"""The shared base of the CLV model families: validated inputs, maximum-likelihood fit, JSON artefact.

A fitted model is its parameters plus what a model-risk reviewer needs to reproduce and trust it: the
maximised log-likelihood, standard errors, the number of customers, a hash of the data, the fitted-on
window, the time unit, and the library versions. It is saved as JSON (never pickle: a pickle runs code
when loaded); loading refuses another artefact format version or another model family with a clear error.
The parameters are plain numbers, so numpy and scipy versions are recorded but not enforced.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

from lifeloop import __version__
from lifeloop.errors import DataError, NotFoundError, Problem

if TYPE_CHECKING:
    import numpy as np

FORMAT = "lifeloop.clv"
FORMAT_VERSION = 1
_SHOWN = 5  # located problems kept per check; the total is still counted
# parameters are kept within [1e-6, 1e6]: where the likelihood is flat toward infinity (BG/NBD's a and b when
# dropout hardly varies between customers, as on the simulated bank) they stop at the bound, where predictions
# are already those of the limit, instead of running to 1e30 where scipy's hyp2f1 gives NaN for young customers
LOG_BOUND = math.log(1e6)

_FAMILIES: dict[str, type[ClvModel]] = {}


class ClvModel:
    """A fitted CLV model family: ``fit`` a summary table, ``predict`` per customer, ``save`` / ``load`` JSON."""

    name: ClassVar[str]                    # the family's id in the artefact, e.g. "bg_nbd"
    param_names: ClassVar[tuple[str, ...]]
    inputs: ClassVar[tuple[str, ...]]      # summary columns the likelihood reads

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _FAMILIES[cls.name] = cls

    def __init__(self, params: Mapping[str, float], *, log_likelihood: float | None = None,
                 n_customers: int | None = None, standard_errors: Mapping[str, float] | None = None,
                 data_hash: str | None = None, units: str = "weeks", window: Mapping[str, str] | None = None,
                 versions: Mapping[str, str] | None = None, fit_info: Mapping[str, Any] | None = None):
        missing = [p for p in self.param_names if p not in params]
        if missing or set(params) - set(self.param_names):
            raise DataError(f"{self.name} takes parameters {', '.join(self.param_names)}; got {', '.join(params)}")
        bad = [p for p in self.param_names if not (math.isfinite(params[p]) and params[p] > 0)]
        if bad:
            raise DataError(f"{self.name} parameters must be positive and finite: {', '.join(bad)}")
        self.params = {p: float(params[p]) for p in self.param_names}
        self.log_likelihood = log_likelihood
        self.n_customers = n_customers
        self.standard_errors = dict(standard_errors or {})
        self.data_hash = data_hash
        self.units = units
        self.window = dict(window or {})
        self.versions = dict(versions or library_versions())
        self.fit_info = dict(fit_info or {})

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in self.params.items())
        return f"{type(self).__name__}({shown}; {self.units})"

    # -- the family's own maths ------------------------------------------------------------------------
    @staticmethod
    def _log_likelihood_terms(params: Sequence[float], **cols: np.ndarray) -> np.ndarray:
        """Per-customer log-likelihood at ``params`` (ordered as ``param_names``)."""
        raise NotImplementedError

    @classmethod
    def _validate(cls, cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Family-specific value checks; returns the rows the likelihood is fitted on."""
        return cols

    def predict(self, summary: Any, **options: Any) -> dict[str, np.ndarray]:
        """Per-customer predictions from an RFM summary."""
        raise NotImplementedError

    # -- fit -------------------------------------------------------------------------------------------
    @classmethod
    def fit(cls, summary: Any, *, units: str = "weeks", window: Mapping[str, str] | None = None) -> Self:
        """Fit by maximum likelihood on an RFM summary (a pyarrow Table or a mapping of columns)."""
        import numpy as np

        cols = cls._validate(columns(summary, cls.inputs))
        n = len(next(iter(cols.values())))
        if n == 0:
            raise DataError(f"No customers to fit {cls.name} on", hint="check the summary's time window")

        def nll(log_params: np.ndarray) -> float:
            if np.any(np.abs(log_params) > LOG_BOUND):   # a wall for the polish (L-BFGS-B has bounds)
                return 1e300
            value = -float(np.sum(cls._log_likelihood_terms(np.exp(log_params), **cols)))
            return value if math.isfinite(value) else 1e300   # keeps the optimiser out of overflow regions

        log_params, info = maximise(nll, len(cls.param_names))
        at_bound = [p for p, u in zip(cls.param_names, log_params, strict=True) if abs(u) >= LOG_BOUND - 1e-3]
        info = {**info, "at_bound": at_bound}
        se = standard_errors(nll, log_params)
        params = dict(zip(cls.param_names, np.exp(log_params).tolist(), strict=True))
        return cls(params, log_likelihood=-nll(log_params), n_customers=n,
                   standard_errors=dict(zip(cls.param_names, se, strict=True)), data_hash=data_hash(cols),
                   units=units, window=window, fit_info=info | cls._diagnostics(cols))

    @classmethod
    def _diagnostics(cls, cols: dict[str, np.ndarray]) -> dict[str, Any]:
        return {}

    def log_likelihood_of(self, summary: Any) -> float:
        """The log-likelihood of this model's parameters on a summary (e.g. to compare with a published value)."""
        import numpy as np

        cols = self._validate(columns(summary, self.inputs))
        return float(np.sum(self._log_likelihood_terms([self.params[p] for p in self.param_names], **cols)))

    # -- save / load -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The artefact as plain JSON values."""
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "model": self.name, "params": self.params,
                "standard_errors": self.standard_errors, "log_likelihood": self.log_likelihood,
                "n_customers": self.n_customers, "data_hash": self.data_hash, "units": self.units,
                "window": self.window, "versions": self.versions, "fit": self.fit_info}

    def save(self, path: str | Path) -> Path:
        """Write the artefact as JSON (sorted keys, so the same fit gives the same bytes)."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path, *, units: str | None = None) -> Self:
        """Read an artefact written by :meth:`save`; refuses another format version, family or time unit."""
        doc = _read(Path(path))
        if doc.get("model") != cls.name:
            raise DataError(f"{path}: holds a {doc.get('model')!r} model, not {cls.name!r}",
                            problems=[Problem(f"model is {doc.get('model')!r}", file=str(path), field="model")],
                            hint=f"load it with load_model(), or point at a {cls.name} artefact")
        if units is not None and doc.get("units") != units:
            raise DataError(f"{path}: the model was fitted in {doc.get('units')}, not {units}",
                            problems=[Problem(f"units is {doc.get('units')!r}", file=str(path), field="units")],
                            hint="summarise the transactions in the model's time unit, or refit")
        return cls.from_dict(doc)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Self:
        """The model back from :meth:`to_dict` (the caller has checked format and family)."""
        return cls(doc["params"], log_likelihood=doc.get("log_likelihood"), n_customers=doc.get("n_customers"),
                   standard_errors=doc.get("standard_errors"), data_hash=doc.get("data_hash"),
                   units=doc.get("units", "weeks"), window=doc.get("window"), versions=doc.get("versions"),
                   fit_info=doc.get("fit"))


def load_model(path: str | Path, *, units: str | None = None) -> ClvModel:
    """Load any CLV artefact, choosing the family from the file."""
    doc = _read(Path(path))
    family = _FAMILIES.get(str(doc.get("model")))
    if family is None:
        raise DataError(f"{path}: unknown CLV model {doc.get('model')!r}",
                        hint=f"known models: {', '.join(sorted(_FAMILIES))}")
    return family.load(path, units=units)


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise NotFoundError(f"{path}: no model file here", problems=[Problem("file not found", file=str(path))])
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not a JSON model artefact ({e})", hint="was it written by ClvModel.save()?") from e
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise DataError(f"{path}: not a Lifeloop CLV model (format is not {FORMAT!r})",
                        hint="was it written by ClvModel.save()?")
    if doc.get("format_version") != FORMAT_VERSION:
        raise DataError(f"{path}: model format version {doc.get('format_version')!r}; this Lifeloop "
                        f"({__version__}) reads version {FORMAT_VERSION}",
                        problems=[Problem("format version mismatch", file=str(path), field="format_version")],
                        hint="refit the model with this Lifeloop version, or use the version that wrote it")
    return doc


# -- shared helpers --------------------------------------------------------------------------------------
def columns(summary: Any, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Named columns of a summary as float arrays; a missing, null or non-finite column is a DataError."""
    import numpy as np

    present = list(summary.column_names) if hasattr(summary, "column_names") else list(summary)
    for name in names:
        if name not in present:
            raise DataError(f"Required column {name} missing", problems=[Problem("missing", column=name)],
                            hint=f"columns present: {', '.join(map(str, present)) or 'none'}; "
                                 "build the summary with rfm_summary()")
    out = {}
    for name in names:
        values = summary[name]
        if hasattr(values, "to_numpy") and hasattr(values, "null_count"):   # a pyarrow (chunked) array
            if values.null_count:
                raise DataError(f"Column {name} has {values.null_count:,} missing values", total=values.null_count)
            values = values.to_numpy()
        arr = np.asarray(values, dtype=float)
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise DataError(f"Column {name} has {bad.size:,} missing or infinite values", total=int(bad.size),
                            problems=[Problem("not a finite number", row=int(i) + 1, column=name)
                                      for i in bad[:_SHOWN]])
        out[name] = arr
    return out


def check(rows: np.ndarray, message: str, column: str, hint: str | None = None) -> None:
    """Raise a DataError locating the first rows where ``rows`` (a boolean mask) is true."""
    import numpy as np

    bad = np.flatnonzero(rows)
    if bad.size:
        raise DataError(f"Column {column}: {bad.size:,} rows {message}", total=int(bad.size), hint=hint,
                        problems=[Problem(message, row=int(i) + 1, column=column) for i in bad[:_SHOWN]])


def maximise(nll: Callable[[np.ndarray], float], k: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Minimise a negative log-likelihood over log-parameters: L-BFGS-B from all-ones, then a Nelder-Mead polish.

    Log-parameters keep every parameter positive without bounds. L-BFGS-B (numerical gradient) gets close
    fast; Nelder-Mead then polishes without trusting finite differences on a flat ridge (the Gamma-Gamma
    q-gamma ridge), to a tolerance relative to the likelihood's size.
    """
    import numpy as np
    from scipy.optimize import minimize

    first = minimize(nll, np.zeros(k), method="L-BFGS-B", bounds=[(-LOG_BOUND, LOG_BOUND)] * k)
    polish = minimize(nll, first.x, method="Nelder-Mead",
                      options={"xatol": 1e-9, "fatol": 1e-11 * max(1.0, abs(first.fun)), "maxiter": 20_000,
                               "maxfev": 20_000})
    best = polish if polish.fun <= first.fun else first
    return best.x, {"method": "L-BFGS-B then Nelder-Mead polish, on log-parameters",
                    "converged": bool(polish.success), "evaluations": int(first.nfev + polish.nfev)}


def standard_errors(nll: Callable[[np.ndarray], float], log_params: np.ndarray, h: float = 1e-4) -> list[float]:
    """Asymptotic standard errors of the parameters: inverse finite-difference Hessian, delta method from logs."""
    import numpy as np

    k = len(log_params)
    eye = np.eye(k) * h
    hess = np.empty((k, k))
    for i in range(k):
        for j in range(i, k):
            hess[i, j] = hess[j, i] = (nll(log_params + eye[i] + eye[j]) - nll(log_params + eye[i] - eye[j])
                                       - nll(log_params - eye[i] + eye[j])
                                       + nll(log_params - eye[i] - eye[j])) / (4 * h * h)
    try:
        var_log = np.diag(np.linalg.inv(hess))
    except np.linalg.LinAlgError:
        return [float("nan")] * k
    # d(exp(u)) = exp(u) du: se(theta) = theta * se(log theta)
    return [float(np.exp(u) * math.sqrt(v)) if v > 0 else float("nan")
            for u, v in zip(log_params, var_log, strict=True)]


def data_hash(cols: Mapping[str, np.ndarray]) -> str:
    """sha256 of the fitted columns' names and float64 bytes, in a fixed order."""
    import numpy as np

    digest = hashlib.sha256()
    for name in sorted(cols):
        digest.update(name.encode() + b"\0" + np.ascontiguousarray(cols[name], dtype="<f8").tobytes())
    return "sha256:" + digest.hexdigest()


def library_versions() -> dict[str, str]:
    """The versions that produced a fit (recorded for reproduction)."""
    import numpy
    import scipy

    return {"lifeloop": __version__, "numpy": numpy.__version__, "scipy": scipy.__version__,
            "python": platform.python_version()}
