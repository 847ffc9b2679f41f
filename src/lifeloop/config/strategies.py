"""``config/strategies.yaml``: the strategy map (策略图谱).

Each strategy says who (an audience rule over features, stage, segments and the day's events), what
(an offer), how (channels in priority order, a script per channel in zh-CN and en, waves 多波次), how
we will know it worked (objective, metric, window, holdout share) and how much it may cost
(priority, capacity, budget, start and end dates). Cross-checks that need other files (audience
columns, products, stages) run in :func:`lifeloop.strategy.audiences.check_map`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from lifeloop.config.lifecycle import check_name, rule_text
from lifeloop.config.models import Strict
from lifeloop.data.schema import CONTACT_CHANNELS

Outcome = Literal["no_response", "responded", "any"]
ObjectiveKind = Literal["scale", "customers", "fee_income"]
ScenarioKind = Literal["lifecycle", "product", "event", "calendar"]
Channel = Literal["sms", "push", "email", "call", "rm", "wechat", "branch"]
assert set(Channel.__args__) == set(CONTACT_CHANNELS)  # type: ignore[attr-defined]

# Variables a script (话术) may use. Personal ones (C2) are masked when rendered, so a script cannot
# put a full name or an amount in an SMS by accident. name -> (personal?, what it is)
SCRIPT_VARIABLES: dict[str, tuple[bool, str]] = {
    "customer_name": (True, "customer's name, masked (王**)"),
    "title": (False, "先生 / 女士 (Mr / Ms) from gender"),
    "rm_name": (False, "the relationship manager's name (staff, not personal)"),
    "branch_name": (False, "the home branch"),
    "product_name": (False, "the offered product's name"),
    "offer_code": (False, "the offer code"),
    "days_to_maturity": (False, "days until the next maturity"),
    "maturing_amount": (True, "amount maturing within 30 days, rounded to 10,000s (约 5 万)"),
    "holiday_name": (False, "today's holiday, if any"),
    "bank_name": (False, "the bank's name (lifeloop.yaml)"),
}
TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


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
    def _one(self) -> "Offer":
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

    id: str
    day: int = Field(ge=0, le=730)
    channel: Channel | None = None   # none: the strategy's channels, in priority order
    send_at: str | None = None        # HH:MM; none: the channel's default (contact_policy.yaml)
    depends_on: DependsOn | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return check_name(v, "wave id")

    @field_validator("send_at")
    @classmethod
    def _send_at(cls, v: str | None) -> str | None:
        if v is not None and not TIME.match(v):
            raise ValueError(f"send_at {v!r} must be a time HH:MM, e.g. 10:00")
        return v


class Expected(Strict):
    """A prior for arbitration until review learns it: uplift (per channel, or one number) x value."""

    uplift: float | dict[Channel, float] = Field(default=0.01)
    value: float = Field(default=100.0, ge=0)   # money (RMB) of one success: fee income or AUM margin
    # how sure the prior is (standard deviation of the uplift); none: contact_policy.yaml arbitration.prior_sd
    prior_sd: float | None = Field(default=None, gt=0, le=1)

    def uplift_for(self, channel: str) -> float:
        """The prior uplift of a contact through ``channel``."""
        if isinstance(self.uplift, dict):
            return float(self.uplift.get(channel, 0.0))  # type: ignore[call-overload]
        return float(self.uplift)


class Capacity(Strict):
    """How many contacts this strategy may make per day, overall and per relationship manager."""

    per_day: int | None = Field(default=None, ge=0)
    per_rm_per_day: int | None = Field(default=None, ge=0)


class Strategy(Strict):
    """One strategy of the map."""

    id: str
    name: Names
    owner: str
    objective: Objective
    scenario: Scenario
    audience: str
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

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        return check_name(v, "strategy id")

    @field_validator("audience", mode="before")
    @classmethod
    def _audience(cls, v: object) -> object:
        return rule_text(v)

    @field_validator("channels")
    @classmethod
    def _channels(cls, v: list[str]) -> list[str]:
        dup = sorted({c for c in v if v.count(c) > 1})
        if dup:
            raise ValueError(f"channel {dup[0]!r} is listed twice")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "Strategy":
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

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
    thresholds: dict[str, float] = Field(default_factory=dict)
    events: EventSettings = Field(default_factory=EventSettings)
    coverage: CoverageSettings = Field(default_factory=CoverageSettings)
    strategies: list[Strategy] = Field(default_factory=list)

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, v: dict[str, float]) -> dict[str, float]:
        for name in v:
            check_name(name, "threshold name")
        return v

    def strategy(self, strategy_id: str) -> Strategy | None:
        """The strategy called ``strategy_id``, if any."""
        return next((s for s in self.strategies if s.id == strategy_id), None)
