"""The daily run: an ordered list of steps, each a pure function of (snapshots, config, as-of).

A step is ``run(step: StepContext) -> StepResult`` in its own module, imported only when it runs
(so the CLI starts instantly and Spark is never imported unless asked for).
"""

from __future__ import annotations

import datetime as dt
import importlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lifeloop.errors import ConfigError

if TYPE_CHECKING:
    from lifeloop.context import Context

# step name -> "module:function"; the order is the order of a full daily run
STEPS: dict[str, str] = {
    "features": "lifeloop.insight.features:run_step",
    "lifecycle": "lifeloop.insight.lifecycle:run_step",
    "segments": "lifeloop.insight.segments:run_step",
    "clusters": "lifeloop.insight.clusters:run_step",
    "outcomes": "lifeloop.review.outcomes:run_step",
    "evidence": "lifeloop.review.evidence:run_step",
    "audiences": "lifeloop.strategy.audiences:run_step",
    "plan": "lifeloop.strategy.plan:run_step",
    "dispatch": "lifeloop.execution.dispatch:run_step",
}


@dataclass
class StepContext:
    """What a step gets: the facade, the as-of date and the engine to run on."""

    ctx: Context
    as_of: dt.date
    engine: Any  # lifeloop.engine.adapters.base.Adapter


@dataclass
class StepResult:
    """What a step reports: rows written, the snapshot's run id, time taken, a summary."""

    step: str
    as_of: dt.date
    rows: int
    run_id: str
    seconds: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)


def resolve_steps(steps: list[str] | None) -> list[str]:
    """Validate step names (did-you-mean) and put them in run order."""
    if not steps:
        return list(STEPS)
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], STEPS, n=1)
        raise ConfigError(f"unknown step {unknown[0]!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
                          hint=f"steps are: {', '.join(STEPS)}")
    return [s for s in STEPS if s in steps]


def run_steps(ctx: Context, as_of: dt.date, steps: list[str] | None = None,
              engine: str | None = None) -> list[StepResult]:
    """Run the named steps (default: all) for one as-of date, in order."""
    names = resolve_steps(steps)
    adapter = ctx.engine(engine)
    results = []
    for name in names:
        module, func = STEPS[name].split(":")
        step_fn = getattr(importlib.import_module(module), func)
        started = time.perf_counter()
        result: StepResult = step_fn(StepContext(ctx=ctx, as_of=as_of, engine=adapter))
        result.seconds = round(time.perf_counter() - started, 3)
        results.append(result)
    return results
