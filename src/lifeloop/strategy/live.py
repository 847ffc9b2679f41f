"""The live strategy map: config/strategies.yaml with the approved versions of the operations database over it.

:class:`LiveStrategies` is the overlay the workspace's :class:`~lifeloop.config.loader.ConfigFolder` applies to
``strategies`` (``Context.configs``), so every reader of the map — ``lifeloop run``'s audiences and plan steps,
the real-time decider, ``lifeloop strategies``, the review — reads the same live map, and "the next run uses
the approved version". :func:`single` validates one strategy's YAML text (a draft) as the map's checks do.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lifeloop.config.contact_policy import ContactPolicy
from lifeloop.config.loader import LocatedYaml, load_yaml, validate_model
from lifeloop.config.strategies import StrategiesConfig, Strategy
from lifeloop.errors import ConfigError, Problem
from lifeloop.store.ops import strategy_versions as store
from lifeloop.strategy.checks import check_structure
from lifeloop.strategy.versions import Live, latest_approved, live_map


def live_versions(sessions: Any) -> list[Live]:
    """The versions in force: the newest approved per strategy x branch."""
    import yaml

    with sessions() as session:
        rows = [{"strategy_id": v.strategy_id, "branch_id": v.branch_id, "version": v.version, "status": v.status,
                 "definition": v.definition} for v in store.approved(session)]
    return [Live(r["strategy_id"], r["branch_id"], r["version"], yaml.safe_load(r["definition"]) or {})
            for r in latest_approved(rows)]


class LiveStrategies:
    """The strategies overlay: stamp = what is approved (one cheap query), apply = the live map's data."""

    def __init__(self, sessions: Callable[[], Any], present: Callable[[], bool] = lambda: True):
        self.sessions = sessions
        self.present = present   # false: no operations database yet (a fresh SQLite workspace): nothing approved

    def stamp(self) -> str:
        if not self.present():
            return ""
        with self.sessions()() as session:
            return store.live_stamp(session)

    def apply(self, doc: LocatedYaml) -> LocatedYaml:
        live = live_versions(self.sessions())
        data = live_map(doc.data if isinstance(doc.data, dict) else {}, live)
        replaced = {v.strategy_id for v in live}
        # lines of the file stay with the strategies the file still defines; a version's lines are its own
        keep_until = {i for i, s in enumerate(data.get("strategies") or [])
                      if isinstance(s, dict) and s.get("id") not in replaced and "__" not in str(s.get("id"))}
        lines = {k: v for k, v in doc.lines.items()
                 if not (len(k) >= 2 and k[0] == "strategies" and isinstance(k[1], int) and k[1] not in keep_until)}
        return LocatedYaml(data, lines, f"{doc.file} (with approved versions)")


def wrap(doc: LocatedYaml) -> LocatedYaml:
    """One strategy's located text as the map's ``strategies[0]`` (the map's checks locate fields that way)."""
    lines = {("strategies", 0, *k): v for k, v in doc.lines.items()}
    return LocatedYaml({"strategies": [doc.data]}, lines, doc.file)


def single(text: str, *, strategy_id: str, label: str, thresholds: dict[str, float],
           policy: ContactPolicy | None = None) -> tuple[Strategy, LocatedYaml]:
    """One strategy's YAML text, validated like every rule of the map (schema, then structure and compliance);
    errors name the field (``holdout``, ``waves[1].depends_on``) and the line of the text."""
    doc = load_yaml(label, text=text)
    if not isinstance(doc.data, dict):
        raise ConfigError(f"{label}: a strategy is a mapping of fields (id, name, audience, ...)",
                          problems=[Problem("not a mapping of fields", file=label, line=1, field="(top level)")],
                          hint="start from the current version's text (the editor fills it in)")
    if doc.data.get("id") != strategy_id:
        raise ConfigError(f"{label}: id must be {strategy_id!r} (got {doc.data.get('id')!r})",
                          problems=[Problem(f"id must be {strategy_id!r}", file=label, line=doc.line_of(("id",)),
                                            field="id")],
                          hint="a version keeps its strategy's id; a new strategy is drafted under its new id")
    strategy = validate_model(Strategy, doc)
    wrapped = wrap(doc)
    check_structure(validate_model(StrategiesConfig, LocatedYaml(
        {"thresholds": thresholds, "strategies": [doc.data]}, wrapped.lines, label)), wrapped, policy)
    return strategy, doc
