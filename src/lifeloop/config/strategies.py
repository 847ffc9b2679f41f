"""``config/strategies.yaml``: the strategy map (策略图谱).

Each strategy says who (an audience rule over features, stage, segments and the day's events), what
(an offer), how (channels in priority order, a script per channel in zh-CN and en, waves 多波次), how
we will know it worked (objective, metric, window, holdout share) and how much it may cost
(priority, capacity, budget, start and end dates). Cross-checks that need other files (audience
columns, products, stages) run in :func:`lifeloop.strategy.audiences.check_map`.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError

from lifeloop.config.models import Strict
from lifeloop.config.scripts import template_problems
from lifeloop.config.types import Name, RuleText, Thresholds, TimeOfDay
from lifeloop.data.schema import CONTACT_CHANNELS

Outcome = Literal["no_response", "responded", "any"]
ObjectiveKind = Literal["scale", "customers", "fee_income"]
ScenarioKind = Literal["lifecycle", "product", "event", "calendar"]
Channel = Literal["sms", "push", "email", "call", "rm", "wechat", "branch"]
assert set(Channel.__args__) == set(CONTACT_CHANNELS)  # type: ignore[attr-defined]



class Names(Strict):
    """A name in Chinese and English."""

    zh: str = ""
    en: str = ""


class Objective(Strict):
    """What success means (定目标): scale (AUM), customers (counts), fee income (中收)."""

    kind: ObjectiveKind
    metric: str
    window_days: int = Field(gt=0, le=730)


class Scenario(Strict):
    """Where the strategy sits on the map: scenario kind, and the stages / segments it targets."""

    kind: ScenarioKind
    name: str = ""
    stages: list[str] = Field(default_factory=list)
    segments: list[str] = Field(default_factory=list)


class Offer(Strict):
    """The product (from the catalogue) or a free offer code (care message, activation gift)."""

    product_id: str | None = None
    code: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Offer:
        if not self.product_id and not self.code:
            raise ValueError("an offer needs product_id or code")
        return self


class Script(Strict):
    """A script template (话术) in zh-CN and English (Jinja2, sandboxed, whitelisted variables)."""

    zh: str
    en: str = ""


class DependsOn(Strict):
    """A later wave goes to customers of an earlier wave with this outcome."""

    wave: str
    outcome: Outcome = "any"


class Wave(Strict):
    """One wave: a day offset (D+N), a channel, the time to send, and what it depends on."""

    id: Name("wave id")
    day: int = Field(ge=0, le=730)
    channel: Channel | None = None   # none: the strategy's channels, in priority order
    send_at: TimeOfDay("10:00", "send_at") | None = None   # none: the channel's default (contact_policy.yaml)
    depends_on: DependsOn | None = None
    # local days after the list's date the contact may still go out (none: the channel's valid_days)
    valid_days: int | None = Field(default=None, ge=0, le=30)


class Cell(Strict):
    """One cell (实验组) of an A/B test inside a strategy: a share of its treated customers, what they get.

    A cell may receive only some of the strategy's waves (``[d1_sms]`` against the whole journey
    measures what the later waves add) and its own script per channel (script A vs script B).

    A **selection cell** (``select:``, no ``share``) instead selects its own customers from the strategy's
    audience (``score('churn') >= 0.6`` against ``stage = 'declining'``): a customer goes to the first
    listed cell whose selection is true, and the strategy's one holdout is drawn before the cells split,
    so control customers carry the cell their selection would have put them in (模型组 vs 非模型组).
    """

    id: Name("cell id")
    share: float | None = Field(default=None, gt=0, le=1)   # of the strategy's treated customers (not with select)
    select: RuleText | None = None                    # a selection cell: who of the audience this cell takes
    waves: list[str] | None = None                    # none: every wave of the strategy
    scripts: dict[Channel, Script] = Field(default_factory=dict)   # overrides the strategy's, per channel
    description: str = ""


SHARE_TOLERANCE = 1e-9


def cell_problems(strategy: Strategy) -> list[InitErrorDetails]:
    """What is wrong with a strategy's cells, each located at its field (``cells[1].waves[0]``)."""
    import difflib


    out: list[InitErrorDetails] = []

    def bad(loc: tuple[object, ...], message: str, value: object) -> None:
        out.append(InitErrorDetails(type=PydanticCustomError("cells", message), loc=("cells", *loc), input=value))

    if not strategy.cells:
        return out
    selecting = [c.select is not None for c in strategy.cells]
    if any(selecting) and not all(selecting):
        for j, cell in enumerate(strategy.cells):
            if cell.select is None:
                bad((j,), f"cell {cell.id} has no select, but other cells of the strategy do: either every cell "
                    "selects its own customers (select:) or every cell takes a share of the treated (share:)",
                    cell.id)
        return out
    if all(selecting):
        return out + selection_cell_problems(strategy)
    waves = {w.id: w for w in strategy.waves}
    seen: set[str] = set()
    for j, cell in enumerate(strategy.cells):
        if cell.id == "control":
            bad((j, "id"), "a cell cannot be called 'control' (the holdout group is)", cell.id)
        if cell.id in seen:
            bad((j, "id"), f"cell id {cell.id!r} is used twice", cell.id)
        seen.add(cell.id)
        for k, wid in enumerate(cell.waves or []):
            if wid not in waves:
                close = difflib.get_close_matches(wid, list(waves), n=1)
                bad((j, "waves", k), f"cell {cell.id} names unknown wave {wid!r}"
                    + (f"; did you mean {close[0]!r}?" if close else f" (the strategy's waves: {', '.join(waves)})"),
                    wid)
            elif (cell.waves or []).count(wid) > 1 and (cell.waves or []).index(wid) != k:
                bad((j, "waves", k), f"cell {cell.id} lists wave {wid!r} twice", wid)
        if cell.waves is not None and all(w in waves for w in cell.waves):
            first = strategy.waves[0].id
            if first not in cell.waves:
                bad((j, "waves"), f"cell {cell.id} must receive the first wave {first!r} (the journey starts there)",
                    cell.waves)
            for wid in cell.waves:
                dep = waves[wid].depends_on
                if dep is not None and dep.wave in waves and dep.wave not in cell.waves:
                    bad((j, "waves"), f"cell {cell.id} receives wave {wid} but not wave {dep.wave}, which it follows",
                        cell.waves)
        for ch, script in cell.scripts.items():
            if ch not in strategy.channels:
                bad((j, "scripts", ch), f"cell {cell.id} has a script for channel {ch!r}, which is not among the "
                    f"strategy's channels {strategy.channels}", ch)
            for lang in ("zh", "en"):
                text = getattr(script, lang)
                for msg in template_problems(text) if text else []:
                    bad((j, "scripts", ch, lang), f"cell {cell.id} script {ch}.{lang}: {msg}", text)
    for j, cell in enumerate(strategy.cells):
        if cell.share is None:
            bad((j, "share"), f"cell {cell.id} needs a share (of the treated customers) or a select rule", None)
    if any(c.share is None for c in strategy.cells):
        return out
    total = sum(c.share or 0.0 for c in strategy.cells)
    if abs(total - 1) > SHARE_TOLERANCE:
        bad((), f"the cells' shares add up to {total:g}, not 1 (each share is a part of the treated customers)",
            [c.share for c in strategy.cells])
    return out


def selection_cell_problems(strategy: Strategy) -> list[InitErrorDetails]:
    """What is wrong with selection cells (every cell has ``select``): no share, no own waves or scripts, 2+ cells.

    Selection cells compare *whom* to target with the same journey, so a difference between them is the
    selection's; shares, waves and scripts would mix in a second question."""
    out: list[InitErrorDetails] = []

    def bad(loc: tuple[object, ...], message: str, value: object) -> None:
        out.append(InitErrorDetails(type=PydanticCustomError("cells", message), loc=("cells", *loc), input=value))

    seen: set[str] = set()
    for j, cell in enumerate(strategy.cells):
        if cell.id == "control":
            bad((j, "id"), "a cell cannot be called 'control' (the holdout group is)", cell.id)
        if cell.id in seen:
            bad((j, "id"), f"cell id {cell.id!r} is used twice", cell.id)
        seen.add(cell.id)
        if cell.share is not None:
            bad((j, "share"), f"cell {cell.id} selects its own customers (select:), so it takes no share: remove "
                "share (a customer goes to the first listed cell whose select is true)", cell.share)
        if cell.waves is not None:
            bad((j, "waves"), f"cell {cell.id} selects its own customers: selection cells follow the strategy's "
                "whole journey (compare journeys with share cells in another strategy); remove waves", cell.waves)
        if cell.scripts:
            bad((j, "scripts"), f"cell {cell.id} selects its own customers: selection cells use the strategy's "
                "scripts (compare scripts with share cells in another strategy); remove scripts", sorted(cell.scripts))
    if len(strategy.cells) < 2:
        bad((), "a strategy with selection cells needs two or more (e.g. model: score('churn') >= 0.6 and rule: "
            "stage = 'declining')", [c.id for c in strategy.cells])
    return out


def selection_cells(strategy: Strategy) -> bool:
    """The strategy's cells select their own customers (``select:``) rather than share its treated."""
    return bool(strategy.cells) and all(c.select is not None for c in strategy.cells)


class Expected(Strict):
    """A prior for arbitration until review learns it: uplift (per channel, or one number) x value."""

    uplift: float | dict[Channel, float] = Field(default=0.01)
    value: float = Field(default=100.0, ge=0)   # money (RMB) of one success: fee income or AUM margin
    # the value of a success for each customer, an expression like an audience's (``score('clv') * 0.05``: a
    # share of the customer's lifetime value); a customer without one (no score) is worth ``value``
    value_by: RuleText | None = None
    # how sure the prior is (standard deviation of the uplift); none: contact_policy.yaml arbitration.prior_sd
    prior_sd: float | None = Field(default=None, gt=0, le=1)

    def uplift_for(self, channel: str) -> float:
        """The prior uplift of a contact through ``channel``."""
        if isinstance(self.uplift, dict):
            return float(self.uplift.get(channel, 0.0))  # type: ignore[call-overload]
        return float(self.uplift)


class Top(Strict):
    """A ranking rule: of the customers the audience selects, only the top ``share`` by the value ``by``
    (``top: {share: 0.2, by: "uplift('wealth_uplift')"}``: the 20% with the highest predicted uplift)."""

    share: float = Field(gt=0, le=1)
    by: RuleText


class Capacity(Strict):
    """How many contacts this strategy may make per day, overall and per relationship manager."""

    per_day: int | None = Field(default=None, ge=0)
    per_rm_per_day: int | None = Field(default=None, ge=0)


class Strategy(Strict):
    """One strategy of the map."""

    id: Name("strategy id")
    name: Names
    owner: str
    objective: Objective
    scenario: Scenario
    audience: RuleText
    # used instead of the audience on a day without the scores of a model the audience reads (score('x'))
    fallback_audience: RuleText | None = None
    top: Top | None = None          # rank the audience and keep its top share (e.g. by a model's uplift)
    offer: Offer
    channels: list[Channel] = Field(min_length=1)
    scripts: dict[Channel, Script]
    waves: list[Wave] = Field(min_length=1)
    holdout: float = Field(ge=0, lt=1)
    priority: int = Field(default=50, ge=0, le=1000)
    purpose: Literal["marketing", "service"] | None = None   # none: from the objective (contact_policy.yaml)
    expected: Expected = Field(default_factory=Expected)
    capacity: Capacity = Field(default_factory=Capacity)
    budget: float | None = Field(default=None, ge=0)        # RMB over the strategy's life (channel costs)
    start: dt.date
    end: dt.date | None = None
    reentry_days: int = Field(default=365, ge=1)             # a customer enters the journey once per this
    enabled: bool = True
    description: str = ""
    cells: list[Cell] = Field(default_factory=list)          # A/B cells of the treated customers; none: one
    # false: the strategy uses no derived tags, segments or scores (checked), so customers who opted out of
    # personalised marketing (PIPL Art. 24) may still receive it; every other strategy is personalised
    personalised: bool = True

    @field_validator("channels")
    @classmethod
    def _channels(cls, v: list[str]) -> list[str]:
        dup = sorted({c for c in v if v.count(c) > 1})
        if dup:
            raise ValueError(f"channel {dup[0]!r} is listed twice")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Strategy:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        problems = cell_problems(self)
        if problems:
            # raised as a ValidationError so that each problem keeps its own location (cells[1].waves[0])
            raise ValidationError.from_exception_data("Strategy", problems)
        return self

    def cell(self, cell_id: str | None) -> Cell | None:
        """The cell called ``cell_id``, if any."""
        return next((c for c in self.cells if c.id == cell_id), None)

    def cell_waves(self, cell_id: str | None) -> list[str]:
        """The waves a cell's customers receive, in the strategy's order (every wave without cells)."""
        c = self.cell(cell_id)
        if c is None or c.waves is None:
            return [w.id for w in self.waves]
        return [w.id for w in self.waves if w.id in c.waves]

    def script_for(self, channel: str, cell_id: str | None = None) -> Script | None:
        """The script a cell's customers get through ``channel`` (the cell's own, else the strategy's)."""
        c = self.cell(cell_id)
        if c is not None and channel in c.scripts:
            return c.scripts[channel]  # type: ignore[index]
        return self.scripts.get(channel)  # type: ignore[call-overload]

    def wave(self, wave_id: str) -> Wave | None:
        """The wave called ``wave_id``, if any."""
        return next((w for w in self.waves if w.id == wave_id), None)

    def channels_of(self, wave: Wave) -> list[str]:
        """The channels a wave may use, in priority order."""
        return [wave.channel] if wave.channel else list(self.channels)

    def active_on(self, day: dt.date) -> bool:
        """The strategy runs on ``day`` (enabled and between start and end)."""
        return self.enabled and self.start <= day and (self.end is None or day <= self.end)


class Holiday(Strict):
    """A holiday (节日) for calendar strategies: the events view has holiday_today and days_to_holiday."""

    date: dt.date
    name: str


class EventSettings(Strict):
    """How the day's events (实时事件) become columns: the amounts that count as large."""

    large_inflow: float = Field(default=50000, ge=0)
    large_outflow: float = Field(default=50000, ge=0)
    holidays: list[Holiday] = Field(default_factory=list)


class CoverageSettings(Strict):
    """What ``lifeloop strategies --coverage`` calls a gap (a big cell no strategy reaches) and an overlap."""

    gap_min_customers: int = Field(default=100, ge=1)       # a cell this big with no strategy is a gap ...
    gap_min_aum: float = Field(default=50_000_000, ge=0)    # ... and so is one holding this much AUM (RMB)
    overlap_min_customers: int = Field(default=1, ge=1)     # customers reached by 2+ strategies in a cell


class StrategiesConfig(Strict):
    """The whole ``strategies.yaml``."""

    version: int = 1
    holdout_salt: str = Field(default="lifeloop", min_length=1)
    thresholds: Thresholds = Field(default_factory=dict)
    events: EventSettings = Field(default_factory=EventSettings)
    coverage: CoverageSettings = Field(default_factory=CoverageSettings)
    strategies: list[Strategy] = Field(default_factory=list)

    def strategy(self, strategy_id: str) -> Strategy | None:
        """The strategy called ``strategy_id``, if any."""
        return next((s for s in self.strategies if s.id == strategy_id), None)
