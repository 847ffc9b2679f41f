"""What the audiences and plan steps share: the checked strategy map and the names the map may use.

``load_map`` serves the commands that read the map outside a step (``lifeloop strategies``, the
report, the review); the steps get the same files through their declarations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lifeloop.config.contact_policy import ContactPolicy
from lifeloop.config.strategies import StrategiesConfig
from lifeloop.strategy.checks import check_structure

if TYPE_CHECKING:
    from lifeloop.config.loader import LocatedYaml


def load_map(ctx: Any) -> tuple[StrategiesConfig, LocatedYaml, ContactPolicy]:
    """The strategy map (structure checked) and the contact policy, through ``ctx.load_config``."""
    config, doc = ctx.load_config("strategies", StrategiesConfig)
    policy, _ = ctx.load_config("contact_policy", ContactPolicy)
    check_structure(config, doc, policy)
    return config, doc, policy


def known_names(configs: Mapping[str, tuple[Any, Any]]) -> tuple[set[str] | None, set[str] | None]:
    """Stages of lifecycle.yaml and tiers/groups/micro-segments of segments.yaml (None if absent)."""
    stages: set[str] | None = None
    segments: set[str] | None = None
    if "lifecycle" in configs:
        stages = {s.name for s in configs["lifecycle"][0].stages}
    if "segments" in configs:
        sc = configs["segments"][0]
        segments = {t.name for t in sc.tiers} | {g.name for g in sc.groups} | {m.name for m in sc.micro_segments}
    return stages, segments
