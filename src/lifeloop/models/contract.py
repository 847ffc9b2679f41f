"""The model contract (模型契约): what every model on the shelf declares, and the base it implements.

A model is declared in ``config/models.yaml`` (optional: without it the built-in churn warning is the
only model) and fitted into a versioned artefact whose manifest repeats the declaration together with
the training window, the data hash, the library versions and the validation metrics (SR 11-7: a model
is documented, validated and reproducible from what is kept with it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from lifeloop.config.shelf import ModelSpec

if TYPE_CHECKING:
    import numpy as np

class Model:
    """The shared base of every model family: fit, predict, explain, and a JSON form of itself.

    ``contributions`` returns, per customer and feature, the part of the model's output (on the scale
    named by :attr:`output`) that the feature explains, with ``base + contributions.sum(axis=1)`` equal
    to the output exactly; reason codes are read from it.
    """

    estimator: ClassVar[str]
    output: ClassVar[str] = "log_odds"
    requires: ClassVar[tuple[str, ...]] = ("numpy",)   # libraries whose versions must match on load

    def __init__(self, spec: ModelSpec):
        self.spec = spec

    def fit(self, X: np.ndarray, y: np.ndarray) -> Model:
        """Fit on a float matrix (columns in ``spec.features`` order, NaN for missing) and 0/1 labels."""
        raise NotImplementedError

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of the label."""
        raise NotImplementedError

    def contributions(self, X: np.ndarray) -> tuple[float, np.ndarray]:
        """(base, per-feature contributions) adding up exactly to the output."""
        raise NotImplementedError

    def reason_codes(self, X: np.ndarray) -> list[list[str]]:
        """Per customer and feature, the code naming the value's range (``aum_change_pct_90d:1``)."""
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        """Everything needed to score again, as plain JSON (no pickle)."""
        raise NotImplementedError

    @classmethod
    def from_json(cls, spec: ModelSpec, data: dict[str, Any]) -> Model:
        """The model back from :meth:`to_json`."""
        raise NotImplementedError
