"""What the audiences and plan steps read: the map, the contact policy, snapshots, history.

Loading and checking happen here once, so both steps (and ``lifeloop strategies``) see the same
validated map. The history source is the ops database when the workspace has one wired
(``ctx.history_source``), else :class:`lifeloop.strategy.history.LakeHistory`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lifeloop.config.contact_policy import ContactPolicy
from lifeloop.config.lifecycle import LifecycleConfig
from lifeloop.config.segments import SegmentsConfig
from lifeloop.config.strategies import StrategiesConfig
from lifeloop.errors import ConfigError
from lifeloop.strategy.checks import check_structure
from lifeloop.strategy.history import History, HistorySource, LakeHistory

if TYPE_CHECKING:
    from lifeloop.config.loader import LocatedYaml
    from lifeloop.pipeline import StepContext


def load_map(ctx: Any) -> tuple[StrategiesConfig, LocatedYaml, ContactPolicy]:
    """The strategy map (structure checked) and the contact policy of a workspace."""

    config, doc = ctx.load_config("strategies", StrategiesConfig)
    check_structure(config, doc)
    policy, _ = ctx.load_config("contact_policy", ContactPolicy)
    return config, doc, policy


def history_source(ctx: Any) -> HistorySource:
    """The ops database's history if the workspace provides one, else the lake adapter."""
    source = getattr(ctx, "history_source", None)
    if callable(source):
        return source()
    return LakeHistory(ctx.lake)


@dataclass
class Inputs:
    """Everything the two steps need for one as-of date."""

    config: StrategiesConfig
    doc: LocatedYaml
    policy: ContactPolicy
    history: History
    files: dict[str, Path]


def gather(step: StepContext) -> Inputs:
    """Load and check the map and policy, locate snapshots, read history (once per step)."""

    ctx, as_of = step.ctx, step.as_of
    config, doc, policy = load_map(ctx)
    files = {area: ctx.lake.snapshot_file(area, as_of) for area in ("features", "lifecycle", "segments")}
    history = history_source(ctx).load(as_of, policy.lookback_days)
    return Inputs(config, doc, policy, history, files)


def known_names(ctx: Any) -> tuple[set[str] | None, set[str] | None]:
    """Stages of lifecycle.yaml and tiers/groups/micro-segments of segments.yaml (None if absent)."""

    try:
        lc, _ = ctx.load_config("lifecycle", LifecycleConfig)
        stages: set[str] | None = {s.name for s in lc.stages}
    except ConfigError:
        stages = None
    try:
        sc, _ = ctx.load_config("segments", SegmentsConfig)
        segments: set[str] | None = ({t.name for t in sc.tiers} | {g.name for g in sc.groups}
                                     | {m.name for m in sc.micro_segments})
    except ConfigError:
        segments = None
    return stages, segments

