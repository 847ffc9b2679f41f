"""``config/clusters.yaml``: behavioural clusters (聚类分群) — which features, how they are scaled, which k.

Money columns are log-transformed (``log1p``) so one millionaire does not pull every centroid, then
every feature is standardised. The number of clusters is chosen in ``k.min..k.max`` by the highest
silhouette on a seeded sample; cluster identities are kept in a registry and matched on re-fit.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from lifeloop.config.models import Strict
from lifeloop.config.types import Name


class ClusterFeature(Strict):
    """One feature column the clustering reads, with how to transform it and words for its extremes."""

    name: Name("feature name")
    label: str = ""
    log1p: bool = False          # money and counts: compare orders of magnitude, not raw amounts
    fill: float = 0.0            # value used when the feature is empty for a customer
    high: str = ""               # words for a cluster far above the average ("mostly mobile")
    low: str = ""                # words for a cluster far below the average ("few products")


class KRange(Strict):
    """The numbers of clusters tried (both ends included)."""

    min: int = Field(default=3, ge=2)
    max: int = Field(default=8, ge=2)

    @model_validator(mode="after")
    def _ordered(self) -> KRange:
        if self.max < self.min:
            raise ValueError(f"k.max ({self.max}) is below k.min ({self.min})")
        return self


class ClustersConfig(Strict):
    """The whole ``clusters.yaml``."""

    version: int = 1
    features: list[ClusterFeature] = Field(min_length=2)
    k: KRange = Field(default_factory=KRange)
    seed: int = 7
    silhouette_sample: int = Field(default=3000, ge=100)   # customers scored per k (silhouette is O(n^2))
    select_sample: int = Field(default=20_000, ge=100)      # customers each candidate k is tried on
    fit_sample: int = Field(default=200_000, ge=100)        # customers k-means is fitted on
    match_threshold: float = Field(default=1.0, gt=0)       # RMS standardised distance to count as "the same"
    k_margin: float = Field(default=0.05, ge=0)             # silhouette gain a re-fit needs to change k
    traits: int = Field(default=3, ge=1, le=10)             # features named in a cluster's description
    min_effect: float = Field(default=0.3, ge=0)            # standardised difference worth mentioning

    @model_validator(mode="after")
    def _unique(self) -> ClustersConfig:
        names = [f.name for f in self.features]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"feature {dup[0]!r} is listed twice")
        return self

    def feature(self, name: str) -> ClusterFeature:
        """The feature called ``name``."""
        return next(f for f in self.features if f.name == name)
