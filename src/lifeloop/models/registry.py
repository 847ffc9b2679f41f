"""The model registry in the lake: versioned artefacts and an append-only history of who did what.

Layout::

    lake/models/<name>/<version>/manifest.json   the contract, training window, data hash, versions, metrics
    lake/models/<name>/<version>/model.json      the fitted model as JSON (never pickle)
    lake/models/<name>/history.jsonl             fit / promote / retire records, appended, never rewritten

The active version of a model (its champion) is read by replaying the history: the last ``promote``
wins until that version is ``retire``d, and a ``rollback`` restores the champion before it. A challenger
(``challenge``, ended by ``end_challenge``, a promotion of it or its retirement) is scored next to the
champion: in shadow (share 0: its scores are kept but no rule reads them) or on a share of customers
chosen by a hash of the customer id (:func:`takes_challenger`). Loading refuses an artefact fitted with
other library versions than the running ones, since a model must score as it was validated (SR 11-7 reproducibility).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

from lifeloop.config.shelf import ModelSpec
from lifeloop.errors import DataError, NotFoundError
from lifeloop.models import catalogue
from lifeloop.models.contract import Model
from lifeloop.store.lake import Lake

AREA = "models"
HISTORY = "history.jsonl"
LIBRARIES = {"numpy": "numpy", "scikit-learn": "sklearn", "lightgbm": "lightgbm"}
OPTIONAL = {"lightgbm"}   # extras: recorded when installed ("not installed" otherwise)


def library_versions() -> dict[str, str]:
    """Versions of the libraries a fitted model depends on."""
    import importlib
    import importlib.util

    return {dist: (importlib.import_module(mod).__version__ if dist not in OPTIONAL
                   or importlib.util.find_spec(mod) is not None else "not installed")
            for dist, mod in LIBRARIES.items()}


def root(lake: Lake, name: str | None = None) -> Path:
    """``lake/models`` or one model's folder."""
    base = Path(lake.root) / AREA
    return base / name if name else base


def names(lake: Lake) -> list[str]:
    """Models with at least one fitted version."""
    base = root(lake)
    return sorted(p.name for p in base.iterdir() if p.is_dir() and versions(lake, p.name)) if base.is_dir() else []


def versions(lake: Lake, name: str) -> list[str]:
    """Fitted versions of a model, oldest first (``v1``, ``v2`` ...)."""
    base = root(lake, name)
    found = [p.name for p in base.glob("v*") if (p / "manifest.json").exists()] if base.is_dir() else []
    return sorted(found, key=lambda v: int(v[1:]))


def save(lake: Lake, model: Model, manifest: dict[str, Any], actor: str) -> str:
    """Write a fitted model as the next version (atomically: a folder renamed into place); return it."""
    base = root(lake, model.spec.name)
    base.mkdir(parents=True, exist_ok=True)
    body = json.dumps(model.to_json(), sort_keys=True, indent=1).encode()
    with lake.lock():
        done = versions(lake, model.spec.name)
        version = f"v{int(done[-1][1:]) + 1 if done else 1}"
        staging = base / f".{version}.{uuid.uuid4().hex}"
        staging.mkdir()
        (staging / "model.json").write_bytes(body)
        plugin = catalogue.plugin_origin(model.estimator)
        full = {**manifest, **({"plugin": plugin} if plugin else {}), "name": model.spec.name, "version": version,
                "estimator": model.estimator,
                "spec": model.spec.model_dump(mode="json"), "libraries": library_versions(),
                "artefact_sha256": hashlib.sha256(body).hexdigest()}
        (staging / "manifest.json").write_text(json.dumps(full, sort_keys=True, indent=2) + "\n", encoding="utf-8")
        os.rename(staging, base / version)
    record(lake, model.spec.name, "fit", version, actor, reason=f"fitted as of {manifest.get('as_of')}")
    return version


def manifest(lake: Lake, name: str, version: str) -> dict[str, Any]:
    """A version's manifest (a NotFoundError naming the fitted versions otherwise)."""
    path = root(lake, name) / version / "manifest.json"
    if not path.exists():
        known = ", ".join(versions(lake, name)) or "none"
        raise NotFoundError(f"no model {name} version {version} in the lake",
                            hint=f"fitted versions of {name}: {known}; fit one with `lifeloop models fit {name}`")
    return json.loads(path.read_text(encoding="utf-8"))


def load(lake: Lake, name: str, version: str) -> tuple[Model, dict[str, Any]]:
    """A fitted model and its manifest; refuses other library versions than the ones it was fitted with."""
    found = manifest(lake, name, version)
    running = library_versions()
    known = catalogue.estimators()
    estimator = known.get(found["estimator"])
    if estimator is None:
        raise DataError(f"model {name} {version}: unknown estimator {found['estimator']!r}",
                        hint=f"this Lifeloop knows: {', '.join(known)}; a plug-in's package may be missing")
    for lib in estimator.requires:
        if found["libraries"].get(lib) != running.get(lib):
            raise DataError(f"model {name} {version} was fitted with {lib} {found['libraries'].get(lib)}, this "
                            f"installation has {running.get(lib)}: it may not score as it was validated",
                            hint=f"install {lib}=={found['libraries'].get(lib)}, or refit and re-validate with "
                                 f"`lifeloop models fit {name}` and promote the new version")
    body = (root(lake, name) / version / "model.json").read_bytes()
    if hashlib.sha256(body).hexdigest() != found["artefact_sha256"]:
        raise DataError(f"model {name} {version}: model.json does not match the hash in its manifest",
                        hint="the artefact was changed after fitting; refit it")
    spec = ModelSpec.model_validate(found["spec"])
    return estimator.from_json(spec, json.loads(body)), found


def record(lake: Lake, name: str, action: str, version: str, actor: str, reason: str,
           at: dt.datetime | None = None, **extra: Any) -> dict[str, Any]:
    """Append one record to a model's history (never rewritten)."""
    entry = {"at": (at or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"), "action": action,
             "version": version, "actor": actor, "reason": reason, **extra}
    path = root(lake, name) / HISTORY
    path.parent.mkdir(parents=True, exist_ok=True)
    with lake.lock(), open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n")
    return entry


def history(lake: Lake, name: str) -> list[dict[str, Any]]:
    """Every fit, promotion and retirement of a model, oldest first."""
    path = root(lake, name) / HISTORY
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def state(lake: Lake, name: str) -> dict[str, Any]:
    """The model's champion, the champions a rollback would restore (newest last) and its challenger."""
    promoted: list[str] = []      # champions in order of promotion, without repeats
    current: str | None = None
    challenger: dict[str, Any] | None = None
    gone: set[str] = set()
    for h in history(lake, name):
        v, action = h["version"], h["action"]
        if action == "promote":
            promoted, current = [p for p in promoted if p != v] + [v], v
        elif action == "rollback":
            promoted, current = (promoted[:promoted.index(v) + 1] if v in promoted else [*promoted, v]), v
        elif action == "retire":
            gone.add(v)
            current = None if current == v else current
        if action == "challenge":
            challenger = {"version": v, "share": float(h["share"])}
        elif challenger and (action == "end_challenge" or (action in ("promote", "retire", "rollback")
                                                          and challenger["version"] == v)):
            challenger = None
    return {"champion": current, "earlier": [p for p in promoted if p != current and p not in gone],
            "challenger": challenger}


def champion(lake: Lake, name: str) -> str | None:
    """The active version of a model: the last one promoted (or rolled back to), unless it was retired since."""
    return state(lake, name)["champion"]


def challenger(lake: Lake, name: str) -> dict[str, Any] | None:
    """The model's challenger, ``{"version", "share"}`` (share 0: shadow), or None."""
    return state(lake, name)["challenger"]


def takes_challenger(name: str, customer_ids: list[str], share: float) -> list[bool]:
    """Which customers' rules see the challenger's score: a sha256 of model and customer id under ``share``.

    Deterministic (the same customers every day, on every engine) and salted with the model's name, so it
    does not line up with a strategy's holdout (salted with the strategy)."""
    if share <= 0:
        return [False] * len(customer_ids)
    cut = int(share * 2**64)
    return [int.from_bytes(hashlib.sha256(f"model|{name}|{c}".encode()).digest()[:8], "big") < cut
            for c in customer_ids]


def promote(lake: Lake, name: str, version: str, actor: str, reason: str) -> dict[str, Any]:
    """Make a fitted version the active one (a reason is required and kept)."""
    manifest(lake, name, version)
    if not reason.strip():
        raise DataError("a promotion needs a reason", hint="say on which evidence, e.g. --reason 'AUC 0.81 on Q3'")
    if version in retired(lake, name):
        raise DataError(f"model {name} {version} was retired", hint="fit a new version and promote that")
    return record(lake, name, "promote", version, actor, reason)


def challenge(lake: Lake, name: str, version: str, share: float, actor: str, reason: str) -> dict[str, Any]:
    """Score a fitted version next to the champion: in shadow (``share`` 0) or for a share of customers."""
    manifest(lake, name, version)
    if not reason.strip():
        raise DataError("a challenger needs a reason", hint="say why, e.g. --reason 'v3: AUC 0.86 vs 0.84 on Q3'")
    if not 0 <= share < 1:
        raise DataError(f"a challenger's share is a fraction in [0, 1), not {share}",
                        hint="0 scores in shadow; 0.1 lets the rules see its score for a tenth of customers")
    if version in retired(lake, name):
        raise DataError(f"model {name} {version} was retired", hint="fit a new version and challenge with that")
    now = state(lake, name)
    if now["champion"] is None:
        raise DataError(f"model {name} has no champion to challenge", hint=f"promote a version: `lifeloop models "
                        f"promote {name} VERSION --reason TEXT`")
    if now["champion"] == version:
        raise DataError(f"model {name} {version} is the champion", hint="challenge with another fitted version")
    return record(lake, name, "challenge", version, actor, reason, share=share)


def end_challenge(lake: Lake, name: str, actor: str, reason: str) -> dict[str, Any]:
    """Stop scoring the challenger (the champion alone scores from the next run)."""
    found = challenger(lake, name)
    if found is None:
        raise DataError(f"model {name} has no challenger", hint="`lifeloop models show NAME` lists its history")
    return record(lake, name, "end_challenge", found["version"], actor, reason)


def rollback(lake: Lake, name: str, actor: str, reason: str) -> dict[str, Any]:
    """Restore the champion before the current one (a reason is required and kept)."""
    if not reason.strip():
        raise DataError("a rollback needs a reason", hint="say why, e.g. --reason 'v3 over-selects new customers'")
    now = state(lake, name)
    if not now["earlier"]:
        raise DataError(f"model {name} has no earlier champion to roll back to",
                        hint="retire the current version instead, or promote another fitted version")
    return record(lake, name, "rollback", now["earlier"][-1], actor, reason, replaced=now["champion"])


def retire(lake: Lake, name: str, version: str, actor: str, reason: str) -> dict[str, Any]:
    """Retire a version for good; if it was active, the model has no active version until a promotion."""
    manifest(lake, name, version)
    return record(lake, name, "retire", version, actor, reason)


def retired(lake: Lake, name: str) -> set[str]:
    """Versions retired for good."""
    return {h["version"] for h in history(lake, name) if h["action"] == "retire"}


def active(lake: Lake) -> dict[str, str]:
    """Every model with an active version: name -> version."""
    return {n: v for n in names(lake) if (v := champion(lake, n)) is not None}
