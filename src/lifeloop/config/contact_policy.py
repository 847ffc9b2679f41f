"""``config/contact_policy.yaml``: one contact policy (渠道协同) over every strategy.

Frequency caps per customer (overall and per channel, per day / week / month), quiet hours per
channel, the consent purpose each objective needs, what a missing consent row means, refusal memory
per channel (a customer who said no to a call is not called again for N months), and each channel's
unit cost and capacity (outbound seats x calls per seat, relationship-manager tasks per day), how
arbitration ranks candidates and learns expected uplift from review (``arbitration``), extra
suitability rules (stricter only: the core suitability rule has no setting, see
lifeloop.strategy.suitability), and what a marketing SMS must carry and must not say
(``marketing_sms``, checked when the strategy map loads).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from lifeloop.config.models import Strict
from lifeloop.config.strategies import Channel
from lifeloop.config.types import TimeOfDay

Purpose = Literal["marketing", "service", "risk"]


class Caps(Strict):
    """At most this many contacts per customer in a day (D), a week (D-6..D), a month (D-29..D)."""

    day: int | None = Field(default=None, ge=0)
    week: int | None = Field(default=None, ge=0)
    month: int | None = Field(default=None, ge=0)

    def windows(self) -> list[tuple[int, int]]:
        """(window length in days, cap) for every cap that is set."""
        return [(n, cap) for n, cap in ((1, self.day), (7, self.week), (30, self.month)) if cap is not None]


class QuietHours(Strict):
    """No contact from ``start`` to ``end`` (HH:MM, local time; may wrap midnight)."""

    start: TimeOfDay("21:00")
    end: TimeOfDay("21:00")

    def contains(self, t: dt.time) -> bool:
        """``t`` falls in the quiet period (start inclusive, end exclusive)."""
        s, e = dt.time.fromisoformat(self.start), dt.time.fromisoformat(self.end)
        if s == e:
            return False
        return s <= t < e if s < e else (t >= s or t < e)


class ChannelSettings(Strict):
    """Unit cost (RMB), default send time, and capacity of one channel."""

    cost: float = Field(default=0.0, ge=0)
    send_at: TimeOfDay("10:00") = "10:00"
    seats: int | None = Field(default=None, ge=0)                  # outbound call centre (远程银行) seats
    per_seat_per_day: int | None = Field(default=None, ge=0)        # calls one seat makes a day
    per_rm_per_day: int | None = Field(default=None, ge=0)          # RM tasks a day (default for RMs without one)
    per_day: int | None = Field(default=None, ge=0)                 # any other daily limit of the channel
    # a contact of the list of D may go out on local days D..D+valid_days, then it expires unsent
    # (a wave may set its own in strategies.yaml); quiet hours and retries never push it past that
    valid_days: int = Field(default=1, ge=0, le=30)

    def daily_limit(self) -> int | None:
        """Contacts the channel can carry in a day overall (None: unlimited)."""
        limits = [x for x in (self.per_day,) if x is not None]
        if self.seats is not None and self.per_seat_per_day is not None:
            limits.append(self.seats * self.per_seat_per_day)
        return min(limits) if limits else None


class QuietDay(Strict):
    """A day without contact (节假日免打扰) on some channels (none listed: every channel) for some purposes.

    In the customer's local time, like quiet hours: the send-time gate holds a contact until the day is
    over (or lets it expire), and the plan drops contacts planned on it (``quiet_day``).
    """

    date: dt.date
    name: str = ""
    channels: list[Channel] | None = None                                   # none: every channel
    purposes: list[Purpose] = Field(default_factory=lambda: ["marketing"])  # service and risk still go out

    def covers(self, day: dt.date, channel: str, purpose: str) -> bool:
        """Whether a contact through ``channel`` for ``purpose`` on local ``day`` falls on this quiet day."""
        return day == self.date and purpose in self.purposes and (self.channels is None or channel in self.channels)


class Consent(Strict):
    """Which consent purpose each objective needs, and what a customer without a consent row means."""

    purpose_by_objective: dict[Literal["scale", "customers", "fee_income"], Purpose] = Field(
        default_factory=lambda: {"scale": "marketing", "customers": "marketing", "fee_income": "marketing"})
    # PIPL: marketing needs opt-in, so no row means no; service messages are allowed unless refused
    missing: dict[Purpose, bool] = Field(default_factory=lambda: {"marketing": False, "service": True, "risk": True})


class ExtraRule(Strict):
    """Customers aged ``min_age`` or more offered a product of ``min_product_level`` or more: flag or drop."""

    name: str
    min_age: int = Field(ge=0, le=150)
    min_product_level: Literal["R1", "R2", "R3", "R4", "R5"]
    action: Literal["enhanced_sales", "drop"] = "enhanced_sales"


def default_rules() -> list[ExtraRule]:
    """The bank default: customers aged 65+ offered R4+ go through the enhanced sales process (双录)."""
    return [ExtraRule(name="elderly_high_risk", min_age=65, min_product_level="R4")]


class SuitabilitySettings(Strict):
    """``suitability:`` in contact_policy.yaml: only stricter, extra rules (the core rule has no switch)."""

    extra_rules: list[ExtraRule] = Field(default_factory=default_rules)


class Arbitration(Strict):
    """``arbitration:`` how the plan orders candidates, and how it learns expected uplift from review.

    ``rank_by: value`` — priority class first (``priority // class_size``, so priorities 30..90 form
    one class and a regulatory strategy at 900 stays ahead), then expected incremental value;
    ``rank_by: priority`` — priority, then value (the older ordering). Learning: each strategy-wave-
    channel's uplift is the prior shrunk toward the evaluated uplift (normal-normal, prior standard
    deviation ``prior_sd``), each segment's toward that; evidence counts only when both the treated
    and the control arm hold ``min_customers``.
    """

    rank_by: Literal["value", "priority"] = "value"
    class_size: int = Field(default=100, ge=1, le=1001)
    learn: bool = True                                   # false: the configured priors only
    prior_sd: float = Field(default=0.02, gt=0, le=1)    # how far the true uplift may be from the prior
    min_customers: int = Field(default=30, ge=1)         # per arm, before evidence counts at all


SIGNATURE = re.compile(r"【[^【】\s][^【】]*】")

# Inducing words (诱导性表述) a marketing message may not use: the wealth sales rules forbid promising
# principal or returns and words that do not match a product's risk (CBIRC Order 2021 No 4 on wealth
# product sales, and the 2018 asset-management guidelines against rigid redemption 刚性兑付).
FORBIDDEN_WORDS = ["高收益", "保本", "稳赚", "零风险", "无风险", "保证收益",
                   "guaranteed return", "risk-free", "no risk"]
# Required disclosures that contain a forbidden word (本产品为非保本浮动收益型产品) are not inducements.
ALLOWED_PHRASES = ["非保本", "不保本", "不保证收益", "并非无风险", "not guaranteed"]


class MarketingSms(Strict):
    """``marketing_sms:`` what a marketing SMS template (营销短信) must carry and must not say.

    MIIT Order 2015 No 31 (通信短信息服务管理规定): a commercial message names its sender (the
    signature 签名 in 【...】) and tells the customer how to refuse further messages (退订). Checked on
    every marketing script of ``channels`` when the strategy map loads (lifeloop.config.sms_lint).
    """

    channels: list[Channel] = Field(default_factory=lambda: ["sms"])
    signature: str | None = None   # the bank's exact signature, e.g. 【示例银行】; none: any non-empty 【...】
    # accepted opt-out phrases per script language; at least one each (the requirement cannot be switched off)
    opt_out: dict[Literal["zh", "en"], list[str]] = Field(
        default_factory=lambda: {"zh": ["回复TD退订"], "en": ["Reply STOP to opt out"]})
    forbidden_words: list[str] = Field(default_factory=lambda: list(FORBIDDEN_WORDS))   # matched ignoring case
    allowed_phrases: list[str] = Field(default_factory=lambda: list(ALLOWED_PHRASES))   # disclosures, not inducements

    @field_validator("signature")
    @classmethod
    def _signature(cls, v: str | None) -> str | None:
        if v is not None and not SIGNATURE.fullmatch(v):
            raise ValueError(f"signature {v!r} must be the bank's name in 【】, e.g. 【示例银行】")
        return v

    @field_validator("opt_out")
    @classmethod
    def _opt_out(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for lang in ("zh", "en"):
            if not [p for p in v.get(lang, []) if p.strip()]:
                raise ValueError(f"opt_out needs at least one phrase for {lang} (a marketing SMS must say how to "
                                 "opt out)")
        return v

    @field_validator("forbidden_words", "allowed_phrases")
    @classmethod
    def _words(cls, v: list[str]) -> list[str]:
        if any(not w.strip() for w in v):
            raise ValueError("an empty word would match every message")
        return v


class ContactPolicy(Strict):
    """The whole ``contact_policy.yaml``."""

    version: int = 1
    caps: Caps = Field(default_factory=Caps)
    channel_caps: dict[Channel, Caps] = Field(default_factory=dict)
    quiet_hours: dict[Channel, QuietHours] = Field(default_factory=dict)
    quiet_days: list[QuietDay] = Field(default_factory=list)     # holidays without (marketing) contact
    consent: Consent = Field(default_factory=Consent)
    refusal_memory_months: dict[Channel, int] = Field(default_factory=dict)
    channels: dict[Channel, ChannelSettings] = Field(default_factory=dict)
    lookback_days: int = Field(default=400, ge=30)   # history read for caps, refusals and waves
    arbitration: Arbitration = Field(default_factory=Arbitration)
    suitability: SuitabilitySettings = Field(default_factory=SuitabilitySettings)  # stricter extras only
    marketing_sms: MarketingSms = Field(default_factory=MarketingSms)

    @field_validator("refusal_memory_months")
    @classmethod
    def _months(cls, v: dict[str, int]) -> dict[str, int]:
        for ch, n in v.items():
            if n < 0 or n > 60:
                raise ValueError(f"refusal memory for {ch} must be 0..60 months (got {n})")
        return v

    @model_validator(mode="after")
    def _lookback(self) -> ContactPolicy:
        need = max([30 * m + 31 for m in self.refusal_memory_months.values()] + [30])
        if self.lookback_days < need:
            raise ValueError(f"lookback_days {self.lookback_days} is shorter than the longest refusal memory "
                             f"({need} days)")
        return self

    def channel(self, name: str) -> ChannelSettings:
        """Settings of a channel (defaults when the file does not mention it)."""
        return self.channels.get(name, ChannelSettings())  # type: ignore[call-overload]

    def purpose(self, objective_kind: str, override: str | None = None) -> str:
        """The consent purpose a strategy needs."""
        return override or self.consent.purpose_by_objective.get(objective_kind, "marketing")  # type: ignore

    def send_time(self, channel: str, requested: str | None) -> dt.time | None:
        """When a contact goes out: the requested time, moved past quiet hours if the same day allows; else None."""
        t = dt.time.fromisoformat(requested or self.channel(channel).send_at)
        quiet = self.quiet_hours.get(channel)  # type: ignore[call-overload]
        if quiet is None or not quiet.contains(t):
            return t
        end = dt.time.fromisoformat(quiet.end)
        # quiet until the end of the period: only later the same day counts (tomorrow is another plan)
        return end if end > t and not quiet.contains(end) else None
