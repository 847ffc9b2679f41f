"""The cluster registry: identities that survive re-fits, and the names analysts give clusters.

``lake/clusters/registry.json`` keeps every cluster ever seen (id, name, centroid in the transformed,
unscaled space, active or retired). A re-fit is folded in by :func:`update_registry`: new centroids are
matched to the active ones by Hungarian assignment on the standardised distance (with a threshold); a
match keeps its id and name, an unmatched new centroid gets a new id (never reused), an unmatched old
one is retired.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifeloop.config.clusters import ClustersConfig
from lifeloop.errors import ConfigError, DataError, NotFoundError

if TYPE_CHECKING:
    import numpy as np

    from lifeloop.insight.clusters import Fit

AREA = "clusters"
REGISTRY = "registry.json"


# ---------------------------------------------------------------------------- matching identities
def match(old: np.ndarray, new: np.ndarray, std: np.ndarray, threshold: float) -> list[int | None]:
    """For each new centroid, the index of the old one it continues (Hungarian, RMS z-distance <= threshold)."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    out: list[int | None] = [None] * len(new)
    if len(old) == 0 or len(new) == 0:
        return out
    diff = (new[:, None, :] - old[None, :, :]) / std
    cost = np.sqrt((diff ** 2).mean(axis=2))
    rows, cols = linear_sum_assignment(cost)
    for r, c in zip(rows, cols, strict=False):
        if cost[r, c] <= threshold:
            out[int(r)] = int(c)
    return out


# ---------------------------------------------------------------------------- the registry
def registry_path(lake: Any) -> Path:
    """Where the cluster registry lives: lake/clusters/registry.json."""
    return Path(lake.root) / AREA / REGISTRY


def load_registry(lake: Any) -> dict[str, Any] | None:
    """The registry, or None before the first fit."""
    path = registry_path(lake)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def registry_bytes(registry: dict[str, Any]) -> bytes:
    """The registry as the JSON bytes stored in the lake."""
    return (json.dumps(registry, indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")


def save_registry(lake: Any, registry: dict[str, Any]) -> None:
    """Write the registry atomically (write a temporary file, then rename over the old one)."""
    path = registry_path(lake)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{REGISTRY}.tmp")
    tmp.write_bytes(registry_bytes(registry))
    with lake.lock():
        os.replace(tmp, path)


def active(registry: dict[str, Any]) -> list[dict[str, Any]]:
    """The clusters customers are assigned to now, by id."""
    return sorted((c for c in registry["clusters"] if c["active"]), key=lambda c: c["id"])


def update_registry(registry: dict[str, Any] | None, result: Fit, config: ClustersConfig,
                    as_of: dt.date) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fold a new fit into the registry (pure): matched ids kept, new ids minted, lost ones retired."""
    names = [f.name for f in config.features]
    registry = json.loads(json.dumps(registry)) if registry else {"version": 1, "clusters": [], "fits": []}
    if registry["clusters"] and not same_space(registry, config):
        # the old centroids live in another space: nothing can be matched, every cluster is new
        for c in registry["clusters"]:
            if c["active"]:
                c.update(active=False, retired_on=as_of.isoformat())
    current = [c for c in registry["clusters"] if c["active"]]
    old = previous_centroids(registry, len(names))
    pairs = match(old, result.centroids, result.std, config.match_threshold)
    next_id = max((c["id"] for c in registry["clusters"]), default=0) + 1
    kept, new, taken = [], [], set()
    for i, j in enumerate(pairs):
        centroid = [round(float(v), 9) for v in result.centroids[i]]
        if j is not None:
            entry = current[j]
            entry["centroid"] = centroid
            entry["last_fit"] = as_of.isoformat()
            kept.append(entry["id"])
            taken.add(entry["id"])
        else:
            registry["clusters"].append({"id": next_id, "name": None, "named_by": None, "centroid": centroid,
                                         "first_fit": as_of.isoformat(), "last_fit": as_of.isoformat(),
                                         "active": True})
            new.append(next_id)
            next_id += 1
    retired = []
    for c in current:
        if c["id"] not in taken:
            c.update(active=False, retired_on=as_of.isoformat())
            retired.append(c["id"])
    registry.update(features=names, log1p=[f.log1p for f in config.features], fill=[f.fill for f in config.features],
                    mean=[round(float(v), 9) for v in result.mean], std=[round(float(v), 9) for v in result.std],
                    k=result.k, fitted_as_of=as_of.isoformat())
    change = {"as_of": as_of.isoformat(), "k": result.k, "criterion": result.criterion,
              "silhouettes": {str(k): v for k, v in result.silhouettes.items()},
              "kept": sorted(kept), "new": sorted(new), "retired": sorted(retired)}
    registry["fits"].append(change)
    return registry, change


def same_space(registry: dict[str, Any] | None, config: ClustersConfig) -> bool:
    """Whether the registry's centroids were fitted on the same features with the same transforms."""
    return registry is not None and registry.get("features") == [f.name for f in config.features] \
        and registry.get("log1p") == [f.log1p for f in config.features] \
        and registry.get("fill") == [f.fill for f in config.features]


def previous_centroids(registry: dict[str, Any] | None, width: int) -> np.ndarray:
    """The active centroids of a registry, by id (an empty matrix when there are none)."""
    import numpy as np

    current = [c for c in (registry or {}).get("clusters", []) if c["active"]]
    return np.array([c["centroid"] for c in current]) if current else np.zeros((0, width))


def name_cluster(lake: Any, cluster_id: int, name: str, by: str | None = None) -> dict[str, Any]:
    """Give a cluster a name people use (kept across re-fits while the cluster is matched)."""
    registry = load_registry(lake)
    if registry is None:
        raise DataError("no clusters have been fitted yet", hint="run `lifeloop clusters --fit` first")
    entry = next((c for c in registry["clusters"] if c["id"] == cluster_id), None)
    if entry is None:
        ids = ", ".join(str(c["id"]) for c in active(registry))
        raise NotFoundError(f"no cluster {cluster_id}", hint=f"active clusters are: {ids}")
    if not name.strip():
        raise ConfigError(f"cluster {cluster_id}: the name is empty", hint="give a short name, e.g. 'Digital savers'")
    entry.update(name=name.strip(), named_by=by)
    save_registry(lake, registry)
    return entry


def cluster_label(entry: dict[str, Any]) -> str:
    """A cluster's display name: the analyst's name, else 'cluster N'."""
    return entry.get("name") or f"cluster {entry['id']}"


# ---------------------------------------------------------------------------- assigning
